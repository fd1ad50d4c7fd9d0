import { describe, expect, it } from 'vitest';
import { InvalidError } from '../../shared/errors/domain-errors.js';
import { renderPayload, type StepScope } from './render.js';

const scope = (over: Partial<StepScope> = {}): StepScope => ({
  machine: { id: 'm1', name: 'node-1', site: 'dc1', address: '198.18.0.11', addresses: ['198.18.0.11'], state: 'ready' },
  params: { role: 'etcd', size: 3 },
  run: { id: 'r1', workflow: 'w', stage: 's', step: 'x', attempt: 1 },
  services: { 'demo-etcd': { passing: 2, members: [{ id: 'node-1-2379', machine: 'node-1', address: '198.18.0.11', port: 2379, status: 'passing', tags: [] }, { id: 'node-2-2379', machine: 'node-2', address: '198.18.0.12', port: 2379, status: 'passing', tags: [] }] } },
  ...over,
});

describe('step payload templates', () => {
  it('renders every string leaf with the machine, params, run and service members; keys and non-strings stay as they are', () => {
    const out = renderPayload(
      {
        script: "echo {{ machine.name }} {{ params.role }} {% for m in services['demo-etcd'].members %}{{ m.address }}:{{ m.port }} {% endfor %}",
        nested: { list: ['{{ run.id }}', 7, true, null], '{{ machine.name }}': 'k' },
        timeoutSec: 30,
      },
      scope(),
    );
    expect(out).toEqual({ script: 'echo node-1 etcd 198.18.0.11:2379 198.18.0.12:2379 ', nested: { list: ['r1', 7, true, null], '{{ machine.name }}': 'k' }, timeoutSec: 30 });
  });

  it('values that came from machines are data: template syntax in them is never evaluated, and they cannot add keys', () => {
    const hostile = '{{ run.id }}{% raw %}", "scriptB64": "evil'; // a hostname a machine reported
    const s = scope({ machine: { ...scope().machine, name: hostile }, params: { note: '{% for i in (1..99999999) %}x{% endfor %}' } });
    const out = renderPayload({ a: '{{ machine.name }}', b: '{{ params.note }}' }, s);
    expect(out).toEqual({ a: hostile, b: '{% for i in (1..99999999) %}x{% endfor %}' });
    expect(Object.keys(out)).toEqual(['a', 'b']);
  });

  it('the sandbox holds: unknown variables, unknown filters and runaway loops fail the render with the path, as InvalidError', () => {
    expect(() => renderPayload({ a: { b: '{{ params.nope }}' } }, scope())).toThrow(InvalidError);
    expect(() => renderPayload({ a: { b: '{{ params.nope }}' } }, scope())).toThrow(/payload\.a\.b/);
    expect(() => renderPayload({ a: '{{ machine.name | system }}' }, scope())).toThrow(/payload\.a/);
    expect(() => renderPayload({ a: '{% for i in (1..100000000) %}{{ i }}{% endfor %}' }, scope())).toThrow(InvalidError);
    expect(() => renderPayload({ a: "{% include '/etc/passwd' %}" }, scope())).toThrow(InvalidError);
  });

  it('shell_quote makes an injected value one shell word', () => {
    const s = scope({ params: { role: "x'; rm -rf / #" } });
    expect(renderPayload({ script: 'echo {{ params.role | shell_quote }}' }, s).script).toBe(`echo 'x'\\''; rm -rf / #'`);
  });
});
