import type { Machine } from '../../shared/api/resources.js';
import { jsonString } from './json-text.js';
import { unsafeFactsJson } from './unsafe-facts.js';

/**
 * The part of a host's `--list` hostvars that depends on its machine document alone, kept as UTF-8 bytes
 * per document (issue 21: the cold render after a start as mostly a copy of bytes).
 *
 * A host's hostvars are `{` + head + tail + services + `}`: the head (`ansible_host`, the params, the
 * site) depends on the params and their definitions, the services on the service registry; the tail
 * (`,"underlay_rack":…` through `"underlay_facts":{…},"underlay_services":`) is a pure function of the
 * machine document and is two thirds of the bytes, the facts with their unsafe marking most of it.
 * Store documents are replaced on every write, never changed in place, so a tail kept per document
 * (a WeakMap: it goes when the document goes) is never stale.
 *
 * Tails are made by `prepareTails` (the central runs it over every machine in the background after a
 * start, central/ansible/feature.ts; a bulk run writes into large slabs) and by a render that
 * serialises a host without one (its own small buffer).
 */

const tails = new WeakMap<Machine, Uint8Array>();

/** `,"underlay_rack":…,"underlay_macs":…,"underlay_state":…,"underlay_bootenv":…,"underlay_profiles":…,"underlay_facts":…,"underlay_services":` */
export function hostTailJson(m: Machine): string {
  const rack = m.rack !== undefined ? `,"underlay_rack":${jsonString(m.rack)}` : '';
  return `${rack},"underlay_macs":${JSON.stringify(m.macs)},"underlay_state":${jsonString(m.state)},"underlay_bootenv":${jsonString(m.bootenv)},"underlay_profiles":${JSON.stringify(m.profiles)},"underlay_facts":${unsafeFactsJson(m.facts)},"underlay_services":`;
}

/** The machine's tail as UTF-8, made (and kept) if it has none yet. */
export function hostTail(m: Machine): Uint8Array {
  let t = tails.get(m);
  if (!t) tails.set(m, (t = Buffer.from(hostTailJson(m), 'utf8')));
  return t;
}

/** The kept tail, if any (tests and metrics). */
export function keptTail(m: Machine): Uint8Array | undefined {
  return tails.get(m);
}

const SLAB = 4 << 20;
let slab: Buffer | null = null;
let slabOff = 0;

/**
 * Makes the tails of these machines that have none, written one after the other into shared slabs of
 * 4 MiB (no Buffer per host). A slab stays allocated while any tail in it is kept, so this is for bulk
 * runs over documents that mostly stay (a start); a render makes single tails with `hostTail`.
 * Returns how many tails it made.
 */
export function prepareTails(machines: readonly Machine[], from = 0, to = machines.length): number {
  let made = 0;
  for (let i = from; i < to; i++) {
    const m = machines[i]!;
    if (tails.has(m)) continue;
    const s = hostTailJson(m);
    // A UTF-16 code unit is at most 3 bytes of UTF-8.
    if (!slab || slab.length - slabOff < s.length * 3) {
      if (s.length * 3 > SLAB / 4) {
        tails.set(m, Buffer.from(s, 'utf8'));
        made++;
        continue;
      }
      slab = Buffer.allocUnsafeSlow(SLAB);
      slabOff = 0;
    }
    const n = slab.write(s, slabOff, 'utf8');
    tails.set(m, slab.subarray(slabOff, slabOff + n));
    slabOff += n;
    made++;
  }
  return made;
}

/**
 * Runs `prepareTails` over `machines` in slices, one per turn of the event loop (setImmediate), so a
 * central that just started answers requests meanwhile. `done` gets the tails made and the CPU time
 * spent; the returned function stops it.
 */
export function prepareTailsInBackground(machines: readonly Machine[], done?: (made: number, cpuMs: number) => void, slice = 2000): () => void {
  let stopped = false;
  let made = 0;
  let cpu = 0;
  let from = 0;
  let timer: NodeJS.Immediate | undefined;
  const step = () => {
    if (stopped) return;
    const c0 = process.cpuUsage();
    const to = Math.min(machines.length, from + slice);
    made += prepareTails(machines, from, to);
    from = to;
    const c = process.cpuUsage(c0);
    cpu += (c.user + c.system) / 1000;
    if (from < machines.length) timer = setImmediate(step);
    else done?.(made, cpu);
  };
  timer = setImmediate(step);
  return () => {
    stopped = true;
    if (timer) clearImmediate(timer);
  };
}
