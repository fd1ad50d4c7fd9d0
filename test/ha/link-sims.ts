import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Link } from '../../agent/link/link.js';
import { Outbox } from '../../agent/link/outbox.js';
import { openTask } from '../../shared/envelope/envelope.js';
import { silentLogger } from '../../shared/log/logger.js';
import type { CentralToAgent } from '../../shared/protocol/messages.js';

export interface LinkSim {
  id: string;
  link: Link;
  outbox: Outbox;
}

/**
 * Simulated agents that hold the real agent link (agent/link/link.ts: the list of central URLs, failover
 * with jittered backoff, the durable outbox of reports) but no boot services: each task whose signature
 * verifies and whose sequence is new (as agent/tasks/executor.ts checks) is counted in `executed` and
 * reported `accepted` + `succeeded` through the outbox, which resends until the central acknowledges.
 */
export class LinkSims {
  readonly sims: LinkSim[] = [];
  /** Task id → how many times an agent executed it. */
  readonly executed = new Map<string, number>();

  constructor(
    private readonly dir: string,
    private readonly signingPublicKey: Uint8Array,
  ) {}

  async add(identity: { id: string; site: string; key: string; cert: string; ca: string }, centralUrls: string): Promise<LinkSim> {
    const outbox = new Outbox(join(this.dir, `outbox-${identity.id}.jsonl`));
    await outbox.open();
    let lastSeq = 0;
    const onTasks = async (signed: unknown[]) => {
      for (const one of signed) {
        const opened = openTask(one, this.signingPublicKey);
        if (!opened.ok || opened.envelope.agent !== identity.id || opened.envelope.seq <= lastSeq) continue;
        lastSeq = opened.envelope.seq;
        const id = opened.envelope.id;
        this.executed.set(id, (this.executed.get(id) ?? 0) + 1);
        const at = new Date().toISOString();
        await outbox.add({ type: 'report', id: randomUUID(), taskId: id, state: 'accepted', at });
        await outbox.add({ type: 'report', id: randomUUID(), taskId: id, state: 'succeeded', output: 'pong', at });
      }
    };
    const link = new Link({
      centralUrl: centralUrls,
      tls: { key: identity.key, cert: identity.cert, ca: identity.ca },
      outbox,
      logger: silentLogger,
      hello: () => ({ stateVersion: null, lastSeq }),
      onMessage: (msg: CentralToAgent) => (msg.type === 'task' ? onTasks([msg.task]) : msg.type === 'tasks' ? onTasks(msg.tasks) : undefined),
    });
    link.start();
    const sim = { id: identity.id, link, outbox };
    this.sims.push(sim);
    return sim;
  }

  /** How many links are ready on the central at `url`. */
  readyOn(url: string): number {
    return this.sims.filter((s) => s.link.state === 'ready' && s.link.centralUrl === url).length;
  }

  async stop(): Promise<void> {
    await Promise.all(this.sims.map(async (s) => {
      await s.link.stop();
      await s.outbox.close();
    }));
  }
}
