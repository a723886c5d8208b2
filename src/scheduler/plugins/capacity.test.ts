import { describe, expect, it } from 'vitest';
import { demandOf } from '../demand.js';
import { schedule } from '../engine.js';
import { policy, type Policy } from '../policy.js';
import { createPrng } from '../prng.js';
import { buildSnapshot } from '../snapshot.js';
import { GIB, node, share } from '../testing/fixtures.js';
import type { NodeState, Placement } from '../types.js';
import { fixedWorkload } from '../workload.js';
import { capacity, capacityAfter, capIndex, gpuUnitsOf } from './capacity.js';

const half = { cpuMilli: 8000, memoryBytes: 0, count: 1, computeShare: 0.5, gpuMemory: { kind: 'fraction', fraction: 0.5 }, models: [] } as const;
const whole = { cpuMilli: 16_000, memoryBytes: 0, count: 1, computeShare: 1, gpuMemory: null, models: [] } as const;
const pair = { cpuMilli: 2000, memoryBytes: 0, count: 2, computeShare: 1, gpuMemory: null, models: [] } as const;
const cpuOnly = { cpuMilli: 1000, memoryBytes: 0, count: 0, computeShare: 0, gpuMemory: null, models: [] } as const;

/** A placement of `milli` compute (and the same share of memory) on each of `gpus` of `on`. */
function held(id: string, on: string, gpus: number[], milli: number, cpuMilli = 0): Placement {
  return {
    id, node: on, gpus: gpus.map((gpu) => ({ gpu, memoryBytes: (80 * GIB * milli) / 1000, computeMilli: milli, mig: null })),
    cpuMilli, memoryBytes: GIB, priority: 500, tenant: null, exclusive: false, suspendable: false, gang: null,
  };
}

describe('capacity', () => {
  it('counts whole multiples of a shape per GPU, limited by memory, none on an exclusive GPU', () => {
    expect(gpuUnitsOf(250, 20 * GIB, 1000, 80 * GIB, false)).toBe(4);
    expect(gpuUnitsOf(250, 20 * GIB, 740, 80 * GIB, false)).toBe(2);
    expect(gpuUnitsOf(250, 20 * GIB, 1000, 30 * GIB, false)).toBe(1);
    expect(gpuUnitsOf(250, 20 * GIB, 1000, 80 * GIB, true)).toBe(0);
    expect(gpuUnitsOf(-1, -1, 1000, 80 * GIB, false)).toBe(0);
  });

  it('is the expected number of typical requests a node still holds, capped by its CPU, and what a placement takes away', () => {
    const model = fixedWorkload([half, whole, pair, cpuOnly], [2, 1, 1, 4]);
    // 4 GPUs, 40 cores; GPU 0 half used, GPU 1 full, 8 cores held.
    const snap = buildSnapshot([node('n', 4, { cpuMilli: 40_000 })], [held('a', 'n', [0], 500, 4000), held('b', 'n', [1], 1000, 4000)]);
    const n = snap.nodes[0] as NodeState;
    const idx = capIndex(n, model);
    // half: GPU units 1 + 0 + 2 + 2 = 5, CPU 32/8 = 4 -> 4; whole: 2 free GPUs, CPU 2 -> 2; pair: 1; CPU-only: not counted.
    // Weights 2/8, 1/8, 1/8.
    expect(idx.total).toBeCloseTo(1000 * (0.25 * 4 + 0.125 * 2 + 0.125 * 1), 9);
    // Half a GPU on GPU 0 with 8 cores (24 left): half min(4, 3) = 3, whole min(2, 1) = 1, pair 1.
    const onHalfUsed = capacityAfter(idx, n, [0], [500], [40 * GIB], 8000, false);
    expect(onHalfUsed).toBeCloseTo(1000 * (0.25 * 3 + 0.125 * 1 + 0.125 * 1), 9);
    // The same on idle GPU 2: half min(4, 3) = 3, whole 1, pair 0.
    const onIdle = capacityAfter(idx, n, [2], [500], [40 * GIB], 8000, false);
    expect(onIdle).toBeCloseTo(1000 * (0.25 * 3 + 0.125 * 1), 9);
    // 24 cores with it: the CPU left (8) feeds one half, no whole GPU, and the pair (2 cores).
    const cpuHeavy = capacityAfter(idx, n, [0], [500], [40 * GIB], 24_000, false);
    expect(cpuHeavy).toBeCloseTo(1000 * (0.25 * 1 + 0.125 * 1), 9);

    const req = share(0.5, {}, { cpuMilli: 8000 });
    const p = capacity.prepare({ snapshot: snap, request: req, demand: demandOf(req), workload: model });
    const scale = snap.scale.computeMilli;
    expect(p?.score(n, [0])).toBeCloseTo(0.5 - (idx.total - onHalfUsed) / (2 * scale), 9);
    expect(p?.score(n, [2])).toBeCloseTo(0.5 - (idx.total - onIdle) / (2 * scale), 9);
    // Answers are kept per node state and request kind: asked again, the same; another kind, its own.
    expect(p?.score(n, [0])).toBeCloseTo(0.5 - (idx.total - onHalfUsed) / (2 * scale), 9);
    const heavy = share(0.5, {}, { cpuMilli: 24_000 });
    const q = capacity.prepare({ snapshot: snap, request: heavy, demand: demandOf(heavy), workload: model });
    expect(q?.score(n, [0])).toBeCloseTo(0.5 - (idx.total - cpuHeavy) / (2 * scale), 9);
    // Two GPUs at once (not kept): half a GPU on GPUs 2 and 3, 8 cores -> half min(1 + 1 + 1, 3) = 3, no whole GPU, no pair.
    const two = share(0.5, { gpus: 2 }, { cpuMilli: 8000 });
    const r = capacity.prepare({ snapshot: snap, request: two, demand: demandOf(two), workload: model });
    expect(r?.score(n, [2, 3])).toBeCloseTo(0.5 - (idx.total - 1000 * 0.25 * 3) / (2 * scale), 9);
    expect(capacity.prepare({ snapshot: snap, request: req, demand: demandOf(req), workload: null })).toBeNull();
  });

  it('in the fragmentation policy: a small request goes where it leaves a typical request room, which FGD and best-fit cannot see', () => {
    // Only half-GPU requests are typical. x: one idle GPU, the rest full; y: two GPUs with 750
    // milli free. A quarter on x leaves 750 (one half instead of two); on y, 500 (still one).
    // FGD's measure is 0 on both before and after (every GPU with compute left still holds a
    // half); best-fit prefers x, whose node has less left.
    const model = fixedWorkload([{ ...half, cpuMilli: 1000 }], [1]);
    const snap = buildSnapshot(
      [node('x', 4), node('y', 4)],
      [held('x1', 'x', [1, 2, 3], 1000), held('y1', 'y', [0, 1], 250), held('y2', 'y', [2, 3], 1000)],
    );
    const req = share(0.25, {}, { cpuMilli: 1000 });
    const place = (pol: Policy) => {
      const d = schedule(snap, req, { policy: pol, rng: createPrng(1), workload: model });
      return d.status === 'ok' ? d.placement.node : null;
    };
    expect(place(policy('fragmentation'))).toBe('y');
    const before: Policy = { name: 'before', plugins: policy('fragmentation').plugins.filter((p) => p.plugin !== capacity) };
    expect(place(before)).toBe('x');
  });
});
