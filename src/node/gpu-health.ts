/**
 * The GPU health book (issue 19): which GPUs take no new placements, and why. An admin's cordon
 * (`gpushare gpu cordon`), or a fault the alert engine saw (an XID, or uncorrectable ECC errors):
 * either keeps the scheduler off the GPU (placement.ts turns it into the GPU's hold, and the
 * engine's health filter says why), while running work is left alone. Kept in the daemon's
 * SQLite, so a restart forgets neither; every change is an event, and an admin's an audit row
 * too, in the same transaction as the change.
 *
 * A fault recovers by itself, from what the backend reports after it (`observe`, readings
 * taken strictly after the fault's time):
 *  - a reset: the GPU is seen lost (or missing from the list) and then reachable again;
 *  - an ECC fault: a reachable reading whose uncorrectable ECC count is 0 (the volatile count
 *    starts again at 0 when the driver reloads or the GPU resets).
 * An XID fault recovers only by a reset, or an admin's uncordon (which clears the fault too) or
 * clearFault. A cordon is only ever lifted by an admin.
 */
import type { MonitorSample } from '../contract/monitor.js';
import type { GpuHold } from '../scheduler/index.js';
import type { TaskEvents } from './events.js';
import type { GpuCordon, GpuFault, GpuHealthRecord } from './store/gpu-health.js';
import type { TaskStore } from './store/tasks.js';
import type { Actor } from './tenant-service.js';

export type { GpuCordon, GpuFault } from './store/gpu-health.js';

/** What the alert engine saw: the fault's kind, its code (XID number, ECC count), and when (UTC epoch ms). */
export interface GpuFaultReason {
  readonly kind: 'xid' | 'ecc';
  readonly code: number | null;
  readonly at: number;
}

/** A GPU's health as the book keeps it. */
export interface GpuHealthState {
  readonly cordoned: boolean;
  readonly cordon: GpuCordon | null;
  readonly fault: GpuFault | null;
}

/** One GPU as a backend or a monitor sample reports it: all `observe` reads. */
export interface GpuReading {
  readonly uuid: string;
  /** Only `lost` matters: anything else means the driver reaches the GPU. */
  readonly health: string;
  /** Uncorrectable ECC errors now (volatile count); null where ECC is off or not read. */
  readonly eccUncorrected: number | null;
}

const HEALTHY: GpuHealthState = { cordoned: false, cordon: null, fault: null };

/**
 * What a reading taken at `at` makes of a fault: recovered, the GPU seen lost (a reset under
 * way: remember when), or nothing new. `reading` undefined: the GPU was not in the list. Pure.
 */
export function faultAfter(fault: GpuFault, reading: GpuReading | undefined, at: number): { readonly kind: 'recovered'; readonly how: 'reset' | 'ecc' } | { readonly kind: 'lost' } | null {
  if (at <= fault.at) return null; // the reading may predate the fault: it says nothing of recovery
  if (reading === undefined || reading.health === 'lost') return fault.lostAt === null ? { kind: 'lost' } : null;
  if (fault.lostAt !== null) return { kind: 'recovered', how: 'reset' };
  if (fault.kind === 'ecc' && reading.eccUncorrected === 0) return { kind: 'recovered', how: 'ecc' };
  return null;
}

/** The GPU's hold as the scheduler reads it: a cordon first (an admin's word), else the fault; null when neither. */
export function holdOf(state: GpuHealthState): GpuHold | null {
  if (state.cordon !== null) return { kind: 'cordoned', by: state.cordon.by, note: state.cordon.note };
  if (state.fault !== null) return { kind: 'fault', fault: state.fault.kind, code: state.fault.code };
  return null;
}

export class GpuHealthBook {
  private readonly records = new Map<string, GpuHealthRecord>();
  private changes = 0;

  constructor(
    private readonly store: TaskStore,
    private readonly events: TaskEvents,
    private readonly now: () => number,
  ) {
    for (const r of store.gpuHealth.list()) this.records.set(r.uuid, r);
  }

  /** Goes up with every change, so a view built on the book (inventory.ts) knows to rebuild. */
  version(): number {
    return this.changes;
  }

  state(uuid: string): GpuHealthState {
    const r = this.records.get(uuid);
    return r === undefined ? HEALTHY : { cordoned: r.cordon !== null, cordon: r.cordon, fault: r.fault };
  }

  /** Every GPU that is cordoned or faulted, by UUID. */
  all(): Map<string, GpuHealthState> {
    return new Map([...this.records.keys()].map((uuid) => [uuid, this.state(uuid)]));
  }

  /** A fault seen on the GPU; the same fault again (kind and code) changes nothing. Returns whether it changed. */
  markFault(uuid: string, reason: GpuFaultReason): boolean {
    const before = this.state(uuid).fault;
    if (before !== null && before.kind === reason.kind && before.code === reason.code) return false;
    const fault: GpuFault = { kind: reason.kind, code: reason.code, at: reason.at, lostAt: null };
    this.write(uuid, { fault }, () => this.events.record('gpu.fault', null, { uuid, kind: reason.kind, code: reason.code }));
    return true;
  }

  /** An admin clears the GPU's fault (its cordon stays). */
  clearFault(uuid: string, by: Actor): GpuHealthState {
    const before = this.state(uuid);
    this.write(uuid, { fault: null }, () => {
      this.audit(by, 'gpu.clear-fault', uuid, { fault: before.fault });
      if (before.fault !== null) this.events.record('gpu.recovered', null, { uuid, how: 'cleared', by: by.actor });
    });
    return this.state(uuid);
  }

  /** No new placements on the GPU until uncordoned; cordoning again replaces who and the note. */
  cordon(uuid: string, by: Actor, note: string | null = null): GpuHealthState {
    const cordon: GpuCordon = { by: by.actor, at: this.now(), note };
    this.write(uuid, { cordon }, () => {
      this.audit(by, 'gpu.cordon', uuid, { note });
      this.events.record('gpu.cordoned', null, { uuid, by: by.actor, note });
    });
    return this.state(uuid);
  }

  /** Lifts the cordon and clears any fault: the admin says the GPU is fit again. */
  uncordon(uuid: string, by: Actor): GpuHealthState {
    const before = this.state(uuid);
    this.write(uuid, { cordon: null, fault: null }, () => {
      this.audit(by, 'gpu.uncordon', uuid, { cordon: before.cordon, fault: before.fault });
      if (before.cordon !== null || before.fault !== null) this.events.record('gpu.uncordoned', null, { uuid, by: by.actor });
    });
    return this.state(uuid);
  }

  /**
   * What the backend (or the monitor's sample) reports of every GPU at `at`: recovers faults as
   * the header says. Only a GPU with a fault is looked at; nothing is written unless it changes.
   */
  observe(readings: readonly GpuReading[], at: number = this.now()): void {
    for (const r of this.records.values()) {
      const fault = r.fault;
      if (fault === null) continue;
      const next = faultAfter(fault, readings.find((g) => g.uuid === r.uuid), at);
      if (next === null) continue;
      if (next.kind === 'lost') this.write(r.uuid, { fault: { ...fault, lostAt: at } }, () => {});
      else this.write(r.uuid, { fault: null }, () => this.events.record('gpu.recovered', null, { uuid: r.uuid, how: next.how, kind: fault.kind, code: fault.code }));
    }
  }

  private write(uuid: string, change: Partial<Pick<GpuHealthRecord, 'cordon' | 'fault'>>, alongside: () => void): void {
    const before = this.records.get(uuid) ?? { uuid, cordon: null, fault: null };
    const after: GpuHealthRecord = { ...before, ...change };
    this.store.transaction(() => {
      this.store.gpuHealth.put(after);
      alongside();
    });
    if (after.cordon === null && after.fault === null) this.records.delete(uuid);
    else this.records.set(uuid, after);
    this.changes += 1;
  }

  private audit(by: Actor, action: string, target: string, detail: Record<string, unknown>): void {
    this.store.audit(this.now(), { actor: by.actor, role: by.role, action, target, detail });
  }
}

/** A monitor sample's GPUs as the book reads them (the sampler reads the backend every second: recovery is seen within one). */
export function readingsOfSample(sample: Pick<MonitorSample, 'gpus'>): GpuReading[] {
  return sample.gpus.map((g) => ({ uuid: g.uuid, health: g.health, eccUncorrected: g.eccUncorrectedErrors }));
}

/** A domain GPU (backend.gpus()) as the book reads it. */
export function readingOf(g: { readonly uuid: string; readonly health: string; readonly eccErrors: { readonly uncorrected: number } | null }): GpuReading {
  return { uuid: g.uuid, health: g.health, eccUncorrected: g.eccErrors?.uncorrected ?? null };
}
