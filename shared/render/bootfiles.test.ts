import { describe, expect, it } from 'vitest';
import { BUILTIN_DISCOVERY, BUILTIN_LOCAL } from '../bootenv/builtin.js';
import { parseBootEnv, type BootEnvInput } from '../bootenv/schema.js';
import { BootRenderer, listMachinePaths, renderFile, renderIpxeScript } from './bootfiles.js';
import { InvalidRenderError, MissingParamError, NoSuchFileError, RenderError, TemplateRenderError } from './errors.js';
import { checkRendered } from './validate.js';
import { sampleContext } from './sample-context.test-support.js';

const env = (over: Partial<BootEnvInput> = {}) =>
  parseBootEnv({
    name: 'test-os',
    os: { family: 'test' },
    kernel: { url: 'test/vmlinuz' },
    initrds: [{ url: 'https://mirror.example/initrd.img' }, { url: 'test/extra.img', name: 'extra' }],
    bootParams: 'root=live:{{ urls.machineBase }}/x disk={{ params.disk }}',
    requiredParams: ['disk'],
    templates: [
      { name: 'config.ign', path: 'config.ign', template: '{"ignition":{"version":"3.4.0"},"storage":{"disks":[{"device":{{ params.disk | json }}}]}}', validate: 'ignition' },
      { name: 'user-data', path: 'user-data', template: '#cloud-config\nhostname: {{ machine.name }}\n', validate: 'cloud-config' },
    ],
    ...over,
  });

const params = { disk: '/dev/vda' };

describe('renderIpxeScript', () => {
  it('builds kernel + initrds with relative URLs under /files/ and absolute ones unchanged (pcbios)', () => {
    const ctx = sampleContext(env(), { params });
    const s = renderIpxeScript(ctx);
    expect(checkRendered('ipxe', s)).toEqual([]);
    expect(s).toContain(`kernel ${ctx.urls.files('test/vmlinuz')} root=live:${ctx.urls.machineBase}/x disk=/dev/vda || goto failed`);
    expect(s).toContain('initrd https://mirror.example/initrd.img || goto failed');
    expect(s).toContain(`initrd ${ctx.urls.files('test/extra.img')} || goto failed`);
    expect(s).not.toContain('--name');
  });

  it('names initrds and passes initrd=<name> on UEFI, and when the platform is unknown', () => {
    for (const platform of ['efi', undefined] as const) {
      const ctx = sampleContext(env(), { params, machine: { platform } });
      const s = renderIpxeScript(ctx);
      expect(s).toMatch(/^kernel \S+ initrd=main initrd=extra root=live:/m);
      expect(s).toContain('initrd --name main https://mirror.example/initrd.img');
      expect(s).toContain(`initrd --name extra ${ctx.urls.files('test/extra.img')}`);
    }
  });

  it('retries the fetch 3 times then reboots', () => {
    const s = renderIpxeScript(sampleContext(env(), { params }));
    expect(s).toMatch(/:failed\niseq \$\{try\} 3 && goto give_up \|\| inc try\n[^\n]*\nsleep 5\ngoto fetch\n:give_up\n/);
  });

  it('unknown machines get discovery whatever their bootenv says', () => {
    const ctx = sampleContext(env(), { machine: { known: false } });
    const s = renderIpxeScript(ctx);
    expect(s).toContain(`kernel ${ctx.urls.files('discovery/vmlinuz')} underlay.url=${ctx.agent.httpUrl} underlay.token=${ctx.token} underlay.mac=\${mac}`);
    expect(s).not.toContain('test/vmlinuz');
  });

  it('uses a site-supplied discovery bootenv when given', () => {
    const custom = parseBootEnv({ ...BUILTIN_DISCOVERY, kernel: { url: 'discovery/v2/vmlinuz' } });
    const s = renderIpxeScript({ ...sampleContext(env(), { machine: { known: false } }), discovery: custom });
    expect(s).toContain('/files/discovery/v2/vmlinuz');
  });

  it('netboot disallowed → local boot: sanboot on pcbios, exit on efi, a runtime choice when unknown', () => {
    const s = (platform?: 'pcbios' | 'efi') => renderIpxeScript(sampleContext(env(), { params, machine: { netboot: false, platform } }));
    expect(s('pcbios')).toMatch(/^sanboot --no-describe --drive 0x80$/m);
    expect(s('pcbios')).not.toMatch(/^exit$/m);
    expect(s('efi')).toMatch(/^exit$/m);
    expect(s('efi')).not.toContain('sanboot');
    expect(s(undefined)).toContain('iseq ${platform} efi && exit || sanboot --no-describe --drive 0x80');
    for (const p of ['pcbios', 'efi', undefined] as const) expect(checkRendered('ipxe', s(p))).toEqual([]);
  });

  it('a local bootenv boots from disk even with netboot allowed', () => {
    expect(renderIpxeScript(sampleContext(BUILTIN_LOCAL, { machine: { platform: 'efi' } }))).toMatch(/^exit$/m);
  });

  it('refuses an onlyUnknown bootenv on a known machine', () => {
    const once = parseBootEnv({ ...BUILTIN_DISCOVERY, name: 'enlist-once' });
    expect(() => renderIpxeScript(sampleContext(once))).toThrow(/only for unknown machines/);
  });

  it('a known machine left on discovery (the default) boots discovery again: rediscovery after a reboot', () => {
    const s = renderIpxeScript(sampleContext(BUILTIN_DISCOVERY));
    expect(s).toMatch(/^kernel .*discovery\/vmlinuz .*underlay\.machine=/m);
    expect(checkRendered('ipxe', s)).toEqual([]);
  });

  it('a missing required param is a MissingParamError naming the param', () => {
    const err = (() => {
      try {
        renderIpxeScript(sampleContext(env()));
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(MissingParamError);
    expect((err as MissingParamError).param).toBe('disk');
    expect((err as Error).message).toMatch(/"disk"/);
  });

  it('a param read by a template but not declared is also a MissingParamError naming it', () => {
    const e = env({ bootParams: 'x={{ params.not_declared }}', requiredParams: [] });
    expect(() => renderIpxeScript(sampleContext(e))).toThrow(/not_declared/);
    try {
      renderIpxeScript(sampleContext(e));
    } catch (err) {
      expect((err as MissingParamError).param).toBe('not_declared');
    }
  });

  it('a param value cannot inject iPXE commands: the kernel line stays one line', () => {
    const s = renderIpxeScript(sampleContext(env(), { params: { disk: '/dev/vda\nshell\n:x' } }));
    expect(checkRendered('ipxe', s)).toEqual([]);
    expect(s).not.toMatch(/^shell$/m);
    expect(s).toMatch(/disk=\/dev\/vda shell :x \|\| goto failed$/m);
  });

  it('custom ipxe templates are rendered and must pass the iPXE check', () => {
    const ok = env({ ipxe: '#!ipxe\nchain {{ urls.machineBase }}/next\n' });
    expect(renderIpxeScript(sampleContext(ok, { params }))).toBe(`#!ipxe\nchain ${sampleContext(ok).urls.machineBase}/next\n`);
    const bad = env({ ipxe: '#!ipxe\ngoto {{ params.disk | remove: "/" }}\n' });
    expect(() => renderIpxeScript(sampleContext(bad, { params }))).toThrow(InvalidRenderError);
  });

  it('rejects a bad context at the edge (MAC, token, platform) before rendering anything', () => {
    const ctx = sampleContext(env(), { params });
    expect(() => renderIpxeScript({ ...ctx, machine: { ...ctx.machine, macs: ['52:54:00:12:34:56\nshell'] } })).toThrow(/macs/);
    expect(() => renderIpxeScript({ ...ctx, token: 'a b' })).toThrow(/token/);
    expect(() => renderIpxeScript({ ...ctx, machine: { ...ctx.machine, platform: 'arm' as never } })).toThrow(TemplateRenderError);
  });
});

describe('renderFile', () => {
  it('renders and validates a file, with its content type', () => {
    const f = renderFile(sampleContext(env(), { params }), '/config.ign');
    expect(f.path).toBe('config.ign');
    expect(f.template).toBe('test-os/config.ign');
    expect(f.contentType).toMatch(/json/);
    expect(JSON.parse(f.body).storage.disks[0].device).toBe('/dev/vda');
  });

  it('rejects a broken Ignition render with a typed error naming the template', () => {
    // A param that is not a string makes the device a number: valid JSON, invalid Ignition.
    const bad = () => renderFile(sampleContext(env(), { params: { disk: 5 } }), 'config.ign');
    expect(bad).toThrow(InvalidRenderError);
    expect(bad).toThrow(/test-os\/config\.ign: rendered output is not valid ignition: .*device/);
    const broken = env({ templates: [{ name: 'config.ign', path: 'config.ign', template: '{"ignition":{"version":"3.4.0"},{{ params.disk }}}', validate: 'ignition' }] });
    expect(() => renderFile(sampleContext(broken, { params }), 'config.ign')).toThrow(/not JSON/);
  });

  it('rejects a broken cloud-config render', () => {
    const broken = env({ templates: [{ name: 'user-data', path: 'user-data', template: '#cloud-config\nruncmd: {{ params.disk | json }}\n', validate: 'cloud-config' }] });
    expect(() => renderFile(sampleContext(broken, { params }), 'user-data')).toThrow(/user-data: rendered output is not valid cloud-config: \/runcmd: must be array/);
  });

  it('unknown paths are NoSuchFileError; unknown machines (discovery) serve nothing', () => {
    expect(() => renderFile(sampleContext(env(), { params }), 'nope')).toThrow(NoSuchFileError);
    expect(() => renderFile(sampleContext(env(), { params, machine: { known: false } }), 'config.ign')).toThrow(NoSuchFileError);
  });

  it('every failure is a RenderError', () => {
    expect(() => renderFile(sampleContext(env()), 'config.ign')).toThrow(RenderError);
  });

  it('snippets in the context are used', () => {
    const e = env({ templates: [{ name: 'f', path: 'f', template: "{% include 'greet' %}" }] });
    expect(renderFile(sampleContext(e, { params, snippets: { greet: 'hi {{ machine.name }}' } }), 'f').body).toBe('hi node01');
  });
});

describe('listMachinePaths', () => {
  it('lists template paths', () => {
    expect(listMachinePaths(env())).toEqual(['config.ign', 'user-data']);
    expect(listMachinePaths(BUILTIN_LOCAL)).toEqual([]);
  });
});

describe('BootRenderer.preview', () => {
  it('reports each file rendered or with the error that keeps it from being served', () => {
    const r = new BootRenderer();
    const p = r.preview(sampleContext(env(), { params: { disk: 5 } }));
    expect(p.bootenv).toBe('test-os');
    expect(p.ipxe.ok).toBe(true);
    const byPath = Object.fromEntries(p.files.map((f) => [f.path, f.result]));
    expect(byPath['user-data']?.ok).toBe(true);
    expect(byPath['config.ign']?.ok).toBe(false);
    if (byPath['config.ign'] && !byPath['config.ign'].ok) expect(byPath['config.ign'].error).toBeInstanceOf(InvalidRenderError);
  });

  it('an unknown machine previews discovery; a known machine without a bootenv is an error', () => {
    const ctx = sampleContext(env(), { machine: { known: false } });
    const { bootenv: _dropped, ...noEnv } = ctx;
    expect(new BootRenderer().preview(noEnv).bootenv).toBe('discovery');
    expect(() => renderIpxeScript({ ...noEnv, machine: { ...ctx.machine, known: true } })).toThrow(/has no boot environment/);
  });
});

describe('BootRenderer', () => {
  it('templates see `pki`: the CA files on the installed OS, each CA’s PEM and each service’s bundle', () => {
    const tpl = 'write_files:\n  - path: /etc/app/tls.conf\n    content: |\n      cert={{ pki.cas.demo.cert }} key={{ pki.cas.demo.key }} ca={{ pki.cas.demo.ca }} crl={{ pki.cas.demo.crl }} dir={{ pki.dir }}\n  - path: /etc/app/ca.pem\n    content: {{ pki.bundles.demo | json }}\n';
    const e = env({ templates: [{ name: 'user-data', path: 'user-data', template: `#cloud-config\n${tpl}`, validate: 'cloud-config' }] });
    const ca = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const ctx = { ...sampleContext(e, { params }), serviceCas: [{ name: 'demo', service: 'demo', certificate: ca }] };
    const body = renderFile(ctx, 'user-data').body;
    expect(body).toContain('cert=/etc/underlay/certs/demo/cert.pem key=/etc/underlay/certs/demo/key.pem ca=/etc/underlay/certs/demo/ca.pem crl=/etc/underlay/certs/demo/crl.pem dir=/etc/underlay/certs');
    expect(body).toContain(`content: ${JSON.stringify(ca)}`);
    // The discovery environment's runner keeps them under /run; a CA the site does not have is an error.
    const disco = { ...env({ name: 'discovery', templates: [{ name: 'x', path: 'x', template: '{{ pki.cas.demo.cert }}', validate: 'none' }] }) };
    expect(renderFile({ ...sampleContext(disco, { params }), discovery: disco, serviceCas: ctx.serviceCas }, 'x').body).toBe('/run/underlay/certs/demo/cert.pem');
    expect(() => renderFile(sampleContext(e, { params }), 'user-data')).toThrow(RenderError);
  });

  it('is deterministic: same context, same bytes', () => {
    const r = new BootRenderer();
    const ctx = sampleContext(env(), { params });
    expect(r.ipxeScript(ctx)).toBe(r.ipxeScript(ctx));
    expect(r.file(ctx, 'user-data').body).toBe(r.file(ctx, 'user-data').body);
  });
});
