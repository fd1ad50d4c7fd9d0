import type { Hono } from 'hono';
import { z } from 'zod';
import type { BootHttp } from './boot-http.js';
import { ForbiddenError, InvalidError, UnavailableError } from '../../shared/errors/domain-errors.js';
import { unpinnedUrls, UnpinnedUrlError } from '../../shared/bootenv/pinning.js';
import { renderFailure } from './render-failure.js';
import { BOOT_ROUTES } from '../boot/urls.js';

/** Stands in for the token in a boot-from-disk script (which renders no URL that would carry it). */
const LOCAL_BOOT_NO_TOKEN = 'local-boot-no-token';

export const MacQuery = z.string().regex(/^([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}$/).transform((m) => m.toLowerCase().replace(/-/g, ':'));

/**
 * iPXE entry (`/boot.ipxe`) and per-machine scripts (`/ipxe/script?mac=`). Every script served mints a
 * fresh boot token for that MAC (agent/http/boot-sessions.ts): knowing a MAC gets a script and a token,
 * but a token is only the right to claim that boot once, and a claim that is not the first is raised.
 */
export function registerBootScripts(app: Hono, h: BootHttp): void {
  app.get(BOOT_ROUTES.entryScript, (c) =>
    c.text(
      [
        '#!ipxe',
        'set try:int32 0',
        ':retry',
        `chain ${h.urls.machineScript}?mac=\${mac}&uuid=\${uuid}&buildarch=\${buildarch}&platform=\${platform} && goto done || goto failed`,
        ':failed',
        'iseq ${try} 5 && goto giveup ||',
        'inc try',
        'echo Underlay: could not load this machine\'s boot script; retrying in 5 s',
        'sleep 5',
        'goto retry',
        ':giveup',
        'echo Underlay: giving up; booting from disk',
        'exit',
        ':done',
        '',
      ].join('\n'),
      200,
      { 'content-type': 'text/plain; charset=utf-8' },
    ),
  );

  app.get(BOOT_ROUTES.machineScript, async (c) => {
    const mac = MacQuery.safeParse(c.req.query('mac'));
    if (!mac.success) throw new InvalidError('the request carried no valid MAC (?mac=52:54:00:12:34:56)');
    h.limits.script.take(mac.data, h.remote(c));
    // Every script is a new boot token: when this agent's DHCP leased the MAC an address, only a request
    // from that address gets one (an attacker must then take the machine's address, not just know its MAC).
    const platform = c.req.query('platform');
    const arch = c.req.query('buildarch');
    let machineId = h.machineIdOf(mac.data);
    // A machine that boots from its disk gets a script without a token: nothing to claim, nothing minted.
    const known = h.machineByMac(mac.data);
    const netboots = !known || known.netboot;
    const remote = h.remote(c);
    const leased = netboots ? (h.o.leasedAddresses?.(mac.data) ?? []) : [];
    if (leased.length > 0 && !leased.includes(remote)) {
      h.log.warn({ mac: mac.data, remote, leased }, 'boot script for a MAC requested from an address not leased to it; no boot token minted');
      await h.emit('boot-script-refused', { machineId, mac: mac.data, remote, leased });
      throw new ForbiddenError('this address does not hold the lease of that MAC');
    }
    let token = netboots ? await h.sessions.mint(mac.data, machineId) : LOCAL_BOOT_NO_TOKEN;
    // The site's desired state can change while the token is written (the central just learned this MAC):
    // the script renders the machine as it is now, so the token must name that same machine, or its
    // claim would bind the boot to the identity the MAC had a moment ago.
    for (let tries = 0; netboots && h.machineIdOf(mac.data) !== machineId && tries < 3; tries++) {
      machineId = h.machineIdOf(mac.data);
      token = await h.sessions.mint(mac.data, machineId);
    }
    if (netboots && h.machineIdOf(mac.data) !== machineId) throw new UnavailableError('the site state is changing; retry the boot script');
    let script: string;
    try {
      const ctx = h.context(mac.data, token, { ...(platform === 'pcbios' || platform === 'efi' ? { platform } : {}), ...(arch && /^[a-z0-9_]{1,16}$/.test(arch) ? { arch } : {}) });
      if (ctx.bootenv && !h.o.allowUnpinned) {
        const unheld = unpinnedUrls(ctx.bootenv).filter((u) => !h.o.localArtifact?.(u.url));
        if (unheld.length) throw new UnpinnedUrlError(ctx.bootenv.name, unheld);
      }
      script = h.renderer().ipxeScript(ctx);
    } catch (e) {
      throw await renderFailure(h, e, { mac: mac.data, machineId, path: 'ipxe' });
    }
    h.log.info({ mac: mac.data, known: !!h.machineByMac(mac.data), platform }, 'served iPXE script');
    return c.text(script, 200, { 'content-type': 'text/plain; charset=utf-8' });
  });
}
