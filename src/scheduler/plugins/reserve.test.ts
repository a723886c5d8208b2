import { describe, expect, it } from 'vitest';
import { demandOf } from '../demand.js';
import { schedule } from '../engine.js';
import { policy, type Policy } from '../policy.js';
import { createPrng } from '../prng.js';
import { buildSnapshot } from '../snapshot.js';
import { gpu, node, request, share } from '../testing/fixtures.js';
import type { ClusterSnapshot, PlacementRequest } from '../types.js';
import { ShapeEstimator, type WorkloadModel } from '../workload.js';
import { reserve } from './reserve.js';

const a100 = (i: number) => gpu(i, { model: 'A100-40GB', name: 'NVIDIA A100' });
const only = (m: string) => ({ models: { include: [m], exclude: [] } });

function learned(requests: readonly PlacementRequest[]): WorkloadModel {
  const e = new ShapeEstimator();
  for (const r of requests) e.observe(r);
  return e.model();
}

describe('restricted demand, learned online', () => {
  it('keeps the GPU demand of each include list as a share of all GPU demand, however rare', () => {
    const model = learned([request(), request({ gpus: 2 }), share(0.5, only('A100')), request(only('a100')), share(0.5, { models: { include: ['h100', 'A100'], exclude: [] } })]);
    // 1 + 2 + 0.5 + 1 + 0.5 = 5 GPUs asked; A100 alone 1.5 of them, A100 or H100 0.5.
    expect(model.restricted).toEqual([
      { models: ['a100'], share: 1.5 / 5 },
      { models: ['a100', 'h100'], share: 0.5 / 5 },
    ]);
    expect(learned([request(), request({ gpus: 0 }, { cpuMilli: 4000 })]).restricted).toEqual([]);
  });
});

describe('reserve', () => {
  const snap: ClusterSnapshot = buildSnapshot([node('h', [gpu(0), gpu(1)]), node('a', [a100(0), a100(1)])]);
  const score = (model: WorkloadModel, req: PlacementRequest, nodeIndex: number): number | undefined =>
    reserve.prepare({ snapshot: snap, request: req, demand: demandOf(req), workload: model })?.score(snap.nodes[nodeIndex] as never, [0]);

  it('prefers GPUs no restricted demand waits for, in proportion to demand over the capacity serving it', () => {
    // A100-only: 1 of 4 GPUs asked, served by half the capacity: pressure 0.25 / 0.5 = 0.5.
    const model = learned([request(), request(), request(), request(only('a100'))]);
    expect(score(model, request(), 0)).toBe(1);
    expect(score(model, request(), 1)).toBeCloseTo(0.5);
    expect(reserve.prepare({ snapshot: snap, request: request(), demand: demandOf(request()), workload: learned([request()]) })).toBeNull();
    expect(reserve.prepare({ snapshot: snap, request: request({ gpus: 0 }), demand: demandOf(request({ gpus: 0 })), workload: model })).toBeNull();
  });

  it('in the fragmentation policy: a request that may run anywhere leaves the A100s to the A100-only demand', () => {
    // A100-only demand too rare to be a typical shape (2 of 41 arrivals): FGD's change alone cannot tell the nodes apart.
    const model = learned([...Array.from({ length: 40 }, () => request()), request(only('a100'))]);
    expect(model.shapes.map((s) => s.models)).toEqual([[]]);
    const aFirst = buildSnapshot([node('a', [a100(0), a100(1)]), node('h', [gpu(0), gpu(1)])]);
    const nodes = (pol: Policy) =>
      Array.from({ length: 16 }, (_, seed) => {
        const d = schedule(aFirst, request(), { policy: pol, rng: createPrng(seed), workload: model });
        return d.status === 'ok' ? d.placement.node : null;
      });
    expect(new Set(nodes(policy('fragmentation')))).toEqual(new Set(['h']));
    // Without reserve (the preset before it), the A100 node is taken as often as not.
    const before: Policy = { name: 'before', plugins: policy('fragmentation').plugins.filter((p) => p.plugin !== reserve) };
    expect(before.plugins.length).toBe(policy('fragmentation').plugins.length - 1);
    expect(nodes(before)).toContain('a');
  });
});
