/**
 * An immutable OS's first boot, on real firmware, and the reinstall-loop guard. A "live immutable"
 * boot environment (the discovery kernel + initramfs, with a second initrd layered on top that stands in
 * for Fedora CoreOS / Flatcar: test/e2e/fixtures/ignition-live.sh) is assigned to a known machine. Its
 * init reads ignition.config.url from /proc/cmdline, fetches the Ignition config the agent renders and
 * validates, writes the file it declares, and reports success to the callback URL. The machine then
 * switches to local boot at the agent and the central, and its next PXE boot does not reinstall.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkPrereqs } from '../support/require.js';
import { AGENT_ADDRESS, RACK_PREREQS, Rack, REPO, SITE, until, type Vm } from './rack.js';

const ready = checkPrereqs('e2e live immutable OS', RACK_PREREQS);
const MAC = '52:54:00:e2:1a:01';
const NAME = 'live-01';

const BOOTENV = `name: live-immutable
description: test stand-in for a live immutable OS (discovery kernel + an Ignition first-boot layer)
os: { family: test-immutable }
kernel: { url: discovery/vmlinuz }
initrds:
  - url: discovery/initrd.img
  - url: live/overlay.cpio
    name: overlay
bootParams: >-
  underlay.url={{ agent.httpUrl }} underlay.token={{ token }} underlay.mac=\${mac} underlay.machine={{ machine.id }}
  underlay.pubkey={{ agent.pubkey }} underlay.action=ignition-live underlay.done={{ urls.done }}
  ignition.firstboot ignition.platform.id=metal ignition.config.url={{ urls.machineBase }}/config.ign console=ttyS0
install: true
templates:
  - name: config.ign
    path: config.ign
    validate: ignition
    template: >-
      {"ignition":{"version":"3.4.0"},"storage":{"files":[{"path":"/run/hello","mode":420,
      "contents":{"source":"data:,hello%20from%20{{ machine.name }}"}}]}}
`;

describe.skipIf(!ready)('a live immutable OS boots once with Ignition from the agent, then boots from disk', () => {
  let rack: Rack;
  let first: Vm;
  const lib = mkdtempSync(join(tmpdir(), 'ul-immutable-'));

  beforeAll(async () => {
    rack = await Rack.start({ prefix: 'ulimm', dhcp: 'full' });
    // The Ignition layer: /lib/underlay/actions/ignition-live.sh in a newc cpio, served at /files/live/.
    const layer = join(lib, 'layer');
    mkdirSync(join(layer, 'lib/underlay/actions'), { recursive: true });
    copyFileSync(join(REPO, 'test/e2e/fixtures/ignition-live.sh'), join(layer, 'lib/underlay/actions/ignition-live.sh'));
    mkdirSync(join(rack.work, 'boot/live'), { recursive: true });
    execFileSync('sh', ['-c', `cd "${layer}" && find . | busybox cpio -o -H newc > "${join(rack.work, 'boot/live/overlay.cpio')}"`]);
    // The boot environment, imported as an operator would.
    mkdirSync(join(lib, 'bootenvs/live-immutable'), { recursive: true });
    writeFileSync(join(lib, 'bootenvs/live-immutable/bootenv.yaml'), BOOTENV);
    rack.cli(['bootenvs', 'import', lib]);
    rack.cli(['machines', 'create', NAME, '--site', SITE, '--mac', MAC, '--bootenv', 'live-immutable']);
    await rack.waitForAgent((l) => l.msg === 'desired state updated' && Number(l.machines) >= 1, 'the machine in the site state', 60_000);
    first = rack.bootVm({ name: 'live1', firmware: 'bios', mac: MAC });
  });

  afterAll(() => {
    rack?.destroy();
    rmSync(lib, { recursive: true, force: true });
  });

  it('first boot: Ignition config fetched from the agent, checked, applied, success reported', async () => {
    const wrote = await first.waitForSerial(/live: ignition (3\.4\.0) wrote \/run\/hello: (.*)/, 'the Ignition file written on the console', 600_000);
    expect(wrote[2].trim()).toBe(`hello from ${NAME}`);
    const cmdline = /Command line: (.*)/.exec(first.serial())?.[1] ?? '';
    expect(cmdline).toMatch(new RegExp(`ignition\\.config\\.url=http://${AGENT_ADDRESS.replace(/\./g, '\\.')}:8080/m/[A-Za-z0-9_-]{43}/config\\.ign`));
    expect(cmdline).toContain('ignition.firstboot');
    await first.waitForSerial(/live: first boot complete, reported to \S+\/done/, 'the success callback', 120_000);
  });

  it('the machine switched to local boot with netboot disallowed, at the central too', async () => {
    const m = (await until(
      () => rack.machines(MAC).find((x) => x.state === 'deployed'),
      'the central to record the install',
      120_000,
    )) as { bootenv: string; netboot: boolean };
    expect(m.bootenv).toBe('local');
    expect(m.netboot).toBe(false);
  });

  it('the next PXE boot does not reinstall: DHCP gives it no boot file, and its script would boot the disk', async () => {
    await until(() => /exited/.test(first.exitInfo()) || undefined, 'the first boot to reboot (QEMU -no-reboot exits)', 120_000);
    const servedBefore = rack.agentLines().filter((l) => l.msg === 'served iPXE script' && l.mac === MAC).length;
    const refusedBefore = rack.agentLines().filter((l) => l.msg === 'dhcp: no boot file' && l.mac === MAC).length;
    const second = rack.bootVm({ name: 'live2', firmware: 'bios', mac: MAC });
    await rack.waitForAgent(
      (l) => l.msg === 'dhcp: no boot file' && l.mac === MAC && l.reason === 'netboot-disallowed' && rack.agentLines().filter((x) => x.msg === 'dhcp: no boot file' && x.mac === MAC).length > refusedBefore,
      'the second boot’s DHCP request answered without a boot file',
      300_000,
      second,
    );
    // Give the second boot time to do anything it would do: it must not load the live image again.
    await new Promise((r) => setTimeout(r, 20_000));
    expect(rack.agentLines().filter((l) => l.msg === 'served iPXE script' && l.mac === MAC)).toHaveLength(servedBefore);
    expect(second.serial()).not.toContain('live: ignition');
    // Even an iPXE that asks anyway gets a boot-from-disk script.
    const script = rack.ns.exec(['busybox', 'wget', '-q', '-O', '-', `http://${AGENT_ADDRESS}:8080/ipxe/script?mac=${MAC}&platform=pcbios&buildarch=i386`]);
    expect(script).toContain('sanboot --no-describe --drive 0x80');
    expect(script).not.toContain('ignition');
    expect(rack.agentLines().filter((l) => l.msg === 'install reported success: machine switched to local boot')).toHaveLength(1);
    await second.stop();
  });
});
