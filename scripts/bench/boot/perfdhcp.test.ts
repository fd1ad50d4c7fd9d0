import { describe, expect, it } from 'vitest';
import { parsePerfdhcp, perfdhcpArgv, procCpuSeconds } from './perfdhcp.js';

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
    expect(a[a.indexOf('-x') + 1]).toBe('t');
    expect(a.at(-1)).toBe('198.18.0.1');
  });

  it("takes the answer window from -x t's timestamps: first DISCOVER sent to last ACK received (HHMMSS.ffffff)", () => {
    // perfdhcp 2.2.0 -x t, abridged: exchanges are listed in their own order, not by time.
    const ts = `${REPORT}
***Timestamps for packets: DISCOVER-OFFER***
sent / received: 000000.038152 / 000000.044329
sent / received: 000000.015166 / 000000.018225

***Timestamps for packets: REQUEST-ACK***
sent / received: 000000.037968 / 000000.043084
sent / received: 000101.500000 / 000102.250000
sent / received: 000000.044528 / 000000.046036
`;
    expect(parsePerfdhcp(ts).windowSec).toBeCloseTo(62.25 - 0.015166, 6);
    expect(parsePerfdhcp(REPORT).windowSec).toBeNaN();
  });

  it('reads CPU seconds of a process and of its waited-for children from /proc/PID/stat (command names with spaces and parentheses)', () => {
    // fields: pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime cutime cstime …
    const stat = '4242 (perf (dhcp) x) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 50 1200 300 20 0 1 0 100 1000 10';
    expect(procCpuSeconds(stat, 'self')).toBeCloseTo(3.0);
    expect(procCpuSeconds(stat, 'children')).toBeCloseTo(15.0);
    expect(() => procCpuSeconds('garbage', 'self')).toThrow();
  });
});
