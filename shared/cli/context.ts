import type { Command } from 'commander';
import { ApiClient, ApiClientError, resolveClientConfig } from '../client/api-client.js';
import { defaultFormat, type OutputFormat } from './output.js';
import { exitCodeForError, exitCodeForStatus } from './exit-codes.js';

export interface GlobalOptions {
  url?: string;
  token?: string;
  ca?: string;
  output?: OutputFormat;
}

/** The root command's connection and output options, from any subcommand. */
export function globals(cmd: Command): { client: () => ApiClient; format: OutputFormat } {
  const o = cmd.optsWithGlobals<GlobalOptions>();
  return {
    client: () => new ApiClient(resolveClientConfig({ url: o.url, token: o.token, ca: o.ca })),
    format: o.output ?? defaultFormat(),
  };
}

/** Runs a command action, printing API errors as one readable line and exiting non-zero. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (e) {
      if (e instanceof ApiClientError) {
        const details = Array.isArray(e.details) ? ` (${(e.details as { path?: string; message?: string }[]).map((d) => `${d.path}: ${d.message}`).join('; ')})` : '';
        process.stderr.write(`error: ${e.message}${details && !e.message.includes(':') ? details : ''} [${e.status} ${e.code}]\n`);
        process.exitCode = exitCodeForStatus(e.status);
      } else {
        process.stderr.write(`error: ${(e as Error).message}\n`);
        process.exitCode = exitCodeForError(e);
      }
    }
  };
}

/** "key=value" → [key, value], the value parsed as JSON when it is valid JSON (numbers, booleans, objects). */
export function parseKeyValue(text: string): [string, unknown] {
  const i = text.indexOf('=');
  if (i <= 0) throw new Error(`expected key=value, got "${text}"`);
  const key = text.slice(0, i);
  const raw = text.slice(i + 1);
  try {
    return [key, JSON.parse(raw)];
  } catch {
    return [key, raw];
  }
}

export const collect = (v: string, prev: string[] = []) => [...prev, v];
