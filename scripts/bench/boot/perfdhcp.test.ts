import { describe, expect, it } from 'vitest';
import { answerWindow, parsePerfdhcp, perfdhcpArgv, procCpuSeconds, udpCounters } from './perfdhcp.js';

// perfdhcp 2.2.0's final report (abridged to what is parsed), from a run against Kea in the bench namespaces.
const REPORT = `***Rate statistics***
Rate: 709.678 4-way exchanges/second, expected rate: 12000

***Malformed Packets***
Malformed packets: 0
***Statistics for: DISCOVER-OFFER***
sent packets: 20003
received packets: 3588
drops: 16415
drops ratio: 82.06 %
orphans: 0
rejected leases: 0
non unique addresses: 0

min delay: 4.520 ms
avg delay: 67.527 ms
max delay: 312.1 ms
***Statistics for: REQUEST-ACK***
sent packets: 3588
received packets: 2740
drops: 848
drops ratio: 23.6 %
orphans: 0
rejected leases: 2
non unique addresses: 1

min delay: 0.194 ms
avg delay: 60.571 ms
`;

describe('perfdhcp', () => {
  it('parses the final report: rate, both exchanges, rejected and non-unique leases', () => {
    const r = parsePerfdhcp(REPORT);
    expect(r.rate).toBeCloseTo(709.678);
    expect(r.discover).toMatchObject({ sent: 20003, received: 3588, drops: 16415, rejectedLeases: 0, nonUnique: 0, avgDelayMs: 67.527 });
    expect(r.request).toMatchObject({ sent: 3588, received: 2740, drops: 848, rejectedLeases: 2, nonUnique: 1, avgDelayMs: 60.571 });
  });

  it('refuses output that is not a report (a perfdhcp that failed to start)', () => {
    expect(() => parsePerfdhcp('Error: ipv4: Address not found.\n')).toThrow(/perfdhcp output without/);
    expect(() => parsePerfdhcp(REPORT.slice(0, REPORT.indexOf('***Statistics for: REQUEST-ACK')))).toThrow(/REQUEST-ACK/);
  });

  it('runs in relay mode: local address (giaddr), one exchange per client, PXE options, server last', () => {
    const a = perfdhcpArgv({ giaddr: '198.19.0.1', server: '198.18.0.1', clients: 20000, rate: 40000, dropTimeSec: 4, exitWaitUs: 4_000_000, baseMac: '02:42:00:00:00:00', threads: 'single' });
    expect(a.slice(0, 4)).toEqual(['perfdhcp', '-4', '-l', '198.19.0.1']);
    expect(a[a.indexOf('-R') + 1]).toBe('20000');
    expect(a[a.indexOf('-n') + 1]).toBe('20000');
    expect(a[a.indexOf('-r') + 1]).toBe('40000');
    expect(a).toContain(`60,${Buffer.from('PXEClient:Arch:00000:UNDI:002001').toString('hex')}`);
    expect(a[a.indexOf('-g') + 1]).toBe('single');
    expect(a.at(-1)).toBe('198.18.0.1');
  });

  it("reads a namespace's UDP counters from /proc/PID/net/snmp and takes the answer window from samples of them", () => {
    const snmp = `Ip: Forwarding DefaultTTL
Ip: 2 64
Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
Udp: 15322 1 7 34003 7 0 0 0 0
UdpLite: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors InCsumErrors IgnoredMulti MemErrors
UdpLite: 0 0 0 0 0 0 0 0 0
`;
    expect(udpCounters(snmp)).toEqual({ rx: 15329, tx: 34003, rcvbufErrors: 7 });
    expect(udpCounters('Ip: Forwarding\nIp: 2\n')).toBeUndefined();
    // idle, sending starts between 0.1 and 0.2, replies stop coming by 0.5 (then only the exit wait).
    const samples = [
      { t: 0.0, rx: 3, tx: 3 },
      { t: 0.1, rx: 3, tx: 3 },
      { t: 0.2, rx: 3, tx: 900 },
      { t: 0.3, rx: 400, tx: 2000 },
      { t: 0.4, rx: 800, tx: 2400 },
      { t: 0.5, rx: 950, tx: 2400 },
      { t: 0.6, rx: 950, tx: 2400 },
      { t: 4.5, rx: 950, tx: 2400 },
    ];
    expect(answerWindow(samples)).toBeCloseTo(0.4, 9);
    expect(answerWindow(samples.map((x) => ({ ...x, rx: 3 })))).toBeNaN(); // nothing answered
    expect(answerWindow(samples.slice(0, 2))).toBeNaN(); // never sent
  });

  it('reads CPU seconds of a process and of its waited-for children from /proc/PID/stat (command names with spaces and parentheses)', () => {
    // fields: pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime …
    const stat = '4242 (perf (dhcp) x) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 50 1200 300 20 0 1 0 100 1000 10';
    expect(procCpuSeconds(stat, 'self')).toBeCloseTo(3.0);
    expect(procCpuSeconds(stat, 'children')).toBeCloseTo(15.0);
    expect(() => procCpuSeconds('garbage', 'self')).toThrow();
  });
});
