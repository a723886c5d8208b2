import { describe, expect, it } from 'vitest';
import { schedule, type ScheduleOptions } from './engine.js';
import { describeDecision } from './explain.js';
import { policy } from './policy.js';
import { createPrng } from './prng.js';
import { buildSnapshot, withPlacement } from './snapshot.js';
import { GIB, gpu, node, request, share } from './testing/fixtures.js';
import type { Decision, GpuReason, NodeSpec, PlacementRequest } from './types.js';

const opts = (name = 'binpack', seed = 1): ScheduleOptions => ({ policy: policy(name), rng: createPrng(seed) });

function gpuReasons(d: Decision): GpuReason['kind'][] {
  if (d.status !== 'unschedulable') return [];
  return d.rejections.flatMap((r) => (r.reason.kind === 'tooFewGpus' ? r.reason.gpus.map((g) => g.kind) : []));
}

describe('schedule: filters say why, as data', () => {
  const cases: { name: string; nodes: NodeSpec[]; req: PlacementRequest; expect: GpuReason['kind'] | 'insufficientCpu' | 'insufficientMemory' }[] = [
    { name: 'unhealthy GPU', nodes: [node('a', [gpu(0, { health: 'lost' })])], req: share(0.5), expect: 'gpuUnhealthy' },
    { name: 'model not selected', nodes: [node('a', 1)], req: share(0.5, { models: { include: ['A100'], exclude: [] } }), expect: 'modelNotSelected' },
    { name: 'model excluded', nodes: [node('a', 1)], req: share(0.5, { models: { include: [], exclude: ['h100'] } }), expect: 'modelNotSelected' },
    { name: 'uuid not selected', nodes: [node('a', 1)], req: share(0.5, { uuids: { include: ['GPU-x'], exclude: [] } }), expect: 'uuidNotSelected' },
    { name: 'NUMA mismatch', nodes: [node('a', [gpu(0, { numaNode: 0 })])], req: share(0.5, { numaNode: 1 }), expect: 'numaMismatch' },
    { name: 'GPU memory', nodes: [node('a', 1)], req: request({ memory: { kind: 'bytes', bytes: 81 * GIB }, compute: 0.1 }), expect: 'insufficientGpuMemory' },
    { name: 'MIG GPU for a non-MIG request', nodes: [node('a', [gpu(0, { mig: { instances: [], dynamic: true, creatable: ['1g.10gb'], totalSlices: 7 } })])], req: share(0.5), expect: 'migMismatch' },
    { name: 'node CPU', nodes: [node('a', 1, { cpuMilli: 500 })], req: share(0.5), expect: 'insufficientCpu' },
    { name: 'node memory', nodes: [node('a', 1, { memoryBytes: GIB / 2 })], req: share(0.5), expect: 'insufficientMemory' },
  ];
  it.each(cases)('$name', ({ nodes, req, expect: kind }) => {
    const d = schedule(buildSnapshot(nodes), req, opts());
    expect(d.status).toBe('unschedulable');
    if (d.status !== 'unschedulable') return;
    const kinds = [d.rejections[0]?.reason.kind, ...gpuReasons(d)];
    expect(kinds).toContain(kind);
    expect(describeDecision(d)).toContain('no node can take it');
  });

  it('reports compute separately from memory', () => {
    const snap = buildSnapshot([node('a', 1)]);
    const first = schedule(snap, request({ memory: { kind: 'bytes', bytes: GIB }, compute: 0.8 }), opts());
    if (first.status !== 'ok') throw new Error('first should fit');
    const d = schedule(withPlacement(snap, first.placement), request({ memory: { kind: 'bytes', bytes: GIB }, compute: 0.3 }), opts());
    expect(gpuReasons(d)).toEqual(['insufficientCompute']);
  });

  it('keeps exclusive GPUs to themselves, both ways', () => {
    const snap = buildSnapshot([node('a', 1)]);
    const ex = schedule(snap, request({ isolation: 'exclusive' }), opts());
    if (ex.status !== 'ok') throw new Error('exclusive should fit an idle GPU');
    expect(ex.placement.exclusive).toBe(true);
    expect(gpuReasons(schedule(withPlacement(snap, ex.placement), share(0.1), opts()))).toEqual(['heldExclusively']);
    const sh = schedule(snap, share(0.1), opts());
    if (sh.status !== 'ok') throw new Error('share should fit');
    expect(gpuReasons(schedule(withPlacement(snap, sh.placement), request({ isolation: 'exclusive' }), opts()))).toEqual(['notIdleForExclusive']);
  });
});

describe('schedule: placements', () => {
  it('resolves a share to bytes and milli of the GPU it lands on', () => {
    const d = schedule(buildSnapshot([node('a', 1)]), share(0.25), opts());
    expect(d.status).toBe('ok');
    if (d.status !== 'ok') return;
    expect(d.placement.gpus).toEqual([{ gpu: 0, memoryBytes: 20 * GIB, computeMilli: 250, mig: null }]);
  });

  it('places CPU-only requests without GPUs', () => {
    const d = schedule(buildSnapshot([node('a', 2)]), request({ gpus: 0 }), opts());
    expect(d.status === 'ok' && d.placement.gpus).toEqual([]);
  });

  it('places multi-GPU requests on distinct GPUs of one node', () => {
    const d = schedule(buildSnapshot([node('a', 2), node('b', 4)]), request({ gpus: 4 }), opts());
    expect(d.status === 'ok' && d.placement.node).toBe('b');
    if (d.status === 'ok') expect(new Set(d.placement.gpus.map((g) => g.gpu)).size).toBe(4);
  });

  it('is deterministic for a seed', () => {
    const snap = buildSnapshot(Array.from({ length: 20 }, (_, i) => node(`n${i}`, 4)));
    const pick = (seed: number): string => {
      const d = schedule(snap, share(0.3), opts('random', seed));
      return d.status === 'ok' ? d.placement.node : '';
    };
    expect(pick(7)).toBe(pick(7));
    expect(new Set([1, 2, 3, 4, 5, 6, 7, 8].map(pick)).size).toBeGreaterThan(1);
  });

  it('honours a per-request policy and reports unknown ones', () => {
    const snap = buildSnapshot([node('a', 1)]);
    const d = schedule(snap, share(0.5, {}, { policy: 'nope' }), opts());
    expect(d).toMatchObject({ status: 'unresolvable', reason: { kind: 'unknownPolicy' } });
  });

  it('picks the smallest MIG profile that covers the memory, creating one on dynamic MIG', () => {
    const mig = { instances: [{ id: 'mig-a', profile: '3g.40gb', memoryBytes: 40e9, slices: 3 }], dynamic: true, creatable: ['1g.10gb', '2g.20gb', '3g.40gb', '7g.80gb'], totalSlices: 7 };
    const snap = buildSnapshot([node('a', [gpu(0, { mig })])]);
    const small = schedule(snap, request({ isolation: 'mig', memory: { kind: 'bytes', bytes: 15e9 } }), opts());
    expect(small.status === 'ok' && small.placement.gpus[0]?.mig).toEqual({ instanceId: 'mig-a', profile: '3g.40gb' });
    const named = schedule(snap, request({ isolation: 'mig', migProfile: '1g.10gb' }), opts());
    expect(named.status === 'ok' && named.placement.gpus[0]?.mig).toEqual({ instanceId: null, profile: '1g.10gb' });
    if (named.status !== 'ok') return;
    const full = withPlacement(withPlacement(snap, named.placement), { ...named.placement, id: 'x2', gpus: [{ gpu: 0, memoryBytes: 40e9, computeMilli: 428, mig: { instanceId: 'mig-a', profile: '3g.40gb' } }] });
    const none = schedule(full, request({ isolation: 'mig', migProfile: '7g.80gb' }), opts());
    expect(gpuReasons(none)).toEqual(['noMigProfileFits']);
  });
});

describe('quotas', () => {
  const quotas = new Map([['t', { gpus: 1, memoryBytes: 30 * GIB }]]);
  it('refuses at admission when the GPU count would exceed the quota', () => {
    const d = schedule(buildSnapshot([node('a', 2)], [], quotas), request({ gpus: 2 }, {}), opts());
    expect(d.status).toBe('ok'); // no tenant: no quota
    const t = schedule(buildSnapshot([node('a', 2)], [], quotas), request({ gpus: 2 }, { tenant: 't' }), opts());
    expect(t).toMatchObject({ status: 'unresolvable', reason: { kind: 'quotaExceeded', resource: 'gpus', limit: 1 } });
  });
  it('checks memory per GPU against what the tenant has left', () => {
    const t = schedule(buildSnapshot([node('a', 1)], [], quotas), share(0.5, {}, { tenant: 't' }), opts());
    expect(gpuReasons(t)).toEqual(['quotaMemory']);
  });
});
