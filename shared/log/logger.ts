import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Structured logs (pino) to stderr, so stdout stays clean for command output (`-o json`).
 * Level from UNDERLAY_LOG_LEVEL (default info). Secrets are redacted by path wherever they may appear.
 */
export function createLogger(name: string, level = process.env.UNDERLAY_LOG_LEVEL ?? 'info'): Logger {
  return pino(
    {
      name,
      level,
      redact: {
        paths: ['token', '*.token', 'authorization', '*.authorization', 'headers.authorization', 'secret', '*.secret', 'password', '*.password'],
        censor: '[redacted]',
      },
    },
    pino.destination(2),
  );
}

/** A logger that drops everything: the default for library code and unit tests. */
export const silentLogger: Logger = pino({ level: 'silent' });
