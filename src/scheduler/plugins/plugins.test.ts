/**
 * Each plugin on its own: a filter's node/GPU verdicts and reasons, a score plugin's ordering,
 * through its prepare()/score() contract (the engine-level tests cover them combined).
 */
import { describe, expect, it } from 'vitest';
import { demandOf } from '../demand.js';
import type { CycleContext, FilterPlugin, ScorePlugin } from '../framework.js';
import { buildSnapshot } from '../snapshot.js';
import { GIB, gpu, node, request, share } from '../testing/fixtures.js';
import type { ClusterSnapshot, GpuLinkInfo, MigLayout, NodeSpec, Placement, PlacementRequest } from '../types.js';
import { fixedWorkload, type WorkloadModel } from '../workload.js';
import { exclusivity, gpuCapacity, health, migFit, migMode, nodeResources, selectors } from './filters.js';
import { quotaAdmission, quotaMemory } from './quota.js';
import { bestfit, binpack, fgd, fragmentation, numa, random, spread, topology } from './scores.js';

function ctx(snapshot: ClusterSnapshot, req: PlacementRequest, workload: WorkloadModel | null = null): CycleContext {
  return { snapshot, request: req, demand: demandOf(req), workload };
}

function held(id: string, nodeName: string, g: number, milli: number, extra: Partial<Placement> = {}): Placement {
  return {
    id, node: nodeName, gpus: [{ gpu: g, memoryBytes: (milli / 1000) * 80 * GIB, computeMilli: milli, mig: null }],
    cpuMilli: 1000, memoryBytes: GIB, priority: 500, tenant: null, exclusive: false, suspendable: false, gang: null, ...extra,
  };
}

/** Verdict of a filter on GPU `i` of the first node (null: passes). */
function gpuVerdict(f: FilterPlugin, snap: ClusterSnapshot, req: PlacementRequest, i: number) {
  const p = f.prepare(ctx(snap, req));
  return p?.gpu?.(snap.nodes[0] as never, i) ?? null;
}

const MIG: MigLayout = { instances: [{ id: 'm0', profile: '3g.40gb', memoryBytes: 40e9, slices: 3 }], dynamic: false, creatable: [], totalSlices: 7 };

describe('filter plugins', () => {
  it('nodeResources: CPU first, then memory, with what was asked and what is free', () => {
    const snap = buildSnapshot([node('a', 1, { cpuMilli: 2000, memoryBytes: 4 * GIB })]);
    const n = snap.nodes[0] as never;
    expect(nodeResources.prepare(ctx(snap, request({}, { cpuMilli: 3000 })))?.node?.(n)).toEqual({ kind: 'insufficientCpu', requestedMilli: 3000, freeMilli: 2000 });
    expect(nodeResources.prepare(ctx(snap, request({}, { cpuMilli: 1000, memoryBytes: 8 * GIB })))?.node?.(n)).toEqual({ kind: 'insufficientMemory', requestedBytes: 8 * GIB, freeBytes: 4 * GIB });
    expect(nodeResources.prepare(ctx(snap, request({}, { cpuMilli: 1000 })))?.node?.(n)).toBeNull();
  });
  it('health: only healthy GPUs', () => {
    const snap = buildSnapshot([node('a', [gpu(0), gpu(1, { health: 'lost' })])]);
    expect(gpuVerdict(health, snap, request(), 0)).toBeNull();
    expect(gpuVerdict(health, snap, request(), 1)).toEqual({ kind: 'gpuUnhealthy', gpu: 1 });
  });
  it('selectors: model include/exclude (model or board name), UUIDs, NUMA node', () => {
    const snap = buildSnapshot([node('a', [gpu(0, { uuid: 'U0', numaNode: 0 }), gpu(1, { uuid: 'U1', model: 'A100-40GB', name: 'NVIDIA A100', numaNode: 1 })])]);
    expect(gpuVerdict(selectors, snap, request({ models: { include: ['a100'], exclude: [] } }), 0)).toEqual({ kind: 'modelNotSelected', gpu: 0, model: 'H100-80GB' });
    expect(gpuVerdict(selectors, snap, request({ models: { include: ['a100'], exclude: [] } }), 1)).toBeNull();
    expect(gpuVerdict(selectors, snap, request({ models: { include: [], exclude: ['HBM3'] } }), 0)).toMatchObject({ kind: 'modelNotSelected' });
    expect(gpuVerdict(selectors, snap, request({ uuids: { include: ['u1'], exclude: [] } }), 0)).toEqual({ kind: 'uuidNotSelected', gpu: 0, uuid: 'U0' });
    expect(gpuVerdict(selectors, snap, request({ uuids: { include: [], exclude: ['U1'] } }), 1)).toMatchObject({ kind: 'uuidNotSelected' });
    expect(gpuVerdict(selectors, snap, request({ numaNode: 1 }), 0)).toEqual({ kind: 'numaMismatch', gpu: 0, numaNode: 0, requested: 1 });
    expect(gpuVerdict(selectors, snap, request({ numaNode: 1 }), 1)).toBeNull();
  });
  it('migMode: MIG requests only on MIG GPUs and the reverse', () => {
    const snap = buildSnapshot([node('a', [gpu(0), gpu(1, { mig: MIG })])]);
    const migReq = request({ isolation: 'mig', migProfile: '3g.40gb' });
    expect(gpuVerdict(migMode, snap, request(), 1)).toEqual({ kind: 'migMismatch', gpu: 1, migEnabled: true });
    expect(gpuVerdict(migMode, snap, migReq, 0)).toEqual({ kind: 'migMismatch', gpu: 0, migEnabled: false });
    expect(gpuVerdict(migMode, snap, migReq, 1)).toBeNull();
  });
  it('migFit: an instance of the profile must be free (static MIG)', () => {
    const snap = buildSnapshot([node('a', [gpu(0, { mig: MIG })])]);
    expect(gpuVerdict(migFit, snap, request({ isolation: 'mig', migProfile: '3g.40gb' }), 0)).toBeNull();
    expect(gpuVerdict(migFit, snap, request({ isolation: 'mig', migProfile: '1g.10gb' }), 0)).toMatchObject({ kind: 'noMigProfileFits', gpu: 0 });
  });
  it('exclusivity: an exclusive slice holds its GPU alone, and wants it idle', () => {
    const snap = buildSnapshot([node('a', 3)], [held('x', 'a', 0, 1000, { exclusive: true }), held('s', 'a', 1, 250)]);
    expect(gpuVerdict(exclusivity, snap, share(0.25), 0)).toEqual({ kind: 'heldExclusively', gpu: 0 });
    expect(gpuVerdict(exclusivity, snap, request({ isolation: 'exclusive' }), 1)).toEqual({ kind: 'notIdleForExclusive', gpu: 1, slices: 1 });
    expect(gpuVerdict(exclusivity, snap, request({ isolation: 'exclusive' }), 2)).toBeNull();
  });
  it('gpuCapacity: memory and compute each, with the numbers', () => {
    const snap = buildSnapshot([node('a', 1)], [held('s', 'a', 0, 750)]);
    expect(gpuVerdict(gpuCapacity, snap, share(0.25), 0)).toBeNull();
    expect(gpuVerdict(gpuCapacity, snap, share(0.5), 0)).toMatchObject({ kind: 'insufficientGpuMemory', gpu: 0 });
    expect(gpuVerdict(gpuCapacity, snap, request({ memory: { kind: 'bytes', bytes: GIB }, compute: 0.5 }), 0)).toEqual({ kind: 'insufficientCompute', gpu: 0, requestedMilli: 500, freeMilli: 250 });
  });
  it('quota: GPU count and compute at admission, memory per GPU', () => {
    const quotas = new Map([['t', { gpus: 2, computeMilli: 1500, memoryBytes: 100 * GIB }]]);
    const snap = buildSnapshot([node('a', 4)], [held('s', 'a', 0, 1000, { tenant: 't' })], quotas);
    const t = { tenant: 't' };
    expect(quotaAdmission.admit(ctx(snap, request({ gpus: 2 }, t)))).toMatchObject({ kind: 'quotaExceeded', resource: 'gpus', requested: 2, used: 1, limit: 2 });
    expect(quotaAdmission.admit(ctx(snap, share(0.75, {}, t)))).toMatchObject({ kind: 'quotaExceeded', resource: 'computeMilli', requested: 750, used: 1000 });
    expect(quotaAdmission.admit(ctx(snap, share(0.5, {}, t)))).toBeNull();
    expect(gpuVerdict(quotaMemory, snap, request({ memory: { kind: 'bytes', bytes: 30 * GIB }, compute: 0.1 }, t), 1)).toMatchObject({ kind: 'quotaMemory', remainingBytes: 20 * GIB });
    expect(gpuVerdict(quotaMemory, snap, request({ memory: { kind: 'bytes', bytes: 10 * GIB }, compute: 0.1 }, t), 1)).toBeNull();
    expect(quotaMemory.prepare(ctx(snap, share(0.5)))).toBeNull();
  });
});

/** Scores of `plugin` for `req` on one GPU of each node, in node order. */
function scores(plugin: ScorePlugin, snap: ClusterSnapshot, req: PlacementRequest, at: readonly (readonly number[])[], workload: WorkloadModel | null = null): number[] {
  const p = plugin.prepare(ctx(snap, req, workload));
  if (!p) throw new Error(`${plugin.name} prepared nothing`);
  return snap.nodes.map((n, k) => p.score(n, at[k] ?? [0]));
}

describe('score plugins', () => {
  // Node a: GPU 0 half used; node b idle.
  const snap = buildSnapshot([node('a', 2), node('b', 2)], [held('s', 'a', 0, 500)]);
  it('every score is within 0-1', () => {
    const wl = fixedWorkload([{ cpuMilli: 1000, memoryBytes: 0, count: 1, computeShare: 1, gpuMemory: null, models: [] }], [1]);
    for (const p of [random, binpack, spread, bestfit, fragmentation, fgd]) {
      for (const s of scores(p, snap, share(0.25), [[0], [1]], wl)) {
        expect(s).toBeGreaterThanOrEqual(0);
        expect(s).toBeLessThanOrEqual(1);
      }
    }
  });
  it('random: every candidate ties', () => {
    expect(new Set(scores(random, snap, share(0.25), [[0], [0]])).size).toBe(1);
  });
  it('binpack prefers the used node and GPU; spread the reverse', () => {
    const [a, b] = scores(binpack, snap, share(0.25), [[0], [0]]);
    expect(a).toBeGreaterThan(b as number);
    const [sa, sb] = scores(spread, snap, share(0.25), [[0], [0]]);
    expect(sb).toBeGreaterThan(sa as number);
    const pb = binpack.prepare(ctx(snap, share(0.25)));
    expect(pb?.gpu?.(snap.nodes[0] as never, 0)).toBeGreaterThan(pb?.gpu?.(snap.nodes[0] as never, 1) ?? 1);
  });
  it('bestfit prefers the least left over, then the tightest GPU', () => {
    const [a, b] = scores(bestfit, snap, share(0.25), [[0], [0]]);
    expect(a).toBeGreaterThan(b as number);
    const p = bestfit.prepare(ctx(snap, share(0.25)));
    const n = snap.nodes[0] as never;
    expect(p?.score(n, [0])).toBeGreaterThan(p?.score(n, [1]) ?? 1);
  });
  it('topology: a pair on NVLink over one across the bus; nothing to say without link data', () => {
    const nv = (i: number, j: number): GpuLinkInfo => ({ gpu: j, level: (i < 2) === (j < 2) ? 'NV' : 'SYS', nvlinks: (i < 2) === (j < 2) ? 12 : 0 });
    const gpus = [0, 1, 2, 3].map((i) => gpu(i, { links: [0, 1, 2, 3].filter((j) => j !== i).map((j) => nv(i, j)) }));
    const t = buildSnapshot([node('a', gpus)]);
    const p = topology.prepare(ctx(t, request({ gpus: 2 })));
    const n = t.nodes[0] as never;
    expect(p?.score(n, [0, 1])).toBeGreaterThan(p?.score(n, [1, 2]) ?? 1);
    expect(p?.propose?.(n, [0, 1, 2, 3], 2)).toContainEqual([0, 1]);
    expect(topology.prepare(ctx(snap, request({ gpus: 2 })))).toBeNull();
  });
  it('numa: all GPUs on one NUMA node scores 1, split scores less', () => {
    const t = buildSnapshot([node('a', [0, 0, 1, 1].map((nn, i) => gpu(i, { numaNode: nn })))]);
    const p = numa.prepare(ctx(t, request({ gpus: 2 })));
    const n = t.nodes[0] as never;
    expect(p?.score(n, [0, 1])).toBe(1);
    expect(p?.score(n, [1, 2])).toBe(0.5);
    expect(numa.prepare(ctx(t, request({ gpus: 1 })))).toBeNull();
  });
  it('fragmentation: a share goes where it strands no whole GPU the workload needs', () => {
    const wl = fixedWorkload([{ cpuMilli: 1000, memoryBytes: 0, count: 1, computeShare: 1, gpuMemory: null, models: [] }], [1]);
    const p = fragmentation.prepare(ctx(snap, share(0.25), wl));
    const a = snap.nodes[0] as never;
    // On the half-used GPU nothing new is stranded; on an idle GPU a whole GPU is lost.
    expect(p?.score(a, [0])).toBeGreaterThan(p?.score(a, [1]) ?? 1);
    expect(fragmentation.prepare(ctx(snap, share(0.25), null))).toBeNull();
  });
  it('fgd: the authors\' integer sigmoid score, and first-fit ties', () => {
    const wl = fixedWorkload([{ cpuMilli: 1000, memoryBytes: 0, count: 1, computeShare: 1, gpuMemory: null, models: [] }], [1]);
    const p = fgd.prepare(ctx(snap, share(0.25), wl));
    const a = snap.nodes[0] as never;
    // Fragmentation change on the half-used GPU: -250 (its idle 500 was stranded, now 250);
    // on an idle GPU: +750. int64(sigmoid(-delta/1000) * 100) / 100.
    expect(p?.score(a, [0])).toBe(Math.trunc(100 / (1 + Math.exp(-250 / 1000))) / 100);
    expect(p?.score(a, [0])).toBe(0.56);
    expect(p?.score(a, [1])).toBe(0.32);
    expect(fgd.tieMode).toBe('first');
  });
});

describe('fgd ties go to the first node by name, the first GPU within a node', () => {
  it('picks node "a" over equally good "b" whatever the seed', async () => {
    const { schedule } = await import('../engine.js');
    const { policy } = await import('../policy.js');
    const { createPrng } = await import('../prng.js');
    const nodes: NodeSpec[] = [node('b', 4), node('a', 4)];
    const s = buildSnapshot(nodes);
    const wl = fixedWorkload([{ cpuMilli: 1000, memoryBytes: 0, count: 1, computeShare: 0.5, gpuMemory: { kind: 'fraction', fraction: 0.5 }, models: [] }], [1]);
    for (let seed = 0; seed < 20; seed++) {
      const d = schedule(s, share(0.5), { policy: policy('fgd'), rng: createPrng(seed), workload: wl });
      expect(d).toMatchObject({ status: 'ok', placement: { node: 'a', gpus: [{ gpu: 0 }] } });
    }
  });
});
