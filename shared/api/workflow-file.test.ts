import { describe, expect, it } from 'vitest';
import { InvalidError } from '../errors/domain-errors.js';
import { matchesSelector, parseSelector } from './selector.js';
import { MAX_WORKFLOW_FILE_BYTES, parseWorkflowFile } from './workflow-file.js';

const YAML = `
name: k8s-node
description: deploy and join
stages:
  - name: register
    steps:
      - action: register-service
        with: { service: demo-etcd, port: 2379 }
  - name: join
    wait: { service: demo-etcd, passing: 3 }
    steps:
      - task: run-script
        payload:
          script: echo {{ machine.name }}
        retries: 2
        onFailure: goto register
`;

describe('workflow files', () => {
  it('parses YAML and JSON alike, filling defaults', () => {
    const w = parseWorkflowFile(YAML);
    expect(w.stages[1]).toMatchObject({ name: 'join', wait: { service: 'demo-etcd', passing: 3 }, approval: false, steps: [{ task: 'run-script', retries: 2, onFailure: 'goto register', timeout: '1h' }] });
    expect(parseWorkflowFile(JSON.stringify(w))).toEqual(w);
  });

  it('refuses unknown fields, a goto to no stage, duplicate stage names and duplicate keys, naming the path', () => {
    const bad = (text: string, re: RegExp) => {
      const e = (() => {
        try {
          parseWorkflowFile(text);
        } catch (x) {
          return x;
        }
      })();
      expect(e).toBeInstanceOf(InvalidError);
      expect((e as Error).message).toMatch(re);
    };
    bad(YAML.replace('retries: 2', 'retries: 2\n        shell: true'), /stages\.1\.steps\.0/);
    bad(YAML.replace('goto register', 'goto nowhere'), /no stage named "nowhere"/);
    bad(YAML.replace('name: join', 'name: register'), /named twice/);
    bad('name: a\nname: b\nstages: []', /not valid YAML|Map keys must be unique/);
    bad(YAML.replace('passing: 3', 'passing: 3, extra: 1'), /stages\.1\.wait/);
    bad(YAML.replace('{ service: demo-etcd, passing: 3 }', '{ machines: "rack=r1;drop", state: deployed }'), /selector/);
    bad(YAML.replace('action: register-service', 'action: exec'), /stages\.0\.steps\.0/);
  });

  it('hostile files: huge, deep (flow and block), alias bombs and non-objects are refused quickly', () => {
    expect(() => parseWorkflowFile('x'.repeat(MAX_WORKFLOW_FILE_BYTES + 1))).toThrow(/over 1000000 bytes/);
    expect(() => parseWorkflowFile('['.repeat(100_000))).toThrow(/deeper than 64/);
    const block = Array.from({ length: 200 }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n') + ' 1';
    expect(() => parseWorkflowFile(block)).toThrow(InvalidError);
    const bomb = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]', ...Array.from({ length: 9 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)}]`)].join('\n');
    // Refused by the alias limit (maxAliasCount), not after expanding 10^10 nodes.
    expect(() => parseWorkflowFile(bomb)).toThrow(InvalidError);
    expect(() => parseWorkflowFile(bomb)).toThrow(/alias/i);
    for (const t of ['', '42', '- a', 'null', ':::']) expect(() => parseWorkflowFile(t)).toThrow(InvalidError);
  });
});

describe('selectors', () => {
  it('parse key=value pairs and match machines on every pair (profile: any of them)', () => {
    const sel = parseSelector('rack=r1, site=dc1,profile=etcd');
    expect(sel).toEqual({ rack: 'r1', site: 'dc1', profile: 'etcd' });
    expect(matchesSelector(sel, { name: 'a', site: 'dc1', rack: 'r1', profiles: ['base', 'etcd'] })).toBe(true);
    expect(matchesSelector(sel, { name: 'a', site: 'dc1', rack: 'r2', profiles: ['etcd'] })).toBe(false);
    expect(matchesSelector(sel, { name: 'a', site: 'dc1', rack: 'r1' })).toBe(false);
  });
  it('refuse unknown keys, duplicates, bad values and overlong text', () => {
    for (const t of ['color=red', 'site=a,site=b', 'site=', 'site=a b', 'site', 'x'.repeat(600)]) expect(() => parseSelector(t)).toThrow(InvalidError);
  });
});
