import type { Server } from 'node:http';
import type { OpenAPIHono } from '@hono/zod-openapi';
import type { DesiredState } from '../../shared/protocol/desired-state.js';
import type { EventMsg } from '../../shared/protocol/messages.js';
import type { CollectionSpec, Store } from '../store/types.js';
import type { ApiDeps } from './deps.js';
import type { ServiceKey, Services } from './services.js';

/** Registers a feature's routes. `services`: what earlier features provided in `setup` (typed keys). */
export type RouteModule = (app: OpenAPIHono, deps: ApiDeps, services: Services) => void;

/**
 * A section of every site's desired state a feature adds (machines, subnets, artifacts …). `agentId`:
 * the agent it is built for (secret params: each agent gets only its own sealed boxes).
 */
export type StateContributor = (site: string, store: Store, agentId?: string) => Partial<Omit<DesiredState, 'version' | 'generatedAt'>>;

/** The agent an event came from (the agents feature passes its document). */
export interface EventSource {
  id: string;
  site: string;
}
/** Handles one kind of agent event (`discovery`, `lease` …); the agents feature dispatches to it. */
export type EventHandler = (agent: EventSource, ev: EventMsg) => Promise<void>;

export interface FeatureContext {
  deps: ApiDeps;
  services: Services;
  /** Every feature of this central (e.g. the agents feature gathers state contributors and event handlers). */
  features: readonly CentralFeature[];
}

/**
 * One way to add something to the central: a resource, a protocol, a task kind's effect. Listed once
 * in central/features.ts. Phases, in list order: collections (store opens) → setup (make services,
 * `provide` them under a typed key) → routes → attach (the server exists); stop hooks run in reverse.
 */
export interface CentralFeature {
  /** For messages (e.g. "machines", "agents"). */
  name: string;
  collections?: CollectionSpec[];
  /** Before any routes: build this feature's services and provide the ones other features use. */
  setup?: (ctx: FeatureContext) => void;
  routes?: RouteModule;
  /** Sections this feature adds to each site's desired state, and the collections whose changes alter them. */
  stateContributors?: StateContributor[];
  stateCollections?: string[];
  /** Agent event handlers by event kind. */
  eventHandlers?: (deps: ApiDeps, services: Services) => Record<string, EventHandler>;
  /** Called once the HTTP(S) server exists (e.g. to handle WebSocket upgrades); returns a stop hook. */
  attach?: (ctx: { server: Server; deps: ApiDeps; services: Services; identity: ApiDeps['identity'] }) => (() => Promise<void> | void) | void;
}

export type { ServiceKey, Services };
