import { z } from 'zod';
import { Ipv4, Name, Timestamps } from './common.js';

/**
 * The service registry (Consul-style): services with members, TTL-driven health, blocking queries.
 * See docs/ansible.md ("Services").
 */

export const MemberStatuses = ['passing', 'warning', 'critical'] as const;
export const MemberStatus = z.enum(MemberStatuses);
export type MemberStatus = z.infer<typeof MemberStatus>;

import { Duration } from './duration.js';
export { Duration };

export const MemberId = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]*$/, 'letters, digits and . _ : @ -, starting with a letter or digit');

export const ServiceMember = z
  .object({
    id: MemberId,
    machine: Name.optional().describe('the machine this member runs on (its name)'),
    address: z.string().min(1).max(255),
    port: z.number().int().min(0).max(65535),
    tags: z.array(z.string().max(128)).max(64),
    meta: z.record(z.string(), z.string().max(1024)),
    status: MemberStatus,
    /** Health output of the last check (kept in memory between status changes). */
    note: z.string().max(4096).optional(),
    ttl: Duration.optional().describe('the member turns critical when no heartbeat arrives for this long'),
    deregisterCriticalAfter: Duration.optional().describe('a member critical for this long is removed'),
    statusSince: z.string().describe('when the status last changed'),
    registeredAt: z.string(),
    lastHeartbeatAt: z.string().optional().describe('last pass/warn/fail or agent report (in memory; absent after a restart until the next one)'),
  })
  .meta({ id: 'ServiceMember' });
export type ServiceMember = z.infer<typeof ServiceMember>;

export const Service = z
  .object({
    id: z.string(),
    name: Name,
    description: z.string().max(1024).optional(),
    tags: z.array(z.string().max(128)),
    members: z.array(ServiceMember),
    /** Raft-style modify index: bumps on every stored change of this service (Consul's X-Consul-Index). */
    modifyIndex: z.number().int(),
    ...Timestamps,
  })
  .meta({ id: 'Service' });
export type Service = z.infer<typeof Service>;

export const ServiceCreate = z
  .object({ name: Name, description: z.string().max(1024).optional(), tags: z.array(z.string().max(128)).max(64).default([]) })
  .strict();

export const MemberRegister = z
  .object({
    id: MemberId.optional().describe('default: "<machine or address>-<port>"'),
    machine: Name.optional(),
    address: z.string().min(1).max(255).optional().describe("default: the machine's address"),
    port: z.number().int().min(0).max(65535),
    tags: z.array(z.string().max(128)).max(64).default([]),
    meta: z.record(z.string(), z.string().max(1024)).default({}),
    status: MemberStatus.default('critical').describe('initial status (TTL members start critical until their first pass, as in Consul)'),
    note: z.string().max(4096).optional(),
    ttl: Duration.optional(),
    deregisterCriticalAfter: Duration.optional(),
  })
  .strict();
export type MemberRegister = z.infer<typeof MemberRegister>;

export const HealthUpdate = z.object({ note: z.string().max(4096).optional() }).strict();

export const ServiceList = z.object({ items: z.array(Service), total: z.number().int(), index: z.number().int() }).meta({ id: 'ServicePage' });

export const BlockingQuery = z.object({
  index: z.coerce.number().int().min(0).optional().describe('return once the index moves past this (blocking query)'),
  wait: Duration.optional().describe('how long to block (default 5m, at most 10m; a little jitter is added)'),
});

export const WaitQuery = z.object({
  passing: z.coerce.number().int().min(1).max(100_000).default(1),
  timeout: Duration.optional().describe('default 5m, at most 10m per request (the CLI loops for longer)'),
});

export const WaitResult = z
  .object({ service: z.string(), wanted: z.number().int(), passing: z.number().int(), satisfied: z.boolean(), index: z.number().int(), members: z.array(ServiceMember) })
  .meta({ id: 'ServiceWaitResult' });
export type WaitResult = z.infer<typeof WaitResult>;

/** Address check used by register (IPv4 or a DNS name). */
export const AddressLike = z.union([Ipv4, z.ipv6(), z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/)]);
