import { Writable } from 'node:stream';
import { pino, type Logger } from 'pino';

export interface CapturedLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

/** A pino logger whose lines land in `lines` (parsed), for unit tests that assert on logs. */
export function captureLogger(level = 'info'): { logger: Logger; lines: CapturedLine[] } {
  const lines: CapturedLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(JSON.parse(chunk.toString()) as CapturedLine);
      cb();
    },
  });
  return { logger: pino({ level }, sink), lines };
}
