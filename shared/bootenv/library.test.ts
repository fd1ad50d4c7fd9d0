import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BootRenderer, listMachinePaths } from '../render/bootfiles.js';
import { checkRendered } from '../render/validate.js';
import { SAMPLE_PARAMS, sampleContext } from '../render/sample-context.test-support.js';
import { BUILTIN_DISCOVERY, BUILTIN_LOCAL } from './builtin.js';
import { BootenvLibraryError, loadBootenvLibrary } from './library.js';

const IMAGES = new URL('../../images/', import.meta.url).pathname;
const library = loadBootenvLibrary(IMAGES);
const renderer = new BootRenderer({ snippets: library.snippets });
const byName = new Map(library.bootenvs.map((b) => [b.name, b]));

describe('images/bootenvs library', () => {
  it('has the boot environments the product promises', () => {
    for (const n of ['discovery', 'local', 'fedora-coreos-live', 'fedora-coreos-install', 'flatcar', 'linuxkit', 'ubuntu-cloud', 'debian-cloud', 'debian', 'ubuntu', 'rocky', 'alma', 'talos'])
      expect(byName.has(n), n).toBe(true);
  });

  it('pins every upstream kernel/initrd URL, or marks the boot environment as needing --allow-unpinned', () => {
    for (const env of library.bootenvs) {
      const upstream = [env.kernel, ...env.initrds].filter((a) => a && /^https?:/.test(a.url));
      const unpinned = upstream.filter((a) => !a!.sha256);
      expect(unpinned.length === 0 || env.unpinned === true, env.name).toBe(true);
    }
    // Today no upstream hash is recorded in the library (it cannot be computed offline): those are all marked.
    expect(library.bootenvs.filter((b) => b.unpinned).map((b) => b.name).sort()).toEqual(
      ['alma', 'debian', 'fedora-coreos-install', 'fedora-coreos-live', 'flatcar', 'rocky', 'talos', 'ubuntu', 'ubuntu-cloud'],
    );
  });

  it('discovery and local match the built-ins the renderer falls back to', () => {
    expect(byName.get('discovery')).toEqual(BUILTIN_DISCOVERY);
    expect(byName.get('local')).toEqual(BUILTIN_LOCAL);
  });

  const bootable = library.bootenvs.filter((b) => !b.onlyUnknown);
  for (const platform of ['pcbios', 'efi'] as const) {
    describe(`renders for a ${platform} machine`, () => {
      it.each(bootable.map((b) => [b.name, b] as const))('%s', (_n, env) => {
        const ctx = sampleContext(env, { machine: { platform }, params: SAMPLE_PARAMS, snippets: library.snippets });
        const script = renderer.ipxeScript(ctx);
        expect(checkRendered('ipxe', script)).toEqual([]);
        if (env.local) {
          expect(script).toContain(platform === 'efi' ? '\nexit' : 'sanboot --no-describe --drive 0x80');
          return;
        }
        expect(script).toContain(`kernel ${/^https?:/.test(env.kernel!.url) ? env.kernel!.url : ctx.urls.files(env.kernel!.url)}`);
        if (platform === 'efi') {
          expect(script).toMatch(/^kernel \S+ initrd=main /m);
          expect(script).toMatch(/^initrd --name main /m);
        } else {
          expect(script).not.toContain('initrd=main');
        }
        // Every file the bootenv serves renders and passes its declared validator (renderer.file validates).
        for (const path of listMachinePaths(env)) {
          const f = renderer.file(ctx, path);
          expect(f.body.length, path).toBeGreaterThanOrEqual(0);
          const tpl = env.templates.find((t) => t.path === path)!;
          expect(checkRendered(tpl.validate, f.body), `${env.name}/${path}`).toEqual([]);
        }
        if (env.install) {
          const all = [renderer.kernelCommandLine(ctx), ...listMachinePaths(env).map((p) => renderer.file(ctx, p).body)].join('\n');
          expect(all, `${env.name} must call urls.done`).toContain(ctx.urls.done);
        }
      });
    });
  }

  it('debian-cloud: the discovery kernel while netboot is on, and a first-boot cloud-config from params', () => {
    const env = byName.get('debian-cloud')!;
    const params = {
      ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq8xO2vU0hQ0v6N7kKX0r4cQ9x1Yb2m3n4o5p6q7r8s ops@example'],
      users: [{ name: 'ops', shell: '/bin/bash', sudo: 'ALL=(ALL) NOPASSWD:ALL', ssh_authorized_keys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq8xO2vU0hQ0v6N7kKX0r4cQ9x1Yb2m3n4o5p6q7r8s ops@example'] }],
      write_files: [{ path: '/etc/motd', content: 'deployed by underlay\n', permissions: '0644' }],
      runcmd: [['touch', '/var/tmp/first-boot']],
    };
    const ctx = sampleContext(env, { params, snippets: library.snippets });
    const line = renderer.kernelCommandLine(ctx);
    expect(line).toContain(`underlay.token=${ctx.token}`);
    expect(line).not.toMatch(/write-image|https?:\/\/(?!198\.|127\.)/);
    expect(renderer.ipxeScript(ctx)).toContain(`kernel ${ctx.urls.files('discovery/vmlinuz')}`);
    const ud = renderer.file(ctx, 'user-data').body;
    expect(ud).toContain('users: [{"name":"ops"');
    expect(ud).toContain('write_files: [{"path":"/etc/motd","content":"deployed by underlay\\n","permissions":"0644"}]');
    expect(ud).toContain('runcmd: [["touch","/var/tmp/first-boot"]]');
    expect(checkRendered('cloud-config', ud)).toEqual([]);
    expect(renderer.file(ctx, 'meta-data').body).toContain(`instance-id: ${JSON.stringify(ctx.machine.id)}`);
  });

  it('installers get the success callback; live and ephemeral ones do not', () => {
    expect(bootable.filter((b) => b.install).map((b) => b.name).sort()).toEqual(['alma', 'debian', 'fedora-coreos-install', 'rocky', 'ubuntu']);
  });

  it('an unknown machine gets the discovery kernel line from docs/agent-http.md', () => {
    const ctx = sampleContext(byName.get('rocky')!, { machine: { known: false }, snippets: library.snippets });
    const script = renderer.ipxeScript(ctx);
    expect(script).toContain(
      `kernel ${ctx.urls.files('discovery/vmlinuz')} underlay.url=${ctx.agent.httpUrl} underlay.token=${ctx.token} underlay.mac=\${mac} underlay.machine=${ctx.machine.id} underlay.pubkey=${ctx.agent.pubkey} console=ttyS0`,
    );
    expect(script).toContain(`initrd ${ctx.urls.files('discovery/initrd.img')}`);
  });

  it('kernel lines carry the OS-specific arguments', () => {
    const line = (n: string) => renderer.kernelCommandLine(sampleContext(byName.get(n)!, { params: SAMPLE_PARAMS, snippets: library.snippets }));
    const base = sampleContext(BUILTIN_LOCAL).urls.machineBase;
    expect(line('fedora-coreos-install')).toMatch(/coreos\.live\.rootfs_url=https:\/\/\S+ coreos\.inst\.install_dev=\/dev\/sda coreos\.inst\.ignition_url=\S+\/config\.ign ignition\.firstboot ignition\.platform\.id=metal ignition\.config\.url=\S+\/live\.ign/);
    expect(line('fedora-coreos-live')).toContain(`ignition.config.url=${base}/config.ign`);
    expect(line('flatcar')).toMatch(/flatcar\.first_boot=1 ignition\.config\.url=\S+\/config\.ign/);
    expect(line('ubuntu-cloud')).toContain(`ds=nocloud;s=${base}/`);
    expect(line('ubuntu')).toContain(`autoinstall ds=nocloud;s=${base}/`);
    expect(line('rocky')).toContain(`inst.ks=${base}/ks.cfg`);
    expect(line('debian')).toContain(`url=${base}/preseed.cfg`);
    expect(line('linuxkit')).toContain(`underlay.metadata_url=${base}/latest/`);
  });
});

describe('loadBootenvLibrary rejects bad libraries', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  function lib(files: Record<string, string>): string {
    const d = mkdtempSync(join(tmpdir(), 'underlay-bootenvs-'));
    dirs.push(d);
    for (const [p, text] of Object.entries(files)) {
      mkdirSync(join(d, 'bootenvs', p, '..'), { recursive: true });
      writeFileSync(join(d, 'bootenvs', p), text);
    }
    return d;
  }
  const ok = 'name: x\nos: { family: t }\nkernel: { url: a/vmlinuz }\n';

  it('loads a minimal library with a templateFile and a snippet', () => {
    const d = lib({ 'x/bootenv.yaml': ok + 'templates:\n  - { name: f, path: f.json, templateFile: f.liquid, validate: json }\n', 'x/f.liquid': "{% include 's' %}", '_snippets/s.liquid': '{"a":1}\n' });
    const l = loadBootenvLibrary(d);
    expect(l.bootenvs[0]!.templates[0]!.template).toBe("{% include 's' %}");
    expect(l.snippets).toEqual({ s: '{"a":1}' });
  });

  it.each([
    ['name not matching its folder', { 'x/bootenv.yaml': ok.replace('name: x', 'name: y') }, /must match its folder/],
    ['unknown key', { 'x/bootenv.yaml': ok + 'bogus: 1\n' }, /bogus/],
    ['no kernel', { 'x/bootenv.yaml': 'name: x\nos: { family: t }\n' }, /kernel/],
    ['.. in a relative kernel URL', { 'x/bootenv.yaml': 'name: x\nos: { family: t }\nkernel: { url: ../../etc/passwd }\n' }, /relative/],
    ['templateFile outside the folder', { 'x/bootenv.yaml': ok + 'templates:\n  - { name: f, path: f, templateFile: ../y/f }\n' }, /templateFile/],
    ['Liquid syntax error', { 'x/bootenv.yaml': ok + "bootParams: '{% if %}'\n" }, /x\/bootParams/],
    ['unknown filter', { 'x/bootenv.yaml': ok + "bootParams: '{{ a | nope }}'\n" }, /nope/],
    ['duplicate paths', { 'x/bootenv.yaml': ok + 'templates:\n  - { name: a, path: f, template: x }\n  - { name: b, path: f, template: y }\n' }, /used twice/],
    ['reserved done path', { 'x/bootenv.yaml': ok + 'templates:\n  - { name: a, path: done, template: x }\n' }, /reserved/],
    ['bad sha256', { 'x/bootenv.yaml': 'name: x\nos: { family: t }\nkernel: { url: a/k, sha256: abc }\n' }, /sha256/],
    ['duplicate YAML keys', { 'x/bootenv.yaml': ok + 'name: x\n' }, /unique|duplicate/i],
    ['an upstream kernel URL without sha256, not marked unpinned', { 'x/bootenv.yaml': 'name: x\nos: { family: t }\nkernel: { url: https://up.example/k }\n' }, /kernel\.url https:\/\/up\.example\/k: upstream URL without sha256/],
    ['an unpinned upstream initrd URL, not marked', { 'x/bootenv.yaml': ok + 'initrds: [{ url: http://up.example/i }]\n' }, /initrds\.0\.url http:\/\/up\.example\/i/],
    ['marked unpinned with nothing unpinned', { 'x/bootenv.yaml': ok + 'unpinned: true\n' }, /drop the mark/],
  ])('%s', (_label, files, re) => {
    const d = lib(files as Record<string, string>);
    expect(() => loadBootenvLibrary(d)).toThrow(BootenvLibraryError);
    expect(() => loadBootenvLibrary(d)).toThrow(re);
  });

  it('accepts a pinned upstream URL, or an unpinned one in a boot environment marked unpinned', () => {
    const pinned = lib({ 'x/bootenv.yaml': `name: x\nos: { family: t }\nkernel: { url: https://up.example/k, sha256: ${'a'.repeat(64)} }\n` });
    expect(loadBootenvLibrary(pinned).bootenvs[0]!.kernel!.sha256).toBe('a'.repeat(64));
    const marked = lib({ 'x/bootenv.yaml': 'name: x\nos: { family: t }\nunpinned: true\nkernel: { url: https://up.example/k }\n' });
    expect(loadBootenvLibrary(marked).bootenvs[0]!.unpinned).toBe(true);
  });

  it('refuses a template file that is a symlink out of the folder', () => {
    const d = lib({ 'x/bootenv.yaml': ok + 'templates:\n  - { name: f, path: f, templateFile: f.liquid }\n' });
    symlinkSync('/etc/passwd', join(d, 'bootenvs', 'x', 'f.liquid'));
    expect(() => loadBootenvLibrary(d)).toThrow(/outside/);
  });
});
