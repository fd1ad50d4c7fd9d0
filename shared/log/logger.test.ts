import { PassThrough } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { logFormat, prettyStream, REDACT } from './logger.js';

describe('log format', () => {
  it('is human on a terminal and JSON otherwise (systemd, pipes, files); UNDERLAY_LOG_FORMAT overrides', () => {
    expect(logFormat(true, {})).toBe('pretty');
    expect(logFormat(false, {})).toBe('json');
    expect(logFormat(undefined, {})).toBe('json');
    expect(logFormat(true, { UNDERLAY_LOG_FORMAT: 'json' })).toBe('json');
    expect(logFormat(false, { UNDERLAY_LOG_FORMAT: 'pretty' })).toBe('pretty');
  });
  it('the human form is one readable line, secrets still redacted, no colour with NO_COLOR', async () => {
    const sink = new PassThrough();
    let text = '';
    sink.on('data', (c: Buffer) => (text += c.toString()));
    const log = pino({ name: 'agent', redact: REDACT }, prettyStream(sink, { NO_COLOR: '1' }));
    log.info({ token: 'ul_secret', site: 'dc1' }, 'joined');
    await new Promise((r) => setTimeout(r, 50));
    expect(text).toMatch(/INFO.*\(agent\): joined/);
    expect(text).toContain('site: "dc1"');
    expect(text).toContain('[redacted]');
    expect(text).not.toContain('ul_secret');
    expect(text).not.toContain('\x1b[');
    expect(() => JSON.parse(text)).toThrow();
  });
});
