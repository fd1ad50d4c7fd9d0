import { describe, expect, it } from 'vitest';
import { jsonString } from './json-text.js';

describe('jsonString', () => {
  it('equals JSON.stringify for every single UTF-16 code unit and for mixed strings', () => {
    const differ: number[] = [];
    for (let c = 0; c <= 0xffff; c++) {
      const s = String.fromCharCode(c);
      if (jsonString(s) !== JSON.stringify(s) || jsonString(`a${s}b`) !== JSON.stringify(`a${s}b`)) differ.push(c);
    }
    expect(differ).toEqual([]);
    for (const s of ['', 'node-000001', '00000000-0000-4000-8000-000000000001', 'say "hi"\n', 'back \\ slash', '😀 pair', '\ud800 lone', 'lone \udfff', '\u2028\u2029', 'é ß 中文', '\u007f', '{"__ansible_unsafe":"x"}'])
      expect(jsonString(s)).toBe(JSON.stringify(s));
  });

  it('leaves no unescaped quote or control character (a value cannot break out of its string)', () => {
    const out = jsonString('x","underlay_site":"spoof\u0000');
    expect(JSON.parse(out)).toBe('x","underlay_site":"spoof\u0000');
  });
});
