import { describe, expect, it } from 'vitest';
import cloudConfigSchema from './schemas/cloud-init-cloud-config-v1.json' with { type: 'json' };
import ignition34 from './schemas/ignition-v3_4.json' with { type: 'json' };
import ignition35 from './schemas/ignition-v3_5.json' with { type: 'json' };
import { InvalidRenderError } from './errors.js';
import { checkRendered, validateRendered } from './validate.js';

describe('ignition', () => {
  const good = { ignition: { version: '3.4.0' }, storage: { files: [{ path: '/etc/motd', contents: { source: 'data:,hi' } }] } };
  it('accepts a valid 3.4.0 and 3.5.0 config', () => {
    expect(checkRendered('ignition', JSON.stringify(good))).toEqual([]);
    expect(checkRendered('ignition', JSON.stringify({ ...good, ignition: { version: '3.5.0' } }))).toEqual([]);
  });
  it.each([
    ['unparseable JSON', '{"ignition": {"version": "3.4.0"},}', /not JSON/],
    ['no version', '{"storage": {}}', /ignition\.version/],
    ['unknown version', '{"ignition": {"version": "2.2.0"}}', /unsupported ignition\.version "2\.2\.0"/],
    ['wrong type', JSON.stringify({ ignition: { version: '3.4.0' }, storage: { files: 'nope' } }), /\/storage\/files: must be array/],
    ['missing required field', JSON.stringify({ ignition: { version: '3.4.0' }, passwd: { users: [{}] } }), /name/],
    ['not an object', '[1,2]', /object/],
  ])('rejects %s', (_l, text, re) => {
    expect(checkRendered('ignition', text).join('; ')).toMatch(re);
    expect(() => validateRendered('ignition', 'fcos/config.ign', text)).toThrow(InvalidRenderError);
  });
  it('InvalidRenderError names the template and the validator', () => {
    try {
      validateRendered('ignition', 'fcos/config.ign', '{');
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidRenderError);
      expect((e as InvalidRenderError).template).toBe('fcos/config.ign');
      expect((e as InvalidRenderError).validator).toBe('ignition');
      expect((e as Error).message).toMatch(/^fcos\/config\.ign: rendered output is not valid ignition/);
    }
  });
});

describe('cloud-config', () => {
  it('accepts valid cloud-config (with autoinstall, which cloud-init ignores)', () => {
    expect(checkRendered('cloud-config', '#cloud-config\nhostname: a\nruncmd:\n  - [echo, hi]\n')).toEqual([]);
    expect(checkRendered('cloud-config', '#cloud-config\nautoinstall:\n  version: 1\n')).toEqual([]);
    expect(checkRendered('cloud-config', '#cloud-config\n')).toEqual([]);
  });
  it.each([
    ['missing header', 'hostname: a\n', /#cloud-config/],
    ['broken YAML', '#cloud-config\nhostname: [a\n', /YAML/],
    ['duplicate keys', '#cloud-config\nhostname: a\nhostname: b\n', /YAML/],
    ['schema violation', '#cloud-config\nruncmd: 5\n', /\/runcmd: must be array/],
    ['bad nested type', '#cloud-config\nusers:\n  - name: a\n    lock_passwd: "maybe"\n', /lock_passwd/],
    ['top-level list', '#cloud-config\n- a\n', /mapping/],
  ])('rejects %s', (_l, text, re) => {
    expect(checkRendered('cloud-config', text).join('; ')).toMatch(re);
  });
});

describe('kickstart', () => {
  const ks = 'text\nrootpw --iscrypted x\n%packages\n@core\n%end\n%post\necho hi\n%end\n';
  it('accepts a well-formed kickstart', () => expect(checkRendered('kickstart', ks)).toEqual([]));
  it.each([
    ['unclosed section', 'text\n%post\necho\n', /%post opened on line 2 has no %end/],
    ['stray %end', 'text\n%end\n', /%end without an open section/],
    ['nested section', 'text\n%post\n%packages\n%end\n', /inside %post/],
    ['unknown command', 'text\nfrobnicate --now\n', /unknown kickstart command "frobnicate"/],
    ['unknown section', 'text\n%weird\n%end\n', /unknown section/],
    ['empty', '# nothing\n', /no kickstart commands/],
  ])('rejects %s', (_l, text, re) => expect(checkRendered('kickstart', text).join('; ')).toMatch(re));
});

describe('preseed', () => {
  it('accepts owner/question/type/value lines, comments and continuations', () => {
    expect(checkRendered('preseed', '#_preseed_V1\nd-i netcfg/get_hostname string a\nd-i preseed/late_command string \\\n  echo a; \\\n  echo b\nd-i mirror/http/proxy string\n')).toEqual([]);
  });
  it.each([
    ['too few fields', 'd-i netcfg/get_hostname\n', /expected "owner question type value"/],
    ['unknown type', 'd-i netcfg/get_hostname strung a\n', /unknown type "strung"/],
    ['bad boolean', 'd-i passwd/make-user boolean yes\n', /must be true or false/],
    ['question without /', 'd-i hostname string a\n', /has no "\/"/],
  ])('rejects %s', (_l, text, re) => expect(checkRendered('preseed', text).join('; ')).toMatch(re));
});

describe('ipxe', () => {
  it('accepts a script with labels, chains and variables', () => {
    expect(checkRendered('ipxe', '#!ipxe\n:retry\ndhcp && goto ok || goto retry\n:ok\nchain http://x/${mac} ; echo done\n')).toEqual([]);
  });
  it.each([
    ['no shebang', 'kernel x\n', /#!ipxe/],
    ['unknown command', '#!ipxe\nkernal http://x\n', /unknown command "kernal"/],
    ['missing goto target', '#!ipxe\ngoto nowhere\n', /":nowhere" does not exist/],
    ['dangling operator', '#!ipxe\nboot ||\n', /ends with an operator/],
    ['control characters', '#!ipxe\necho \x1b[2J\n', /control character/],
  ])('rejects %s', (_l, text, re) => expect(checkRendered('ipxe', text).join('; ')).toMatch(re));
});

describe('json and yaml', () => {
  it('parse or fail', () => {
    expect(checkRendered('json', '{"a":1}')).toEqual([]);
    expect(checkRendered('json', '{a:1}')[0]).toMatch(/not JSON/);
    expect(checkRendered('yaml', 'a: 1\n')).toEqual([]);
    expect(checkRendered('yaml', 'a: [1\n')[0]).toMatch(/YAML/);
    expect(checkRendered('none', '\u0000anything')).toEqual([]);
  });
});

describe('vendored schemas', () => {
  // validate.ts compiles draft-04 schemas with ajv's default draft: safe only while they use nothing draft-04-only.
  function keywords(node: unknown, out = new Set<string>()): Set<string> {
    if (Array.isArray(node)) node.forEach((n) => keywords(n, out));
    else if (node && typeof node === 'object')
      for (const [k, v] of Object.entries(node)) {
        if (k === 'properties' || k === '$defs' || k === 'definitions' || k === 'patternProperties') Object.values(v as object).forEach((n) => keywords(n, out));
        else {
          out.add(k);
          keywords(v, out);
        }
      }
    return out;
  }
  it.each([
    ['ignition 3.4', ignition34],
    ['ignition 3.5', ignition35],
    ['cloud-config', cloudConfigSchema],
  ])('%s uses no draft-04-only keywords', (_n, schema) => {
    const kw = keywords(schema);
    expect(kw.has('id')).toBe(false);
    for (const k of ['exclusiveMinimum', 'exclusiveMaximum']) expect(kw.has(k)).toBe(false);
  });
});
