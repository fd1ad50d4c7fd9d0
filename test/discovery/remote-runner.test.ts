// Issue 15 on the runner alone: the real images/discovery/runner.sh under busybox sh on this host, fed
// signed exec / put-file / fetch-file envelopes by the loopback stand-in agent (test/discovery/
// stand-in-agent.mjs). A forged exec and a replayed exec are refused and never run; files travel in
// chunks that must line up; large output stays on the machine for fetch-file.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import sodium from 'libsodium-wrappers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signTask, type SignedTask } from '../../shared/envelope/envelope.js';
import { checkPrereqs } from '../support/require.js';
import { freePort } from '../central/support.js';

const REPO = resolve(import.meta.dirname, '../..');
const ready = checkPrereqs('runner exec/put-file/fetch-file', { commands: ['busybox', 'openssl', 'curl'] });
const MACHINE = 'm-remote';
const b64 = (b: string | Buffer) => Buffer.from(b).toString('base64');

interface Event { id: string; body: { state: string; output?: string; exitCode?: number; reason?: string } }

describe.skipIf(!ready)('the runner runs exec, put-file and fetch-file (and refuses forged or replayed ones)', () => {
  const work = mkdtempSync(join(tmpdir(), 'ul-remote-runner-'));
  const out = join(work, 'agent');
  const files = join(work, 'files');
  let agent: ChildProcess | undefined;
  let runner: ChildProcess | undefined;
  let runnerLog = '';
  const ids: Record<string, string> = {};
  const big = randomBytes(600 * 1024); // over one inline stdout (384 KiB): the rest is fetched
  const part1 = randomBytes(512 * 1024);
  const part2 = randomBytes(1000);

  beforeAll(async () => {
    await sodium.ready;
    mkdirSync(out);
    mkdirSync(files);
    writeFileSync(join(files, 'big.bin'), big);
    const key = sodium.crypto_sign_keypair();
    const other = sodium.crypto_sign_keypair();
    let seq = 0;
    const now = Date.now();
    const env = (name: string, kind: string, payload: unknown, signer = key.privateKey, expiresAt = new Date(now + 3_600_000).toISOString()): SignedTask => {
      ids[name] = randomUUID();
      return signTask({ v: 1, id: ids[name]!, site: 's', agent: 'agent-test', seq: ++seq, kind, machine: MACHINE, payload, issuedAt: new Date(now).toISOString(), expiresAt }, signer);
    };
    const counter = join(files, 'runs');
    const exec = env('exec', 'exec', { cmdB64: b64(`echo ran >>${counter}; cat; echo; echo to-stderr >&2; exit 7`), stdinB64: b64('from stdin') });
    const tasks = [
      env('forged', 'exec', { cmdB64: b64(`echo forged >>${counter}`) }, other.privateKey),
      exec,
      exec, // the same signed task again: a replay
      env('put1', 'put-file', { path: join(files, 'up.bin'), offset: 0, dataB64: b64(part1), final: false }),
      env('putBad', 'put-file', { path: join(files, 'up.bin'), offset: 5, dataB64: b64('x'), final: false }),
      env('put2', 'put-file', { path: join(files, 'up.bin'), offset: part1.length, dataB64: b64(part2), final: true, mode: '0600' }),
      env('bigOut', 'exec', { cmdB64: b64(`cat ${join(files, 'big.bin')}`) }),
      env('fetch', 'fetch-file', { path: join(files, 'big.bin'), offset: 1000, length: 2000 }),
      env('fetchMissing', 'fetch-file', { path: join(files, 'nope'), offset: 0, length: 10 }),
      env('stdinFile', 'exec', { cmdB64: b64('wc -c'), stdinPath: join(files, 'up.bin') }),
      // expired a second ago (the runner's expiry check is shell arithmetic on the ISO time)
      env('expired', 'exec', { cmdB64: b64(`echo expired >>${counter}`) }, key.privateKey, new Date(Date.now() - 1000).toISOString()),
      env('timed', 'exec', { cmdB64: b64('echo started; sleep 30; echo late'), timeoutSec: 1 }),
    ];
    writeFileSync(join(work, 'tasks.json'), JSON.stringify(tasks));
    const port = await freePort();
    const token = randomBytes(16).toString('hex');
    agent = spawn('node', [join(REPO, 'test/discovery/stand-in-agent.mjs'), '--host', '127.0.0.1', '--port', String(port), '--dir', out, '--token', token, '--tasks', join(work, 'tasks.json'), '--machine', MACHINE], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((r) => agent!.stdout!.once('data', () => r()));
    writeFileSync(join(work, 'cmdline'), `underlay.url=http://127.0.0.1:${port} underlay.token=${token} underlay.mac=52:54:00:15:99:01 underlay.machine=${MACHINE} underlay.pubkey=${b64(Buffer.from(key.publicKey))}\n`);
    mkdirSync(join(work, 'state'));
    runner = spawn('busybox', ['sh', '-c', `. "$UNDERLAY_LIB"; ul_init_env; ul_claim || exit 3; exec busybox sh ${join(REPO, 'images/discovery/runner.sh')}`], {
      env: { PATH: process.env.PATH, HOME: work, UNDERLAY_LIB: join(REPO, 'images/discovery/lib.sh'), UNDERLAY_STATE: join(work, 'state'), UNDERLAY_CMDLINE_FILE: join(work, 'cmdline'), UNDERLAY_NO_CONSOLE: '1' },
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: true, // its own process group: the long-poll curl dies with it
    });
    runner.stderr!.setEncoding('utf8').on('data', (d: string) => (runnerLog += d));
    // Every task has a final report (one per task id; the replay re-sends the first one's).
    const deadline = Date.now() + 240_000;
    while (finals().size < Object.keys(ids).length) {
      if (Date.now() > deadline) throw new Error(`runner did not report every task:\n${runnerLog.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  }, 300_000);
  afterAll(async () => {
    if (runner?.pid && runner.exitCode === null) {
      const gone = new Promise((r) => runner!.once('exit', r));
      process.kill(-runner.pid, 'SIGKILL');
      await gone;
    }
    agent?.kill('SIGKILL');
    if (!process.env.UL_KEEP) rmSync(work, { recursive: true, force: true });
  });

  const events = (): Event[] => (existsSync(join(out, 'events.jsonl')) ? readFileSync(join(out, 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Event) : []);
  function finals(): Map<string, Event['body']> {
    const m = new Map<string, Event['body']>();
    for (const e of events()) if (e.body.state !== 'running') m.set(e.id, e.body);
    return m;
  }
  const final = (name: string) => finals().get(ids[name]!)!;
  const execOut = (name: string) => {
    const [head, so, se] = final(name).output!.split('\n');
    return { head: head!.split(' '), stdout: Buffer.from(so!, 'base64'), stderr: Buffer.from(se!, 'base64') };
  };

  it('a forged exec is refused (bad-signature) and never runs; a replayed exec runs once', () => {
    expect(final('forged')).toMatchObject({ state: 'failed', output: 'bad-signature' });
    expect(readFileSync(join(files, 'runs'), 'utf8')).toBe('ran\n'); // not "forged", and the replay did not run
    expect(runnerLog).toContain(`task ${ids.exec} refused: already received (replay), not run again`);
  });

  it('an expired exec is refused and never runs; timeoutSec stops a command (exit 124 or 143); the runner logs its time per task', () => {
    expect(final('expired')).toMatchObject({ state: 'failed', output: 'expired' });
    expect(readFileSync(join(files, 'runs'), 'utf8')).not.toContain('expired');
    expect(final('timed').state).toBe('succeeded');
    expect([124, 143]).toContain(final('timed').exitCode); // GNU timeout says 124, busybox's the TERM (128 + 15)
    expect(execOut('timed').stdout.toString()).toBe('started\n');
    expect(runnerLog).toMatch(new RegExp(`task ${ids.exec} \\(exec\\) handled in \\d+ ms`));
  });

  it('exec: stdin in, stdout and stderr apart, the exit status as exitCode', () => {
    expect(final('exec')).toMatchObject({ state: 'succeeded', exitCode: 7 });
    const r = execOut('exec');
    expect(r.head.slice(0, 4)).toEqual(['underlay-exec', '1', '11', '10']);
    expect(r.stdout.toString()).toBe('from stdin\n');
    expect(r.stderr.toString()).toBe('to-stderr\n');
  });

  it('put-file: chunks append at their offset, a misaligned chunk is refused, the last one moves the file into place', () => {
    expect(final('put1')).toMatchObject({ state: 'succeeded', output: `underlay-put 1 ${part1.length}` });
    expect(final('putBad')).toMatchObject({ state: 'failed', reason: 'offset-mismatch' });
    expect(final('put2')).toMatchObject({ state: 'succeeded' });
    // stdinFile consumed up.bin as stdin (it is moved away): its length is what was uploaded
    expect(execOut('stdinFile').stdout.toString().trim()).toBe(String(part1.length + part2.length));
    expect(existsSync(join(files, 'up.bin'))).toBe(false);
  });

  it('exec output over the inline limit stays on the machine and fetch-file reads ranges of any file', () => {
    const r = execOut('bigOut');
    expect(Number(r.head[2])).toBe(big.length);
    expect(r.stdout.equals(big.subarray(0, 384 * 1024))).toBe(true);
    expect(readFileSync(join(r.head[4]!, 'stdout')).equals(big)).toBe(true);
    const f = final('fetch');
    const [head, data] = f.output!.split('\n');
    expect(head).toBe(`underlay-fetch 1 ${big.length}`);
    expect(Buffer.from(data!, 'base64').equals(big.subarray(1000, 3000))).toBe(true);
    expect(final('fetchMissing')).toMatchObject({ state: 'failed', reason: 'not-found' });
  });
});
