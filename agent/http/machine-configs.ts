import type { Hono } from 'hono';
import { NoSuchFileError } from '../../shared/render/errors.js';
import type { BootHttp } from './boot-http.js';
import type { BootSession } from './boot-sessions.js';
import { sessionForUrl } from './boot-claim.js';
import { InvalidError, NotFoundError } from '../../shared/errors/domain-errors.js';
import { SecretsGoneError } from './errors.js';
import { renderFailure } from './render-failure.js';
import { BOOT_ROUTES, machineFilePathOf } from '../boot/urls.js';

/**
 * Per-machine rendered configuration (`/m/<token>/<path>`: Ignition, NoCloud, kickstart, preseed …) and
 * the install-done callback (`POST /m/<token>/done`). Both need the boot's session: the bearer
 * credential of the session that claimed `<token>`, or (URL-only clients: Ignition, cloud-init) the
 * source address that claimed it with its first request. A config that carries secrets goes to one
 * session per deploy; later sessions get 410 and an event until the operator re-arms the machine.
 */
export function registerMachineConfigs(app: Hono, h: BootHttp): void {
  app.get(BOOT_ROUTES.machineFile, async (c) => {
    const token = c.req.param('token');
    // An installed OS's credential (cloud-init's NoCloud seed URL, Ignition) or a boot token.
    const s = h.o.osCredentials?.session(token, h.remote(c)) ?? (await sessionForUrl(h, c, token));
    h.limits.config.take(s.mac, h.remote(c));
    let path: string;
    try {
      path = decodeURIComponent(machineFilePathOf(c.req.path, token));
    } catch {
      throw new InvalidError('bad path');
    }
    let opened = 0;
    const open = h.o.openSecret;
    const counting = open ? { openSecret: (v: unknown) => (opened++, open(v)) } : {};
    let f;
    try {
      f = h.renderer().file(h.context(s.mac, token, counting), path);
    } catch (e) {
      if (e instanceof NoSuchFileError) throw new NotFoundError('this boot environment serves no such file');
      throw await renderFailure(h, e, { mac: s.mac, machineId: s.machine, path });
    }
    if (opened > 0 && carriesSecrets(h, s, token, path, f.body)) await guardSecrets(h, s, path);
    return c.body(f.body, 200, { 'content-type': f.contentType ?? 'text/plain; charset=utf-8' });
  });

  // Reinstall-loop guard: an install reports success; the machine boots from disk from now on.
  app.post(BOOT_ROUTES.installDone, async (c) => {
    const s = await sessionForUrl(h, c, c.req.param('token'));
    const m = h.o.rt.desiredState.machineById(s.machine);
    if (!m) throw new NotFoundError('unknown machine');
    await h.emit('install-done', { machineId: m.id, mac: s.mac, bootenv: m.bootenv });
    await h.o.rt.desiredState.override(m.id, { netboot: false, bootenv: 'local' });
    h.log.info({ machine: m.id, mac: s.mac }, 'install reported success: machine switched to local boot');
    return c.json({ ok: true, bootenv: 'local', netboot: false });
  });
}

/** Whether the file depends on a secret: rendered with every sealed value masked, it comes out different (or fails). */
function carriesSecrets(h: BootHttp, s: BootSession, token: string, path: string, body: string): boolean {
  try {
    return h.renderer().file(h.context(s.mac, token, { openSecret: () => '[sealed]' }), path).body !== body;
  } catch {
    return true;
  }
}

/** Secrets once per deploy: the first session to receive them holds them until the operator re-arms. */
async function guardSecrets(h: BootHttp, s: BootSession, path: string): Promise<void> {
  const gen = h.o.rt.desiredState.machineById(s.machine)?.secretsGeneration ?? 0;
  if (!(await h.sessions.takeSecrets(s.machine, gen, s))) {
    h.log.warn({ machine: s.machine, mac: s.mac, remote: s.remote, path, generation: gen }, 'refused a config with secrets: already served to another session for this deploy');
    await h.emit('boot-secrets-refused', { machineId: s.machine, mac: s.mac, remote: s.remote, path, generation: gen });
    throw new SecretsGoneError();
  }
}
