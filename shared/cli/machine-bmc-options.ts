import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import type { FieldFlag } from './objects.js';

/**
 * `machines create|update --bmc ipmi://USER@HOST[:PORT]` (or `redfish://USER@HOST[:PORT][/SYSTEM-ID]`,
 * `--bmc none` removes it) and the password from `--bmc-password-file FILE` ("-" = stdin), a prompt
 * (`--bmc-password-prompt`, no echo) or UNDERLAY_BMC_PASSWORD; never from argv (`ps` shows argv). The
 * password goes into the machine's secret param (sealed to the site's agents by the central).
 */
export const BMC_FIELD_FLAGS: FieldFlag[] = [
  { flags: '--bmc <url>', description: 'the BMC: ipmi://USER@HOST[:PORT] or redfish://USER@HOST[:PORT][/SYSTEM-ID]; HOST may be left out (USER@) to take the address discovery read; "none" removes it', field: 'bmc' },
  { flags: '--bmc-password-file <file>', description: 'read the BMC password from this file ("-": stdin); or set UNDERLAY_BMC_PASSWORD, or --bmc-password-prompt', field: 'bmcPasswordFile' },
  { flags: '--bmc-password-prompt', description: 'ask for the BMC password (not echoed)', field: 'bmcPasswordPrompt', kind: 'bool' },
  { flags: '--bmc-password-param <name>', description: 'the secret param holding the password (default bmc_password)', field: 'bmcPasswordParam' },
  { flags: '--bmc-fingerprint <sha256>', description: 'Redfish: pin the BMC certificate (SHA-256 fingerprint)', field: 'bmcFingerprint' },
  { flags: '--bmc-ca <file>', description: 'Redfish: PEM of the CA (or self-signed certificate) the BMC presents', field: 'bmcCa' },
  { flags: '--bmc-insecure', description: 'Redfish: accept any certificate', field: 'bmcInsecure', kind: 'bool' },
];

/** Parses `--bmc`: the BmcConfigInput body (password never accepted in the URL). */
export function parseBmcUrl(text: string): Record<string, unknown> | null {
  if (text === 'none') return null;
  const m = /^(ipmi|redfish):\/\/([^@/:]+)(?::([^@/]*))?@([A-Za-z0-9.-]*|\[[0-9A-Fa-f:]+\])(?::(\d{1,5}))?(?:\/([A-Za-z0-9._-]+))?\/?$/.exec(text);
  if (!m) throw new Error(`--bmc "${redactUrl(text)}" is not ipmi://USER@HOST[:PORT] or redfish://USER@HOST[:PORT][/SYSTEM-ID]`);
  const [, type, user, pass, host, port, systemId] = m;
  if (pass !== undefined) throw new Error('--bmc must not carry the password (argv is visible to every user of the host): use --bmc-password-file, --bmc-password-prompt or UNDERLAY_BMC_PASSWORD');
  if (systemId && type !== 'redfish') throw new Error('--bmc: a system id (/ID) is for redfish:// only');
  const address = host!.replace(/^\[|\]$/g, '');
  return {
    type,
    username: decodeURIComponent(user!),
    ...(address ? { address } : {}),
    ...(port ? { port: Number(port) } : {}),
    ...(systemId ? { systemId } : {}),
  };
}

function redactUrl(text: string): string {
  return text.replace(/^([a-z]+:\/\/[^@/:]+):[^@/]*@/, '$1:***@');
}

/** Reads a password without echoing it (from the terminal). */
async function prompt(question: string): Promise<string> {
  if (!process.stdin.isTTY) throw new Error('--bmc-password-prompt needs a terminal; use --bmc-password-file - to read stdin');
  let muted = false;
  const out = new Writable({ write: (chunk, _enc, cb) => (muted ? cb() : process.stderr.write(chunk, cb)) });
  const rl = createInterface({ input: process.stdin, output: out, terminal: true });
  try {
    return await new Promise<string>((resolve) => {
      rl.question(question, (a) => resolve(a));
      muted = true;
    });
  } finally {
    rl.close();
    process.stderr.write('\n');
  }
}

/** The password from the flags or the environment, or undefined when none was given. */
async function bmcPassword(body: Record<string, unknown>, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  let pw: string | undefined;
  if (typeof body.bmcPasswordFile === 'string') pw = readFileSync(body.bmcPasswordFile === '-' ? 0 : body.bmcPasswordFile, 'utf8').replace(/\r?\n$/, '');
  else if (body.bmcPasswordPrompt) pw = await prompt('BMC password: ');
  else if (body.bmc !== undefined && env.UNDERLAY_BMC_PASSWORD) pw = env.UNDERLAY_BMC_PASSWORD;
  if (pw !== undefined && pw.length === 0) throw new Error('the BMC password is empty');
  return pw;
}

/** Turns the `--bmc*` flags of a create/update body into `bmc` and the password param. */
export async function bmcBody(body: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): Promise<Record<string, unknown>> {
  const { bmc, bmcPasswordFile, bmcPasswordPrompt, bmcPasswordParam, bmcFingerprint, bmcCa, bmcInsecure, ...rest } = body;
  const out: Record<string, unknown> = { ...rest };
  const tls = { ...(typeof bmcCa === 'string' ? { ca: readFileSync(bmcCa, 'utf8') } : {}), ...(typeof bmcFingerprint === 'string' ? { fingerprint: bmcFingerprint } : {}), ...(bmcInsecure ? { insecure: true } : {}) };
  if (typeof bmc === 'string') {
    const parsed = parseBmcUrl(bmc);
    out.bmc = parsed && {
      ...parsed,
      ...(typeof bmcPasswordParam === 'string' ? { passwordParam: bmcPasswordParam } : {}),
      ...(Object.keys(tls).length ? { tls } : {}),
    };
  } else if (bmcPasswordParam !== undefined || Object.keys(tls).length) {
    throw new Error('--bmc-password-param, --bmc-fingerprint, --bmc-ca and --bmc-insecure go with --bmc (the whole BMC is set at once)');
  }
  const pw = await bmcPassword({ bmc, bmcPasswordFile, bmcPasswordPrompt }, env);
  if (pw !== undefined) {
    const param = typeof bmcPasswordParam === 'string' ? bmcPasswordParam : 'bmc_password';
    out.params = { ...((out.params as Record<string, unknown> | undefined) ?? {}), [param]: pw };
  }
  return out;
}
