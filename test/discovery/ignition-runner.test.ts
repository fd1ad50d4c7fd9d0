// The runner's Ignition step (images/discovery/deploy.sh, run_ignition) with the real `ignition` binary from
// Debian's `ignition` package: the machine's rendered config is fetched from a loopback stand-in for the
// agent (/m/<installed-OS credential>/config.ign, with the credential), then Ignition itself runs
// fetch-offline and files (-platform file, -root) against a directory standing in for the mounted new root.
// Asserts what Ignition wrote (a file, a systemd unit and its enablement preset).
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkPrereqs } from '../support/require.js';
import { ignitionBinaries } from '../support/ignition.js';

const REPO = resolve(import.meta.dirname, '../..');
const ready = checkPrereqs('Ignition in the runner', { root: true, commands: ['busybox', 'curl', 'apt-get', 'dpkg-deb'] });
const CRED = 'Q'.repeat(43);

describe.skipIf(!ready)('Ignition applied by the real ignition binary from the runner', () => {
  const work = mkdtempSync(join(tmpdir(), 'ul-ignition-'));
  const root = join(work, 'root');
  const bin = join(work, 'bin');
  let server: Server;
  let url: string;
  const asked: { path: string; auth?: string }[] = [];
  const config = {
    ignition: { version: '3.3.0' },
    storage: { files: [{ path: '/etc/underlay-ignition.txt', mode: 420, contents: { source: 'data:,applied%20by%20ignition%0A' } }] },
    systemd: { units: [{ name: 'hello.service', enabled: true, contents: '[Unit]\nDescription=hello\n[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n' }] },
  };

  beforeAll(async () => {
    mkdirSync(join(root, 'etc'), { recursive: true });
    for (const f of ['passwd', 'group', 'shadow', 'gshadow', 'login.defs']) if (existsSync(`/etc/${f}`)) writeFileSync(join(root, 'etc', f), readFileSync(`/etc/${f}`));
    mkdirSync(bin);
    execFileSync('cp', [ignitionBinaries().ignition, join(bin, 'ignition')]);
    server = createServer((req, res) => {
      asked.push({ path: req.url ?? '', ...(req.headers.authorization ? { auth: req.headers.authorization } : {}) });
      if (req.url === `/m/${CRED}/config.ign`) return res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(config));
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }, 300_000);
  afterAll(async () => {
    await new Promise((r) => server?.close(r));
    rmSync(work, { recursive: true, force: true });
  });

  it('fetches the config with the credential and ignition writes files and units into the new root', async () => {
    const state = join(work, 'state');
    mkdirSync(join(state, 'tasks', 't1'), { recursive: true });
    writeFileSync(join(work, 'cmdline'), `underlay.url=${url}\n`);
    const script = `. "$UNDERLAY_LIB"
ul_init_env
UL_SESSION=${CRED}; TASKS="$UL_STATE/tasks"
. "$UL_LIBDIR/deploy.sh"
if run_ignition t1 "$TASKS/t1" "${root}" "${url}/m/${CRED}/"; then echo IGNITION-OK; else echo "IGNITION-FAILED: $(cat "$TASKS/t1/seed.err")"; cat "$TASKS/t1/ign/log"; fi
`;
    const { stdout } = await promisify(execFile)('/bin/busybox', ['sh', '-c', script], {
      encoding: 'utf8',
      env: { PATH: `${bin}:/usr/sbin:/usr/bin:/sbin:/bin`, UNDERLAY_LIB: join(REPO, 'images/discovery/lib.sh'), UNDERLAY_STATE: state, UNDERLAY_CMDLINE_FILE: join(work, 'cmdline'), UNDERLAY_NO_CONSOLE: '1' },
      timeout: 120_000,
    });
    expect(stdout).toContain('IGNITION-OK');
    expect(asked).toContainEqual({ path: `/m/${CRED}/config.ign`, auth: `Bearer ${CRED}` });
    expect(readFileSync(join(root, 'etc/underlay-ignition.txt'), 'utf8')).toBe('applied by ignition\n');
    expect(readFileSync(join(root, 'etc/systemd/system/hello.service'), 'utf8')).toContain('ExecStart=/bin/true');
    expect(readFileSync(join(root, 'etc/systemd/system-preset/20-ignition.preset'), 'utf8')).toContain('enable hello.service');
    // …and the runner enabled it as systemctl would (Debian's systemd applies no presets at first boot).
    expect(readlinkSync(join(root, 'etc/systemd/system/multi-user.target.wants/hello.service'))).toBe('/etc/systemd/system/hello.service');
    expect(existsSync(join(root, 'etc/selinux'))).toBe(false); // the relabel stand-ins are gone again
  }, 180_000);
});
