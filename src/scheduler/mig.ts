/**
 * MIG profile choice: which instance (existing, or to be created on a dynamic-MIG GPU) a
 * request runs in. The smallest profile that covers the request wins, so large instances stay
 * free for requests that need them.
 */
import type { GpuSpec, NodeState } from './types.js';

const GB = 1e9;

/** Compute slices of a profile name (`3g.40gb` -> 3). */
export function migSlicesOf(profile: string): number {
  const m = /^(\d+)g\./.exec(profile);
  return m ? Number(m[1]) : 0;
}

/** Memory of a profile as its name states it (`1g.10gb` -> 10 GB); instances report exact sizes. */
export function migProfileBytes(profile: string): number {
  const m = /^\d+g\.(\d+)gb/.exec(profile);
  return m ? Number(m[1]) * GB : 0;
}

/** A MIG instance choice on one GPU: an existing free instance, or a profile to create. */
export interface MigChoice {
  readonly instanceId: string | null;
  readonly profile: string;
  readonly memoryBytes: number;
  readonly slices: number;
}

/**
 * The smallest instance on GPU `i` of `node` that suits the request: `profile` if named, else
 * the smallest whose memory covers `memoryBytes`. Existing free instances come before creating
 * one; null when nothing suits.
 */
export function chooseMigInstance(node: NodeState, i: number, profile: string | null, memoryBytes: number | null): MigChoice | null {
  const gpu: GpuSpec | undefined = node.spec.gpus[i];
  const layout = gpu?.mig;
  if (!gpu || !layout) return null;
  const used = node.gpuMigUsed[i] ?? [];
  const suits = (p: string, bytes: number): boolean =>
    profile !== null ? p === profile : memoryBytes === null || bytes >= memoryBytes;
  let best: MigChoice | null = null;
  const better = (c: MigChoice): boolean =>
    best === null || c.slices < best.slices || (c.slices === best.slices && c.memoryBytes < best.memoryBytes);
  for (const inst of layout.instances) {
    if (used.includes(inst.id) || !suits(inst.profile, inst.memoryBytes)) continue;
    const c = { instanceId: inst.id, profile: inst.profile, memoryBytes: inst.memoryBytes, slices: inst.slices };
    if (better(c)) best = c;
  }
  if (best !== null || !layout.dynamic) return best;
  // Dynamic MIG: a new instance fits while the GPU has compute slices and memory left for it.
  const slicesLeft = layout.totalSlices - (node.gpuMigSlicesUsed[i] ?? 0);
  const memoryLeft = node.gpuMemoryFree[i] ?? 0;
  for (const p of layout.creatable) {
    const bytes = migProfileBytes(p);
    const slices = migSlicesOf(p);
    if (!suits(p, bytes) || slices > slicesLeft || bytes > memoryLeft) continue;
    const c = { instanceId: null, profile: p, memoryBytes: bytes, slices };
    if (better(c)) best = c;
  }
  return best;
}
