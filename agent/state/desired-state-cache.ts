import { existsSync, readFileSync } from 'node:fs';
import { writeFileDurable } from '../../shared/fs/durable.js';
import type { Logger } from '../../shared/log/logger.js';
import { z } from 'zod';
import { DesiredState, type MachineState } from '../../shared/protocol/desired-state.js';

const Overrides = z.record(z.string(), z.object({ netboot: z.boolean().optional(), bootenv: z.string().optional() }).strict());

/**
 * The site's desired state as last received from the central, on disk (fsync'd) so the agent serves
 * boots from it after a restart while the central is unreachable. Local overrides (from set-netboot /
 * set-bootenv tasks executed while the central's copy has not caught up) apply on top, until a newer
 * state from the central reflects them. Overrides are on disk too (`overridesPath`, fsync'd before
 * `override()` resolves): an agent restarted during a central outage keeps booting an installed machine
 * from its disk instead of serving the installer again.
 */
export class DesiredStateCache {
  private state: DesiredState | null = null;
  private readonly overrides = new Map<string, Partial<Pick<MachineState, 'netboot' | 'bootenv'>>>();
  private readonly listeners = new Set<(s: DesiredState) => void>();
  private byMac = new Map<string, MachineState>();

  constructor(
    private readonly path: string,
    private readonly logger: Logger,
    private readonly overridesPath = path.replace(/(\.json)?$/, '.overrides.json'),
  ) {
    if (existsSync(overridesPath)) {
      try {
        for (const [id, o] of Object.entries(Overrides.parse(JSON.parse(readFileSync(overridesPath, 'utf8'))))) this.overrides.set(id, o);
      } catch (e) {
        logger.error({ err: (e as Error).message }, 'local overrides file is unreadable; ignoring it');
      }
    }
    if (existsSync(path)) {
      try {
        this.state = DesiredState.parse(JSON.parse(readFileSync(path, 'utf8')));
        this.index();
        logger.info({ version: this.state.version, machines: this.state.machines.length }, 'loaded cached desired state');
      } catch (e) {
        logger.error({ err: (e as Error).message }, 'cached desired state is unreadable; waiting for the central');
      }
    }
  }

  get current(): DesiredState | null {
    return this.state;
  }

  get version(): string | null {
    return this.state?.version ?? null;
  }

  async replace(next: DesiredState): Promise<void> {
    await writeFileDurable(this.path, JSON.stringify(next));
    this.state = next;
    // Drop overrides the central now agrees with.
    let dropped = false;
    for (const [id, o] of this.overrides) {
      const m = next.machines.find((x) => x.id === id);
      if (!m || Object.entries(o).every(([k, v]) => (m as Record<string, unknown>)[k] === v)) dropped = this.overrides.delete(id);
    }
    if (dropped) await this.saveOverrides();
    this.index();
    for (const l of this.listeners) l(next);
  }

  /** Applies a local override, durably (on disk before it resolves); false for a machine not in the state. */
  async override(machineId: string, fields: Partial<Pick<MachineState, 'netboot' | 'bootenv'>>): Promise<boolean> {
    if (!this.state?.machines.some((m) => m.id === machineId)) return false;
    this.overrides.set(machineId, { ...this.overrides.get(machineId), ...fields });
    await this.saveOverrides();
    this.index();
    return true;
  }

  private saveOverrides(): Promise<void> {
    return writeFileDurable(this.overridesPath, JSON.stringify(Object.fromEntries(this.overrides)));
  }

  private index(): void {
    this.byMac = new Map();
    for (const m of this.state?.machines ?? []) {
      const merged = { ...m, ...this.overrides.get(m.id) };
      for (const mac of m.macs) this.byMac.set(mac.toLowerCase(), merged);
    }
  }

  machineByMac(mac: string): MachineState | undefined {
    return this.byMac.get(mac.toLowerCase());
  }

  machineById(id: string): MachineState | undefined {
    const m = this.state?.machines.find((x) => x.id === id);
    return m ? { ...m, ...this.overrides.get(m.id) } : undefined;
  }

  onChange(fn: (s: DesiredState) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}
