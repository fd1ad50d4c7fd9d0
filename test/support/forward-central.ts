import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { REPO } from '../central/support.js';
import type { NetNs } from './netns.js';

const FORWARD = join(REPO, 'dist/scripts/lab/forward.js');

/**
 * Makes a central on the host's loopback reachable at the same 127.0.0.1 port inside a namespace,
 * through a unix socket in `work` (the lab's forwarders, dist/scripts/lab/forward.js). Returns the two
 * forwarder processes (the caller kills them).
 */
export async function forwardCentral(ns: NetNs, port: number, work: string): Promise<ChildProcess[]> {
  const sock = join(work, 'central.sock');
  const host = spawn(process.execPath, [FORWARD, 'unix-to-tcp', sock, '127.0.0.1', String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((r) => host.stdout!.once('data', () => r()));
  const inner = ns.spawn([process.execPath, FORWARD, 'tcp-to-unix', '127.0.0.1', String(port), sock]);
  await new Promise<void>((r) => inner.stdout!.once('data', () => r()));
  return [host, inner];
}
