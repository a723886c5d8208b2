/**
 * XID and uncorrectable ECC faults seen between two samples, for the GPU health book (an XID or
 * an uncorrectable ECC error makes a GPU unhealthy: no new placements there). Pure. Separate
 * from the alert rules on purpose: turning an alert off must not stop a faulty GPU being fenced.
 */
import type { MonitorSample } from '../../contract/monitor.js';

export interface GpuFault {
  readonly uuid: string;
  readonly kind: 'xid' | 'ecc';
  /** The XID's code (the sample's last one); null for ECC, or an XID whose code is not known. */
  readonly code: number | null;
  readonly at: number;
}

/** Marks a GPU unhealthy (src/node/gpu-health.ts's markFault); injected so monitoring needs no daemon. */
export type GpuFaultSink = (uuid: string, reason: { kind: 'xid' | 'ecc'; code: number | null; at: number }) => void;

/**
 * The faults `next` shows that `previous` did not: a counter that rose (or, for a GPU `previous`
 * did not have, nothing: a counter's first value says nothing about when its errors happened).
 * A counter that fell was reset (a driver reload) and is not a fault either.
 */
export function newFaults(previous: MonitorSample | null, next: MonitorSample): GpuFault[] {
  if (previous === null) return [];
  const before = new Map(previous.gpus.map((g) => [g.uuid, g] as const));
  const out: GpuFault[] = [];
  for (const g of next.gpus) {
    const old = before.get(g.uuid);
    if (old === undefined) continue;
    if (g.xidErrors !== null && old.xidErrors !== null && g.xidErrors > old.xidErrors) out.push({ uuid: g.uuid, kind: 'xid', code: g.lastXid, at: next.at });
    if (g.eccUncorrectedErrors !== null && old.eccUncorrectedErrors !== null && g.eccUncorrectedErrors > old.eccUncorrectedErrors) out.push({ uuid: g.uuid, kind: 'ecc', code: null, at: next.at });
  }
  return out;
}
