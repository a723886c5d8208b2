/**
 * The publisher's decision, pure: given the ResourceSlices a node should have and the ones the
 * API server has (this driver's, this node's), what to create, update and delete, and at which
 * pool generation. Any difference makes a new generation for the whole pool, one above the
 * highest seen, so consumers (which use only a pool's highest generation, and wait until they
 * see resourceSliceCount slices of it) never mix an old slice with a new one.
 */
import type { V1ResourceSlice } from '@kubernetes/client-node';

export interface SlicePlan {
  /** The pool generation every wanted slice carries after the plan runs. */
  readonly generation: number;
  /** Wanted slices that do not exist. */
  readonly create: readonly V1ResourceSlice[];
  /** Wanted slices that exist but differ (or carry another generation): each with the stored resourceVersion. */
  readonly update: readonly V1ResourceSlice[];
  /** Existing slices that are not wanted: name and the resourceVersion the delete is conditional on. */
  readonly delete: readonly { readonly name: string; readonly resourceVersion: string | undefined }[];
}

/** JSON with keys in one order, so two objects the serializer writes alike compare equal. */
function canonical(value: unknown): string {
  const order = (v: unknown): unknown => (Array.isArray(v) ? v.map(order) : v !== null && typeof v === 'object'
    ? Object.fromEntries(Object.entries(v).filter(([, x]) => x !== undefined).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, x]) => [k, order(x)]))
    : v);
  return JSON.stringify(order(value));
}

/**
 * What the publisher owns of a slice: its spec and owner references, in client-node's model
 * form (what the library's reads give back and what slices.ts builds; both sides the same form,
 * so no serializer pass is needed: it doubled a no-op plan for 8 GPUs in the fixed layout).
 */
function owned(slice: V1ResourceSlice, generation: number): string {
  return canonical({ spec: { ...slice.spec, pool: { ...slice.spec.pool, generation } }, owners: slice.metadata?.ownerReferences ?? [] });
}

/** `wanted`'s pool generation is ignored: the plan sets it. An empty plan means nothing differs. */
export function planSlices(wanted: readonly V1ResourceSlice[], existing: readonly V1ResourceSlice[]): SlicePlan {
  const highest = existing.reduce((g, s) => Math.max(g, s.spec.pool.generation), 0);
  const byName = new Map(existing.map((s) => [s.metadata?.name ?? '', s]));
  const wantedNames = new Set(wanted.map((s) => s.metadata?.name ?? ''));
  const stale = existing.filter((s) => !wantedNames.has(s.metadata?.name ?? ''));
  const unchanged = wanted.every((s) => {
    const stored = byName.get(s.metadata?.name ?? '');
    return stored !== undefined && stored.spec.pool.generation === highest && owned(stored, highest) === owned(s, highest);
  });
  if (unchanged && stale.length === 0) return { generation: highest, create: [], update: [], delete: [] };
  const generation = highest + 1;
  const at = (s: V1ResourceSlice): V1ResourceSlice => ({ ...s, spec: { ...s.spec, pool: { ...s.spec.pool, generation } } });
  return {
    generation,
    create: wanted.filter((s) => !byName.has(s.metadata?.name ?? '')).map(at),
    update: wanted.filter((s) => byName.has(s.metadata?.name ?? '')).map((s) => {
      const stored = byName.get(s.metadata?.name ?? '')!;
      const next = at(s);
      return { ...next, metadata: { ...next.metadata, resourceVersion: stored.metadata?.resourceVersion } };
    }),
    delete: stale.map((s) => ({ name: s.metadata?.name ?? '', resourceVersion: s.metadata?.resourceVersion })),
  };
}
