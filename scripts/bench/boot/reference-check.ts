/**
 * The boot bench's sanity rules: a ratio to a reference server is only printed when the reference, not the
 * load generator or a starved machine, was the limit.
 */

/** ISC's published single-threaded memfile figure for Kea 2.0 (leases/s), the order of magnitude to reach. */
export const KEA_PUBLISHED_ST = 11_686;

/**
 * `ours / reference` as text, or a refusal naming why: the reference's own figure below `floor` means the
 * generator (or the machine) saturated first, so the ratio would compare with the generator, not the server.
 */
export function ratioOrRefusal(ours: number, reference: number, refName: string, floor: number): string {
  if (!Number.isFinite(ours) || !Number.isFinite(reference) || reference <= 0) return `no ratio: a figure is missing`;
  if (reference < floor) {
    return `NO RATIO: ${refName} did ${Math.round(reference)} leases/s, far below its published order of magnitude (${KEA_PUBLISHED_ST}/s single-threaded; floor ${floor}/s): the generator or the machine saturated first`;
  }
  return `${(ours / reference).toFixed(2)}x ${refName}`;
}

/**
 * Whether a single-threaded client was the limit: it used at least `busy` (fraction of one core) of its wall
 * time on CPU. Returns the text printed next to the figures.
 */
export function clientVerdict(name: string, cpuSec: number, wallSec: number, busy = 0.8): { limited: boolean; text: string } {
  const cores = wallSec > 0 ? cpuSec / wallSec : NaN;
  const limited = !(cores < busy);
  return {
    limited,
    text: limited
      ? `${name} used ${cores.toFixed(2)} of a core: CLIENT-BOUND, these figures measure the client`
      : `${name} used ${cores.toFixed(2)} of a core: not the limit (the server is)`,
  };
}

/** `argv` run under `taskset -c cpus` (taskset execs: the PID stays the command's), or as is without cpus. */
export function pinnedArgv(cpus: string | undefined, argv: string[]): string[] {
  return cpus ? ['taskset', '-c', cpus, ...argv] : argv;
}

/**
 * Whether a DHCP reference run measured the reference server: it kept its core busy (CPU seconds over the
 * active wall time at least `busy` of a core) and reached `floor` leases/s. A server below that was waiting
 * for packets: the generator (or a starved machine) was the limit, and no ratio to it may be printed.
 */
export function referenceVerdict(r: { name: string; leasesPerSec: number; serverCores: number; generatorCores: number; floor: number; busy?: number }): { ok: boolean; text: string } {
  const busy = r.busy ?? 0.8;
  const share = `${r.name} ${r.serverCores.toFixed(2)} of its core, generator ${r.generatorCores.toFixed(2)}`;
  if (!(r.serverCores >= busy)) return { ok: false, text: `NO RATIO: ${share}: ${r.name} did not keep its core busy (< ${busy}), the generator or the machine was the limit` };
  if (!(r.leasesPerSec >= r.floor)) return { ok: false, text: ratioOrRefusal(1, r.leasesPerSec, r.name, r.floor) };
  return { ok: true, text: share };
}
