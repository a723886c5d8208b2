import { describe, expect, it } from 'vitest';
import { schedule } from './engine.js';
import { parsePolicy, policy, POLICY_NAMES } from './policy.js';
import { createPrng } from './prng.js';
import { buildSnapshot, withPlacement } from './snapshot.js';
import { gpu, node, request, share } from './testing/fixtures.js';
import type { ClusterSnapshot, GpuLinkInfo, NodeSpec, PlacementRequest } from './types.js';
import { fixedWorkload } from './workload.js';

/** Commits `reqs` one after another with bestfit, to build a partly used cluster. */
function fill(nodes: NodeSpec[], reqs: { req: PlacementRequest; node: string; gpu: number }[]): ClusterSnapshot {
  let snap = buildSnapshot(nodes);
  reqs.forEach(({ req, node: n, gpu: g }, k) => {
    const s = req.slice;
    const spec = nodes.find((x) => x.name === n)?.gpus[g];
    if (!spec) throw new Error('bad fixture');
    const mem = s.memory?.kind === 'fraction' ? Math.floor((s.memory.fraction * spec.memoryBytes) / 2 ** 20) * 2 ** 20 : spec.memoryBytes;
    snap = withPlacement(snap, {
      id: `p${k}`, node: n, gpus: [{ gpu: g, memoryBytes: mem, computeMilli: Math.round((s.compute ?? 1) * 1000), mig: null }],
      cpuMilli: req.cpuMilli, memoryBytes: req.memoryBytes, priority: s.priority, tenant: req.tenant, exclusive: false, suspendable: false, gang: null,
    });
  });
  return snap;
}

const place = (snap: ClusterSnapshot, name: string, req: PlacementRequest, workload = null as ReturnType<typeof fixedWorkload> | null) => {
  const d = schedule(snap, req, { policy: policy(name), rng: createPrng(3), workload });
  if (d.status !== 'ok') throw new Error(`${name}: ${d.status}`);
  return d.placement;
};

describe.each(POLICY_NAMES)('policy %s (conformance)', (name) => {
  it('parses and places a share, a whole GPU, a multi-GPU and a CPU-only request', () => {
    expect(parsePolicy(name).ok).toBe(true);
    const snap = fill([node('a', 4), node('b', 4)], [{ req: share(0.5), node: 'a', gpu: 0 }]);
    const wl = fixedWorkload([{ cpuMilli: 1000, memoryBytes: 0, count: 1, computeShare: 0.5, gpuMemory: { kind: 'fraction', fraction: 0.5 }, models: [] }], [1]);
    for (const req of [share(0.5), request(), request({ gpus: 2 }), request({ gpus: 0 })]) {
      const p = place(snap, name, req, wl);
      expect(p.gpus.length).toBe(req.slice.gpus);
    }
  });
  it('never places where nothing fits', () => {
    const snap = fill([node('a', 1)], [{ req: share(0.9), node: 'a', gpu: 0 }]);
    expect(schedule(snap, share(0.2), { policy: policy(name), rng: createPrng(1) }).status).toBe('unschedulable');
  });
});

describe('what each policy prefers', () => {
  const snap = fill([node('a', 2), node('b', 2)], [{ req: share(0.5), node: 'a', gpu: 0 }]);
  it('binpack fills the busier node and GPU', () => {
    expect(place(snap, 'binpack', share(0.25))).toMatchObject({ node: 'a', gpus: [{ gpu: 0 }] });
  });
  it('spread goes to the idle node', () => {
    expect(place(snap, 'spread', share(0.25)).node).toBe('b');
  });
  it('bestfit takes the tightest GPU', () => {
    const s2 = fill([node('a', 3)], [{ req: share(0.5), node: 'a', gpu: 1 }, { req: share(0.7), node: 'a', gpu: 2 }]);
    expect(place(s2, 'bestfit', share(0.25)).gpus[0]?.gpu).toBe(2);
  });
  it('topology puts a pair on NVLink and a single away from it', () => {
    const nv = (a: number, b: number): GpuLinkInfo => ({ gpu: b, level: a + b === 1 || a + b === 5 ? 'NV' : 'SYS', nvlinks: a + b === 1 || a + b === 5 ? 12 : 0 });
    const gpus = [0, 1, 2, 3].map((i) => gpu(i, { links: [0, 1, 2, 3].filter((j) => j !== i).map((j) => nv(i, j)) }));
    // 0-1 and 2-3 are NVLink pairs; 3 is busy, so 2 has no idle partner worth keeping.
    const s3 = fill([node('a', gpus)], [{ req: share(0.5), node: 'a', gpu: 3 }]);
    expect(place(s3, 'topology', request({ gpus: 2 })).gpus.map((g) => g.gpu)).toEqual([0, 1]);
    expect(place(s3, 'topology', share(0.2)).gpus.map((g) => g.gpu)).toEqual([3]);
    expect(place(s3, 'topology', request()).gpus.map((g) => g.gpu)).toEqual([2]);
  });
  it('fragmentation keeps whole GPUs for a whole-GPU workload', () => {
    // Typical requests are whole GPUs: a 0.3 share should go where it strands nothing new.
    const s4 = fill([node('a', 2), node('b', 2)], [{ req: share(0.6), node: 'a', gpu: 0 }]);
    const wl = fixedWorkload([{ cpuMilli: 1000, memoryBytes: 0, count: 1, computeShare: 1, gpuMemory: null, models: [] }], [1]);
    expect(place(s4, 'fragmentation', share(0.3), wl)).toMatchObject({ node: 'a', gpus: [{ gpu: 0 }] });
  });
  it('combines policies by weight', () => {
    const p = policy('binpack:2+spread:1');
    expect(p.plugins.map((x) => [x.plugin.name, x.weight])).toEqual([['binpack', 2], ['spread', 1]]);
    expect(place(snap, 'binpack:2+spread:1', share(0.25)).node).toBe('a');
    expect(parsePolicy('binpack:-1').ok).toBe(false);
  });
});
