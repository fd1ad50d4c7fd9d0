import { describe, expect, it } from 'vitest';
import { TemplateEngine, toTemplateData } from './engine.js';
import { MissingParamError, RenderError, TemplateRenderError } from './errors.js';

const scope = {
  machine: { name: 'web1', macs: ['52:54:00:12:34:56'] },
  params: { hostname: 'web1.example', keys: ['ssh-ed25519 AAAA one', 'ssh-ed25519 AAAA two'] },
};

function renderErr(engine: TemplateEngine, src: string, s: Record<string, unknown> = scope): RenderError {
  try {
    const out = engine.render('t', src, s);
    throw new Error(`expected a render error, got output ${JSON.stringify(out)}`);
  } catch (err) {
    expect(err).toBeInstanceOf(RenderError);
    return err as RenderError;
  }
}

describe('TemplateEngine', () => {
  const engine = new TemplateEngine({
    snippets: { 'ssh-keys': '{% for k in keys %}- {{ k }}\n{% endfor %}', greet: 'hello {{ machine.name }}' },
  });

  it('renders variables, snippets via render (isolated scope) and include (shared scope)', () => {
    expect(engine.render('t', '{{ machine.name }} {{ params.hostname }}', scope)).toBe('web1 web1.example');
    expect(engine.render('t', "{% render 'ssh-keys', keys: params.keys %}", scope)).toBe('- ssh-ed25519 AAAA one\n- ssh-ed25519 AAAA two\n');
    expect(engine.render('t', "{% include 'greet' %}", scope)).toBe('hello web1');
  });

  it('has json, base64, yaml, indent and shell_quote filters', () => {
    expect(JSON.parse(engine.render('t', '{{ params | json }}', scope))).toEqual(scope.params);
    expect(Buffer.from(engine.render('t', '{{ machine.name | base64 }}', scope), 'base64').toString()).toBe('web1');
    expect(engine.render('t', 'keys:\n  {{ params.keys | yaml | indent: 2 }}', scope)).toBe('keys:\n  - ssh-ed25519 AAAA one\n  - ssh-ed25519 AAAA two');
    expect(engine.render('t', "{{ \"it's\" | shell_quote }}", scope)).toBe(`'it'\\''s'`);
  });

  it('file_url works only when the caller supplies the hook', () => {
    expect(engine.render('t', "{{ 'a/b.img' | file_url }}", scope, { fileUrl: (p) => `http://agent/files/${p}` })).toBe('http://agent/files/a/b.img');
    expect(renderErr(engine, "{{ 'a/b.img' | file_url }}").message).toMatch(/file_url/);
  });

  it('a missing param is a MissingParamError naming it, never an empty string', () => {
    const err = renderErr(engine, 'disk={{ params.install_disk }}');
    expect(err).toBeInstanceOf(MissingParamError);
    expect((err as MissingParamError).param).toBe('install_disk');
    expect(err.message).toMatch(/install_disk/);
  });

  it('optional params work through if and default (lenientIf)', () => {
    expect(engine.render('t', '{% if params.missing %}x{% else %}y{% endif %}', scope)).toBe('y');
    expect(engine.render('t', "{{ params.missing | default: 'z' }}", scope)).toBe('z');
  });

  it('unknown filters are errors (strictFilters)', () => {
    expect(renderErr(engine, '{{ machine.name | nosuchfilter }}')).toBeInstanceOf(TemplateRenderError);
  });

  describe('sandbox escapes all fail', () => {
    const attempts: Array<[string, string]> = [
      ['constructor of a value', '{{ machine.name.constructor }}'],
      ['constructor chain', "{{ machine.constructor.constructor('return process')() }}"],
      ['constructor via brackets', "{{ machine['constructor']['constructor'] }}"],
      ['__proto__', '{{ machine.__proto__ }}'],
      ['__proto__ via brackets', "{{ params['__proto__'].toString }}"],
      ['prototype methods', '{{ params.keys.push }}'],
      ['hasOwnProperty', '{{ params.hasOwnProperty }}'],
      ['process', '{{ process.env.HOME }}'],
      ['require', "{{ require('fs') }}"],
      ['globalThis', '{{ globalThis.process }}'],
      ['global', '{{ global }}'],
      ['this', '{{ this }}'],
      ['include /etc/passwd', "{% include '/etc/passwd' %}"],
      ['render /etc/passwd', "{% render '/etc/passwd' %}"],
      ['include relative path', "{% include '../../../../etc/passwd' %}"],
      ['include a file next to the code', "{% include 'engine.ts' %}"],
      ['include prototype name', "{% include 'constructor' %}"],
      ['layout from disk', "{% layout '/etc/passwd' %}"],
      ['huge loop', '{% for i in (1..100000000) %}{% for j in (1..100000000) %}x{% endfor %}{% endfor %}'],
      ['long loop (templateLimit)', '{% for i in (1..1000000) %}{{ i }}{% endfor %}'],
      ['memory blow-up', "{% assign s = 'xxxxxxxxxx' %}{% for i in (1..40) %}{% assign s = s | append: s %}{% endfor %}{{ s | size }}"],
      ['self-including snippet', "{% include 'loop' %}"],
    ];
    const sandboxed = new TemplateEngine({ snippets: { loop: "{% include 'loop' %}" }, limits: { renderLimit: 500 } });
    it.each(attempts)('%s', (_label, src) => {
      renderErr(sandboxed, src);
    });

    it('a too-large template is refused by parseLimit', () => {
      const small = new TemplateEngine({ limits: { parseLimit: 100 } });
      expect(renderErr(small, 'x'.repeat(1000))).toBeInstanceOf(TemplateRenderError);
    });

    it('functions placed in the scope are not reachable', () => {
      let called = false;
      const s = { fn: () => ((called = true), 'secret'), machine: { name: 'x' } };
      renderErr(sandboxed, '{{ fn }}', s);
      expect(called).toBe(false);
      expect(toTemplateData(s)).toEqual({ machine: { name: 'x' } });
    });
  });

  it('rejects bad snippet names and limits at construction', () => {
    expect(() => new TemplateEngine({ snippets: { '../x': 'a' } })).toThrow(/snippet name/);
    expect(() => new TemplateEngine({ limits: { renderLimit: 0 } })).toThrow(/renderLimit/);
  });

  it('check() reports syntax errors with the template name', () => {
    expect(() => engine.check('mytpl', '{% if %}')).toThrow(/mytpl/);
    expect(() => engine.check('mytpl', '{{ a | json }}')).not.toThrow();
  });
});
