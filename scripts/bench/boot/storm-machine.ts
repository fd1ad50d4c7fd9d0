/**
 * What a booting machine's firmware does after its DHCP ACK, for the boot storm (scripts/bench/boot):
 * the PXE ROM fetches the boot file over TFTP, then iPXE runs the agent's boot script, which fetches the
 * kernel and initrd over HTTP. The retries are the firmware's, not a benchmark's:
 *   - TFTP: the RRQ and each ACK are resent with a doubling timeout (1, 2, 4, 8, 8 … s), as PXE ROMs and
 *     iPXE back off; a server at capacity that stays silent is asked again, an ERROR packet ends the try.
 *   - HTTP: a 503 with Retry-After is retried after that delay by iPXE's HTTP layer (the script never sees
 *     it); any other failure (reset, timeout, wrong status or length) is the boot script's `|| goto failed`:
 *     5 s sleep and fetch kernel and initrd again, 3 retries (shared/render/bootfiles.ts renders that loop).
 * Giving up on TFTP or after the script's last retry is a failed boot here; the caller may reboot the
 * machine (whole PXE again) as the script's `reboot` does.
 */
import { Agent } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { tftpGet } from '../tftp-client.js';
import { httpGet } from './http-get.js';

export interface FirmwareSpec {
  server: string;
  tftpPort: number;
  tftpSize: number;
  blksize: number;
  httpBase: string;
  kernel: { path: string; size: number };
  initrd: { path: string; size: number };
  /** Scale of the firmware's sleeps (Retry-After, the script's 5 s; 1 = real firmware; tests use less). */
  sleepScale?: number;
}

export interface AfterDhcp {
  bootFile: string;
  nextServer?: string;
}

export interface FirmwareResult {
  ok: boolean;
  /** Which step failed and why. */
  error?: string;
  tftpMs: number;
  httpMs: number;
  /** 503 + Retry-After answers honoured. */
  busy: number;
  /** Boot-script retries (`goto failed` → `goto fetch`). */
  scriptRetries: number;
}

/** The boot script's retries after a failed kernel/initrd fetch, and its sleep between them. */
export const SCRIPT_RETRIES = 3;
export const SCRIPT_SLEEP_MS = 5000;
/** Retry-After answers iPXE follows for one request before it calls the fetch failed. */
export const MAX_RETRY_AFTERS = 100;

export async function bootAfterDhcp(spec: FirmwareSpec, d: AfterDhcp): Promise<FirmwareResult> {
  const scale = spec.sleepScale ?? 1;
  const r: FirmwareResult = { ok: false, tftpMs: 0, httpMs: 0, busy: 0, scriptRetries: 0 };
  const t1 = performance.now();
  let tbytes = 0;
  try {
    const tr = await tftpGet({
      host: d.nextServer && d.nextServer !== '0.0.0.0' ? d.nextServer : spec.server,
      port: spec.tftpPort,
      file: d.bootFile,
      options: { blksize: spec.blksize, tsize: 0 },
      timeoutMs: 1000,
      backoffMaxMs: 8000,
      retries: 7,
      onData: (b) => (tbytes += b.length),
    });
    if (tr.bytes !== spec.tftpSize || tbytes !== spec.tftpSize) throw new Error(`${tr.bytes} bytes, want ${spec.tftpSize}`);
  } catch (e) {
    r.tftpMs = performance.now() - t1;
    r.error = `tftp: ${(e as Error).message}`;
    return r;
  }
  const t2 = performance.now();
  r.tftpMs = t2 - t1;
  for (let attempt = 0; ; attempt++) {
    // One keep-alive connection per boot, like iPXE fetching kernel then initrd.
    const own = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (const f of [spec.kernel, spec.initrd]) {
        for (let busy = 0; ; busy++) {
          const g = await httpGet(`${spec.httpBase}${f.path}`, own);
          if (g.status === 503 && g.retryAfterSec !== undefined && busy < MAX_RETRY_AFTERS) {
            r.busy++;
            await sleep(g.retryAfterSec * 1000 * scale);
            continue;
          }
          if (g.status !== 200 || g.bytes !== f.size) throw new Error(`${f.path}: status ${g.status}, ${g.bytes} bytes`);
          break;
        }
      }
      r.ok = true;
      delete r.error;
      break;
    } catch (e) {
      r.error = `http: ${(e as Error).message}`;
      if (attempt >= SCRIPT_RETRIES) break;
      r.scriptRetries++;
      await sleep(SCRIPT_SLEEP_MS * scale);
    } finally {
      own.destroy();
    }
  }
  r.httpMs = performance.now() - t2;
  return r;
}
