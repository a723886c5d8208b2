import { describe, expect, it } from 'vitest';
import { demandOf } from '../demand.js';
import { schedule } from '../engine.js';
import { DecisionMemo } from '../memo.js';
import { policy, type Policy } from '../policy.js';
import { createPrng } from '../prng.js';
import { buildSnapshot, withPlacement } from '../snapshot.js';
import { node, request, share } from '../testing/fixtures.js';
import type { ClusterSnapshot, NodeState, Placement, PlacementRequest } from '../types.js';
import { fixedWorkload, ShapeEstimator, type WorkloadModel } from '../workload.js';
import { poissonTails, quantize, scarcity, wideIndex } from './scarcity.js';

const single = { cpuMilli: 4000, memoryBytes: 0, count: 1, computeShare: 0.5, gpuMemory: { kind: 'fraction', fraction: 0.5 }, models: [] } as const;
const eight = { cpuMilli: 60_000, memoryBytes: 0, count: 8, computeShare: 1, gpuMemory: null, models: [] } as const;

function held(id: string, on: string, gpus: number[], milli: number, cpuMilli: number): Placement {
  return {
    id, node: on, gpus: gpus.map((gpu) => ({ gpu, memoryBytes: 0, computeMilli: milli, mig: null })),
    cpuMilli, memoryBytes: 0, priority: 500, tenant: null, exclusive: false, suspendable: false, gang: null,
  };
}

describe('wide shapes, learned online', () => {
  it('keeps every multi-GPU shape, however rare, with its share of the GPU demand', () => {
    const e = new ShapeEstimator();
    for (let i = 0; i < 40; i++) e.observe(share(0.5));
    e.observe(request({ gpus: 8 }, { cpuMilli: 60_000 }));
    e.observe(request({ gpus: 0 }, { cpuMilli: 4000 }));
    const model = e.model();
    // 40 x 0.5 + 8 = 28 GPUs asked; the 8-GPU request is 1 of 42 arrivals, not a typical shape (95%).
    expect(model.shapes.some((s) => s.count === 8)).toBe(false);
    expect(model.wide?.map((w) => [w.shape.count, w.shape.cpuMilli, w.share])).toEqual([[8, 60_000, 8 / 28]]);
  });
});

describe('poissonTails', () => {
  it('gives P(X >= u), P(X >= u - 1)... exactly for small means, within 0.01 by the normal approximation for large ones', () => {
    const out = new Float64Array(4);
    poissonTails(2, 3, out);
    const e2 = Math.exp(-2);
    expect(out[0]).toBeCloseTo(1 - 5 * e2, 12);
    expect(out[1]).toBeCloseTo(1 - 3 * e2, 12);
    expect(out[2]).toBeCloseTo(1 - e2, 12);
    expect(out[3]).toBe(1);
    const big = new Float64Array(2);
    poissonTails(100, 100, big);
    // Exact: P(X >= 100) = 0.5133, P(X >= 99) = 0.5532 for X ~ Poisson(100).
    expect(Math.abs((big[0] as number) - 0.5133)).toBeLessThan(0.01);
    expect(Math.abs((big[1] as number) - 0.5532)).toBeLessThan(0.01);
    expect(quantize(0)).toBe(0);
    expect(Math.abs(quantize(3) / 3 - 1)).toBeLessThan(0.03);
  });
});

describe('scarcity', () => {
  // a and c: 8 idle GPUs and 64 cores (each holds one 8-GPU request); b: one GPU half used.
  const snap: ClusterSnapshot = buildSnapshot([node('a', 8), node('b', 8), node('c', 8)], [held('b1', 'b', [0], 500, 4000)]);
  const model: WorkloadModel = fixedWorkload([single, eight], [90, 1]);
  const req = share(0.5, {}, { cpuMilli: 4000 });
  const prepare = (s: ClusterSnapshot, r: PlacementRequest) => scarcity.prepare({ snapshot: s, request: r, demand: demandOf(r), workload: model });

  it('charges taking one of the last nodes that hold a multi-GPU shape its chance of being needed times its GPUs', () => {
    const [a, b] = snap.nodes as NodeState[];
    expect(Array.from(wideIndex(a as NodeState, model, model.wide ?? []).units)).toEqual([1]);
    expect(Array.from(wideIndex(b as NodeState, model, model.wide ?? []).units)).toEqual([0]);
    const p = prepare(snap, req);
    // The 8-GPU shape's share of the GPU asked: 8 / (90 x 0.5 + 8); free compute 23,500 milli.
    const d = quantize((0.5 * (8 / 53) * 23_500) / 8000);
    const tails = new Float64Array(1);
    poissonTails(d, 2, tails);
    const scale = snap.scale.computeMilli;
    expect(p?.score(a as NodeState, [3])).toBeCloseTo(0.5 - ((tails[0] as number) * 8000) / (2 * scale), 12);
    // b holds no 8-GPU request already: nothing to lose there.
    expect(p?.score(b as NodeState, [1])).toBe(0.5);
    expect(p?.memoKey).toBe("scarcity:0,");
    expect(p?.volatile?.(a as NodeState)).toBe(true);
    expect(p?.volatile?.(b as NodeState)).toBe(false);
    // Without multi-GPU shapes in the model, or without a model: nothing to say.
    const none = fixedWorkload([single], [1]);
    expect(scarcity.prepare({ snapshot: snap, request: req, demand: demandOf(req), workload: none })).toBeNull();
    expect(scarcity.prepare({ snapshot: snap, request: req, demand: demandOf(req), workload: null })).toBeNull();
  });

  it('beside the fragmentation policy: a whole GPU goes to the used node, not to one of the last two that hold the 8-GPU request', () => {
    // b: GPU 0 taken with 40 of its 64 cores, so the 24 left feed few of its idle GPUs; the
    // typical request is half a GPU and 2 cores. A whole GPU with 8 cores costs b 4 of those
    // (12 -> 8, CPU-bound) and a or c 2 (16 -> 14, GPU-bound): without `scarcity` it goes to a
    // or c, breaking one of the two nodes the 8-GPU shape (a ninth of the arrivals, 8 GPUs of
    // the 12 asked) can still use.
    const cpuBound = buildSnapshot([node('a', 8), node('b', 8), node('c', 8)], [held('b1', 'b', [0], 1000, 40_000)]);
    const mix = fixedWorkload([{ ...single, cpuMilli: 2000 }, eight], [8, 1]);
    const whole = request({}, { cpuMilli: 8000 });
    const place = (pol: Policy, seed: number) => {
      const d = schedule(cpuBound, whole, { policy: pol, rng: createPrng(seed), workload: mix });
      return d.status === 'ok' ? d.placement.node : null;
    };
    for (const seed of [1, 2, 3]) {
      expect(place(policy('fragmentation+scarcity:1'), seed)).toBe('b');
      expect(place(policy('fragmentation'), seed)).not.toBe('b');
    }
  });

  it('names what it reads of the cluster in the memo key and its volatile nodes: with the memo, the same decisions as without', () => {
    let s1 = snap;
    let s2 = snap;
    const memo = new DecisionMemo();
    const reqs = [share(0.5, {}, { cpuMilli: 4000 }), request({ gpus: 8 }, { cpuMilli: 60_000 }), share(0.5, {}, { cpuMilli: 4000 }), share(0.25, {}, { cpuMilli: 4000 })];
    for (let i = 0; i < 12; i++) {
      const r = { ...(reqs[i % reqs.length] as PlacementRequest), id: `r${i}` };
      const withMemo = schedule(s1, r, { policy: policy('fragmentation+scarcity:1'), rng: createPrng(i), workload: model, memo, explain: false });
      const without = schedule(s2, r, { policy: policy('fragmentation+scarcity:1'), rng: createPrng(i), workload: model, explain: false });
      expect(withMemo.status).toBe(without.status);
      if (withMemo.status === 'ok' && without.status === 'ok') {
        expect(withMemo.placement.node).toBe(without.placement.node);
        expect(withMemo.placement.gpus).toEqual(without.placement.gpus);
        s1 = withPlacement(s1, withMemo.placement);
        s2 = withPlacement(s2, without.placement);
      }
    }
  });
});
