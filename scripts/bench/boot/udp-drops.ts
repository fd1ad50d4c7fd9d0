import { readFileSync } from 'node:fs';

/** Receive-queue drops of this namespace's UDP sockets by local port (/proc/net/udp, last column): datagrams the kernel dropped for a full socket buffer. */
export function udpDrops(): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    for (const line of readFileSync('/proc/net/udp', 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 13) continue;
      const port = String(parseInt(f[1]!.split(':')[1]!, 16));
      out[port] = (out[port] ?? 0) + Number(f[f.length - 1]);
    }
  } catch {
    /* no /proc */
  }
  return out;
}
