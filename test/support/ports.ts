import { createSocket } from 'node:dgram';
import { createServer } from 'node:net';

/**
 * Loopback ports for tests that must name a port up front (a spawned central's --listen, a TFTP port, a
 * PostgreSQL cluster, ipmi_sim).
 *
 * Test files run at the same time (two vitest processes, see test/support/lanes.ts, and several workers in
 * one), so "a port the kernel called free a moment ago" is not enough: another file could be handed the
 * same port between the probe and its use. Each (lane, worker) therefore owns a block of ports below the
 * kernel's ephemeral range (32768–60999 on Linux, so no listen(0) or outgoing connection takes one), and a
 * file hands out its block's ports in turn, never one twice. Two files that run at the same time run in
 * different workers or lanes, so their blocks are disjoint; a file that runs later in the same worker reuses
 * the block, and the probe (TCP and UDP bind on the host) skips a port its predecessor still holds.
 *
 * UNDERLAY_TEST_LANE is set by scripts/test-suite.mjs (0: the QEMU lane, 1: the rest; 0 when unset); a
 * second vitest run on the same machine at the same time sets 2 or 3. VITEST_POOL_ID is vitest's worker
 * number (1..maxWorkers). 4 lanes x 48 workers x 64 ports end at 32287, below the ephemeral range.
 */
const FIRST = 20_000;
const BLOCK = 64;
const WORKERS_PER_LANE = 48;
const LANES = 4;

function block(): { start: number; end: number } {
  const lane = Number(process.env.UNDERLAY_TEST_LANE ?? '0');
  const pool = Number(process.env.VITEST_POOL_ID ?? '1');
  if (!Number.isInteger(lane) || lane < 0 || lane >= LANES) throw new Error(`UNDERLAY_TEST_LANE=${process.env.UNDERLAY_TEST_LANE}: expected 0..${LANES - 1}`);
  if (!Number.isInteger(pool) || pool < 1 || pool > WORKERS_PER_LANE) throw new Error(`VITEST_POOL_ID=${process.env.VITEST_POOL_ID}: expected 1..${WORKERS_PER_LANE} (run with fewer workers)`);
  const start = FIRST + (lane * WORKERS_PER_LANE + pool - 1) * BLOCK;
  return { start, end: start + BLOCK };
}

let next: number | undefined;

function tcpFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

function udpFree(port: number, host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    s.once('error', () => {
      s.close();
      resolve(false);
    });
    s.bind(port, host, () => s.close(() => resolve(true)));
  });
}

/** A loopback port no other test file running now can be handed, free (TCP and UDP) on `host` right now. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const { start, end } = block();
  next ??= start;
  while (next < end) {
    const port = next++;
    if ((await tcpFree(port, host)) && (await udpFree(port, host))) return port;
  }
  throw new Error(`test ports ${start}-${end - 1} (this lane and worker's block) are used up in this file`);
}
