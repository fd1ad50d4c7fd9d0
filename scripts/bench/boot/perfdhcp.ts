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

/**
 * UDP counters of a network namespace, from a /proc/PID/net/snmp text (undefined when absent): `rx` = datagrams
 * that reached a socket (delivered + dropped at a full receive buffer), `tx` = datagrams sent, `rcvbufErrors`
 * = dropped at a full receive buffer. In the client namespace only perfdhcp has UDP sockets.
 */
export function udpCounters(snmp: string): { rx: number; tx: number; rcvbufErrors: number } | undefined {
  const lines = snmp.split('\n').filter((l) => l.startsWith('Udp: '));
  if (lines.length < 2) return undefined;
  const names = lines[0]!.split(/\s+/);
  const values = lines[1]!.split(/\s+/).map(Number);
  const get = (n: string) => values[names.indexOf(n)];
  const [inDg, out, rcvbuf] = [get('InDatagrams'), get('OutDatagrams'), get('RcvbufErrors')];
  if (![inDg, out, rcvbuf].every((x) => Number.isFinite(x))) return undefined;
  return { rx: inDg! + rcvbuf!, tx: out!, rcvbufErrors: rcvbuf! };
}

/**
 * The server's answer window, from samples of the generator's UDP counters taken while it ran: from
 * the first sample where it had sent anything to the first sample after which it received nothing more.
 * NaN when it never sent or never received.
 */
export function answerWindow(samples: { t: number; rx: number; tx: number }[]): number {
  if (samples.length < 2) return NaN;
  const s0 = samples[0]!;
  const first = samples.findIndex((x) => x.tx > s0.tx);
  const rxEnd = samples.at(-1)!.rx;
  const last = samples.findIndex((x) => x.rx === rxEnd);
  if (first < 0 || rxEnd === s0.rx || last <= first) return NaN;
  // The first send happened after the sample before `first`; the last receive by the sample `last`.
  return samples[last]!.t - samples[first - 1]!.t;
}

/** Parses perfdhcp's final report (stdout). Throws on output that is not one. */
export function parsePerfdhcp(out: string): PerfdhcpReport {
  return {
    rate: num(/^Rate: ([\d.]+) 4-way exchanges\/second/m, out),
    discover: section(out, 'DISCOVER-OFFER'),
    request: section(out, 'REQUEST-ACK'),
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
