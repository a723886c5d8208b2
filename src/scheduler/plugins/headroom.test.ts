import { describe, expect, it } from 'vitest';
import { demandOf } from '../demand.js';
import { schedule } from '../engine.js';
import { policy, type Policy } from '../policy.js';
import { createPrng } from '../prng.js';
import { buildSnapshot } from '../snapshot.js';
import { GIB, node, request } from '../testing/fixtures.js';
import type { Placement } from '../types.js';
import { fixedWorkload } from '../workload.js';
import { headroom } from './headroom.js';

// GPU shapes asking 8 cores a GPU: an idle GPU will need 8 cores.
const model = fixedWorkload(
  [
    { cpuMilli: 8000, memoryBytes: 0, count: 1, computeShare: 1, gpuMemory: null, models: [] },
    { cpuMilli: 4000, memoryBytes: 0, count: 1, computeShare: 0.5, gpuMemory: { kind: 'fraction', fraction: 0.5 }, models: [] },
    { cpuMilli: 2000, memoryBytes: 0, count: 0, computeShare: 0, gpuMemory: null, models: [] },
  ],
  [1, 1, 1],
);

/** Six of the dense node's eight GPUs held, with most of its CPU. */
const held: Placement[] = Array.from({ length: 6 }, (_, g) => ({
  id: `p${g}`, node: 'dense', gpus: [{ gpu: g, memoryBytes: 80 * GIB, computeMilli: 1000, mig: null }],
  cpuMilli: 12_666, memoryBytes: GIB, priority: 500, tenant: null, exclusive: true, suspendable: false, gang: null,
}));
// dense: 96 cores, 8 GPUs, 20 cores and 2 GPUs left; roomy: 104 cores, 2 GPUs, all free.
const snap = buildSnapshot([node('dense', 8, { cpuMilli: 96_000 }), node('roomy', 2, { cpuMilli: 104_000 })], held);
const cpuOnly = request({ gpus: 0 }, { cpuMilli: 1000 });

describe('headroom', () => {
  it('scores a CPU-only request by the CPU a node has beyond what its idle GPUs will need', () => {
    const p = headroom.prepare({ snapshot: snap, request: cpuOnly, demand: demandOf(cpuOnly), workload: model });
    const dense = p?.score(snap.nodes[0] as never, []) ?? NaN;
    const roomy = p?.score(snap.nodes[1] as never, []) ?? NaN;
    // (cpu free - 1 core - 2 idle GPUs x 8 cores) / 104 cores, mapped from -1..1 to 0..1.
    expect(dense).toBeCloseTo(0.5 + (0.5 * (96_000 - 6 * 12_666 - 1000 - 16_000)) / 104_000, 9);
    expect(roomy).toBeCloseTo(0.5 + (0.5 * (104_000 - 1000 - 16_000)) / 104_000, 9);
    expect(headroom.prepare({ snapshot: snap, request: request(), demand: demandOf(request()), workload: model })).toBeNull();
    expect(headroom.prepare({ snapshot: snap, request: cpuOnly, demand: demandOf(cpuOnly), workload: null })).toBeNull();
  });

  it('in the fragmentation policy: CPU-only work goes to the node with CPU to spare, where best-fit alone packs it onto the GPU node', () => {
    const place = (pol: Policy) => {
      const d = schedule(snap, cpuOnly, { policy: pol, rng: createPrng(1), workload: model });
      return d.status === 'ok' ? d.placement.node : null;
    };
    expect(place(policy('fragmentation'))).toBe('roomy');
    const before: Policy = { name: 'before', plugins: policy('fragmentation').plugins.filter((p) => p.plugin !== headroom) };
    expect(place(before)).toBe('dense');
  });
});
