import { pino, type DestinationStream, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { colorEnabled } from '../util/color.js';

export type { Logger };

export type LogFormat = 'json' | 'pretty';

/**
 * JSON lines unless a person watches: `pretty` (pino-pretty) when the log stream (stderr) is a terminal;
 * UNDERLAY_LOG_FORMAT=json|pretty overrides. Under systemd, in pipes and in files it is always JSON.
 */
export function logFormat(isTTY: boolean | undefined, env: NodeJS.ProcessEnv = process.env): LogFormat {
  const forced = env.UNDERLAY_LOG_FORMAT;
  if (forced === 'json' || forced === 'pretty') return forced;
  return isTTY ? 'pretty' : 'json';
}

export const REDACT = {
  paths: ['token', '*.token', 'authorization', '*.authorization', 'headers.authorization', 'secret', '*.secret', 'password', '*.password'],
  censor: '[redacted]',
};

/** The human form of the log (synchronous, to the given fd or stream; colour unless NO_COLOR). */
export function prettyStream(destination: number | NodeJS.WritableStream = 2, env: NodeJS.ProcessEnv = process.env): DestinationStream {
  return pretty({ destination, sync: true, colorize: colorEnabled(process.stderr, env), translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' });
}

/**
 * Structured logs (pino) to stderr, so stdout stays clean for command output (`-o json`).
 * Level from UNDERLAY_LOG_LEVEL (default info). Secrets are redacted by path wherever they may appear.
 */
export function createLogger(name: string, level = process.env.UNDERLAY_LOG_LEVEL ?? 'info'): Logger {
  const dest = logFormat(process.stderr.isTTY) === 'pretty' ? prettyStream(2) : pino.destination(2);
  return pino({ name, level, redact: REDACT }, dest);
}

/** A logger that drops everything: the default for library code and unit tests. */
export const silentLogger: Logger = pino({ level: 'silent' });
