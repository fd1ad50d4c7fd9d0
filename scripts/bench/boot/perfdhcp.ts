/**
 * Kea's own load generator, perfdhcp (Debian `kea-admin`), as the boot bench's independent DHCP client.
 *
 * Relay mode: with `-l <giaddr>` perfdhcp puts that address in giaddr and unicasts to the server, which
 * answers by unicast to giaddr:67. The address must sit on the interface that routes to the server (Kea's
 * interface manager binds its socket to that interface), which is why the bench puts giaddr on the client
 * namespace's eth0.
 *
 * perfdhcp is open-loop: it starts `rate` exchanges per second whatever the server does. Set above what the
 * server can do, it measures the server's saturation throughput (ACKs per second); what the server could not
 * take is reported as unanswered (offered above capacity), not as failures.
 */

/** Sent and received for one exchange pair of a perfdhcp report. */
export interface ExchangeStats {
  sent: number;
  received: number;
  drops: number;
  rejectedLeases: number;
  nonUnique: number;
  avgDelayMs: number;
}

export interface PerfdhcpReport {
  /** perfdhcp's own figure: completed 4-way exchanges per second. */
  rate: number;
  discover: ExchangeStats;
  request: ExchangeStats;
  /**
   * Seconds from the first DISCOVER sent to the last ACK received (from `-x t`'s timestamps; NaN without
   * them): the window in which the server answered, whatever perfdhcp's exit wait.
   */
  windowSec: number;
}

export interface PerfdhcpRun {
  giaddr: string;
  server: string;
  /** Distinct simulated clients, and exchanges started (each client once). */
  clients: number;
  /** Exchanges started per second (open loop). */
  rate: number;
  /** Seconds after which an unanswered packet counts as dropped (firmware retransmits after 4 s). */
  dropTimeSec: number;
  /** Microseconds to keep receiving after the last DISCOVER was sent. */
  exitWaitUs: number;
  /** First MAC (the rest count up from it). */
  baseMac: string;
  /**
   * perfdhcp's thread mode. It picks 'multi' (a receiver thread) whenever the machine has more than one CPU,
   * even pinned to one: its two threads then share that core.
   */
  threads: 'single' | 'multi';
}

const hex = (s: string) => Buffer.from(s, 'latin1').toString('hex');

/**
 * perfdhcp's argv. DISCOVER and REQUEST carry a BIOS PXE ROM's vendor class (60) and architecture (93), so the
 * servers take their PXE path and name a boot file, as on a real rack.
 */
export function perfdhcpArgv(r: PerfdhcpRun): string[] {
  return [
    'perfdhcp', '-4',
    '-l', r.giaddr,
    '-R', String(r.clients),
    '-n', String(r.clients),
    '-r', String(r.rate),
    '-d', String(r.dropTimeSec),
    '-W', String(r.exitWaitUs),
    '-b', `mac=${r.baseMac}`,
    '-u',
    '-g', r.threads,
    // Every exchange's timestamps, printed after the run: the bench's window (first DISCOVER to last ACK).
    '-x', 't',
    '-o', `60,${hex('PXEClient:Arch:00000:UNDI:002001')}`,
    '-o', '93,0000',
    r.server,
  ];
}

const num = (re: RegExp, s: string): number => {
  const m = re.exec(s);
  if (!m) throw new Error(`perfdhcp output without ${re.source}`);
  const v = Number(m[1]);
  return Number.isFinite(v) ? v : NaN;
};

function section(out: string, name: string): ExchangeStats {
  const start = out.indexOf(`***Statistics for: ${name}***`);
  if (start < 0) throw new Error(`perfdhcp output without the ${name} statistics`);
  const next = out.indexOf('***Statistics for:', start + 10);
  const s = out.slice(start, next < 0 ? undefined : next);
  const avg = /^avg delay: ([\d.]+) ms/m.exec(s);
  return {
    sent: num(/^sent packets: (\d+)/m, s),
    received: num(/^received packets: (\d+)/m, s),
    drops: num(/^drops: (\d+)/m, s),
    rejectedLeases: num(/^rejected leases: (\d+)/m, s),
    nonUnique: num(/^non unique addresses: (\d+)/m, s),
    avgDelayMs: avg ? Number(avg[1]) : NaN,
  };
}

/** A `-x t` timestamp: a boost `time_duration` in ISO form, HHMMSS.ffffff (since perfdhcp started). */
function isoDuration(t: string): number {
  const m = /^(\d+)(\d\d)(\d\d)(\.\d+)?$/.exec(t);
  if (!m) return NaN;
  return Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]) + Number(m[4] ?? 0);
}

/**
 * First DISCOVER sent to last ACK received, in seconds, from `-x t`'s "Timestamps for packets" sections
 * (NaN when the output has none).
 */
export function answerWindow(out: string): number {
  const block = (name: string) => {
    const head = `***Timestamps for packets: ${name}***`;
    const at = out.indexOf(head);
    if (at < 0) return [];
    const start = at + head.length;
    const end = out.indexOf('\n***', start);
    return [...out.slice(start, end < 0 ? undefined : end).matchAll(/^sent \/ received: (\S+) \/ (\S+)$/gm)].map((m) => [isoDuration(m[1]!), isoDuration(m[2]!)] as const);
  };
  const d = block('DISCOVER-OFFER');
  const r = block('REQUEST-ACK');
  if (d.length === 0 || r.length === 0) return NaN;
  let first = Infinity;
  for (const [sent] of d) if (sent < first) first = sent;
  let last = -Infinity;
  for (const [, received] of r) if (received > last) last = received;
  return last - first;
}

/** Parses perfdhcp's final report (stdout). Throws on output that is not one. */
export function parsePerfdhcp(out: string): PerfdhcpReport {
  return {
    rate: num(/^Rate: ([\d.]+) 4-way exchanges\/second/m, out),
    discover: section(out, 'DISCOVER-OFFER'),
    request: section(out, 'REQUEST-ACK'),
    windowSec: answerWindow(out),
  };
}

/**
 * CPU seconds (user + system) from a /proc/PID/stat line: the process's own (`self`: utime + stime, fields
 * 14 and 15, every thread) or its waited-for children's (`children`: cutime + cstime, fields 16 and 17; how
 * the bench learns perfdhcp's CPU use from the shell that ran it). Fields are in clock ticks.
 */
export function procCpuSeconds(procStat: string, which: 'self' | 'children', ticksPerSec = 100): number {
  const rest = procStat.slice(procStat.lastIndexOf(')') + 2).trim().split(/\s+/);
  // rest[0] is field 3 (state): field k is rest[k - 3].
  const [a, b] = which === 'self' ? [14, 15] : [16, 17];
  const x = Number(rest[a - 3]);
  const y = Number(rest[b - 3]);
  if (rest.length < 15 || !Number.isFinite(x) || !Number.isFinite(y)) throw new Error('not a /proc/PID/stat line');
  return (x + y) / ticksPerSec;
}
