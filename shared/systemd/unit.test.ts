import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { execStartOf, renderUnit, systemdRunning } from './unit.js';

describe('systemd units', () => {
  const unit = renderUnit({ description: 'x', exec: ['/usr/bin/node', '/opt/my dir/underlay.js', 'agent', 'run', '--state', '%S/underlay-agent'], stateDirectory: 'underlay-agent', environmentFile: '/etc/default/underlay-agent', capabilities: ['CAP_NET_BIND_SERVICE'], addressFamilies: ['AF_INET'] });
  it('quote ExecStart words with spaces, and read them back', () => {
    expect(unit).toContain('ExecStart=/usr/bin/node "/opt/my dir/underlay.js" agent run --state %S/underlay-agent');
    expect(execStartOf(unit)).toEqual(['/usr/bin/node', '/opt/my dir/underlay.js', 'agent', 'run', '--state', '%S/underlay-agent']);
  });
  it('are hardened: dynamic user, state directory, read-only system, no new privileges, only the given capabilities', () => {
    for (const line of ['DynamicUser=yes', 'StateDirectory=underlay-agent', 'ProtectSystem=strict', 'NoNewPrivileges=yes', 'CapabilityBoundingSet=CAP_NET_BIND_SERVICE', 'AmbientCapabilities=CAP_NET_BIND_SERVICE', 'PrivateTmp=yes', 'RestrictAddressFamilies=AF_INET']) expect(unit.split('\n')).toContain(line);
    expect(unit).not.toMatch(/MemoryDenyWriteExecute/); // Node's JIT needs W+X pages
  });
  it('know whether systemd runs the host (sd_booted: /run/systemd/system)', () => {
    const root = mkdtempSync(join(tmpdir(), 'underlay-systemd-'));
    try {
      expect(systemdRunning(root)).toBe(false);
      mkdirSync(join(root, 'run/systemd/system'), { recursive: true });
      expect(systemdRunning(root)).toBe(true);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
