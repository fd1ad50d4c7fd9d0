import { randomBytes } from 'node:crypto';
import { InvalidRenderError, MissingParamError, RenderError } from '../../shared/render/errors.js';
import { UnpinnedUrlError } from '../../shared/bootenv/pinning.js';
import type { BootHttp } from './boot-http.js';
import { RenderFailedError } from './errors.js';

/**
 * A render failure, reported without values: RenderError messages may quote param values or rendered
 * text (validators echo what they rejected), so the client gets only a generic line with an error id,
 * and the log and the central's event get the id, the template, the error kind and (for a missing param)
 * its name. The full reason is what `underlay bootenvs preview` shows an operator on the central.
 */
export async function renderFailure(h: BootHttp, e: unknown, where: { mac: string; machineId: string; path: string }): Promise<RenderFailedError> {
  const errorId = randomBytes(6).toString('hex');
  const safe = {
    errorId,
    ...where,
    kind: e instanceof Error ? e.name : 'Error',
    ...(e instanceof RenderError ? { template: e.template } : {}),
    ...(e instanceof MissingParamError ? { param: e.param } : {}),
    ...(e instanceof InvalidRenderError ? { validator: e.validator } : {}),
    // Upstream URLs are configuration, not secrets: the operator needs them to pin or fetch.
    ...(e instanceof UnpinnedUrlError ? { bootenv: e.bootenv, unpinned: e.urls.map((u) => u.url), reason: e.message } : {}),
  };
  h.log.error(safe, 'could not render boot configuration; not serving it (run "underlay bootenvs preview" for the reason)');
  await h.o.rt.emitEvent('render-error', safe).catch(() => undefined);
  return new RenderFailedError(`render error (id ${errorId}); the site agent's log has the details`);
}
