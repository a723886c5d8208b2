/**
 * Property tests: random clusters and requests. Whatever the policy, a placement never
 * overcommits a GPU, node or quota and honours every selector; when nothing fits, every node
 * is listed and an independent check agrees that it really cannot take the request.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { schedule } from './engine.js';
import { policy, POLICY_NAMES } from './policy.js';
import { createPrng } from './prng.js';
import { buildSnapshot, withPlacement } from './snapshot.js';
import { GIB, gpu, node, slice } from './testing/fixtures.js';
import type { ClusterSnapshot, GpuSpec, NodeState, PlacementRequest } from './types.js';
import { fixedWorkload } from './workload.js';

const MODELS = ['H100-80GB', 'A100-40GB', 'T4-16GB'];

const gpuArb = fc.record({
  model: fc.constantFrom(...MODELS),
  numa: fc.constantFrom(0, 1),
  healthy: fc.integer({ min: 0, max: 9 }).map((x) => x < 8),
});

const clusterArb = fc.array(fc.array(gpuArb, { minLength: 0, maxLength: 4 }), { minLength: 1, maxLength: 4 }).map((nodes) =>
  nodes.map((gpus, n) =>
    node(
      `n${n}`,
      gpus.map((g, i) =>
        gpu(i, { uuid: `n${n}-g${i}`, model: g.model, name: g.model, memoryBytes: Number(/-(\d+)GB/.exec(g.model)?.[1]) * GIB, numaNode: g.numa, health: g.healthy ? 'ok' : 'lost' }),
      ),
      { cpuMilli: 16_000, memoryBytes: 64 * GIB },
    ),
  ),
);

const requestArb = fc
  .record({
    gpus: fc.constantFrom(0, 1, 1, 1, 2, 3),
    kind: fc.constantFrom('share', 'bytes', 'whole', 'exclusive'),
    fraction: fc.integer({ min: 1, max: 100 }).map((x) => x / 100),
    bytesGib: fc.integer({ min: 1, max: 90 }),
    compute: fc.option(fc.integer({ min: 1, max: 100 }).map((x) => x / 100)),
    include: fc.option(fc.constantFrom(...MODELS, 'a100', 'T4')),
    exclude: fc.option(fc.constantFrom(...MODELS)),
    numa: fc.option(fc.constantFrom(0, 1)),
    cpu: fc.integer({ min: 0, max: 8000 }),
    memGib: fc.integer({ min: 0, max: 20 }),
    tenant: fc.constantFrom(null, 't'),
  })
  .map((r, k = 0): PlacementRequest => {
    const gpus = r.gpus;
    const s =
      gpus === 0
        ? slice({ gpus: 0 })
        : r.kind === 'share'
          ? slice({ gpus, memory: { kind: 'fraction', fraction: r.fraction }, compute: r.compute ?? r.fraction })
          : r.kind === 'bytes'
            ? slice({ gpus, memory: { kind: 'bytes', bytes: r.bytesGib * GIB }, compute: r.compute })
            : r.kind === 'exclusive'
              ? slice({ gpus, isolation: 'exclusive' })
              : slice({ gpus });
    const withSel =
      gpus === 0
        ? s
        : {
            ...s,
            models: { include: r.include ? [r.include] : [], exclude: r.exclude && r.exclude.toLowerCase() !== r.include?.toLowerCase() ? [r.exclude] : [] },
            numaNode: r.numa,
          };
    return { id: `r${k}`, slice: withSel, cpuMilli: r.cpu, memoryBytes: r.memGib * GIB, tenant: r.tenant, gang: null, suspendable: false, policy: null };
  });

/** The independent oracle: can GPU `i` of `n` take one GPU's worth of `req`? */
function gpuCanTake(n: NodeState, i: number, req: PlacementRequest, snap: ClusterSnapshot): boolean {
  const g = n.spec.gpus[i] as GpuSpec;
  const s = req.slice;
  if (g.health !== 'ok' || g.mig !== null) return false;
  const hit = (x: string): boolean => g.model.toLowerCase().includes(x.toLowerCase()) || g.name.toLowerCase().includes(x.toLowerCase());
  if (s.models.include.length > 0 && !s.models.include.some(hit)) return false;
  if (s.models.exclude.some(hit)) return false;
  if (s.numaNode !== null && g.numaNode !== s.numaNode) return false;
  if (n.gpuExclusive[i]) return false;
  if (s.isolation === 'exclusive' && (n.gpuSlices[i] ?? 0) > 0) return false;
  const whole = s.isolation === 'exclusive' || (s.memory === null && s.compute === null);
  const mem = whole ? g.memoryBytes : s.memory === null ? g.memoryBytes : s.memory.kind === 'bytes' ? s.memory.bytes : Math.floor((s.memory.fraction * g.memoryBytes) / 2 ** 20) * 2 ** 20;
  const compute = whole ? g.computeMilli : s.compute === null ? 0 : Math.round(s.compute * g.computeMilli);
  if ((n.gpuMemoryFree[i] ?? 0) < mem || (n.gpuComputeFree[i] ?? 0) < compute) return false;
  const quota = req.tenant === null ? undefined : snap.quotas.get(req.tenant)?.memoryBytes;
  if (quota !== undefined && mem * s.gpus > quota - (snap.usage.get(req.tenant ?? '')?.memoryBytes ?? 0)) return false;
  return true;
}

function checkInvariants(snap: ClusterSnapshot): void {
  for (const n of snap.nodes) {
    expect(n.cpuFree).toBeGreaterThanOrEqual(0);
    expect(n.memoryFree).toBeGreaterThanOrEqual(0);
    n.spec.gpus.forEach((_, i) => {
      expect(n.gpuComputeFree[i]).toBeGreaterThanOrEqual(0);
      expect(n.gpuMemoryFree[i]).toBeGreaterThanOrEqual(0);
    });
  }
  const u = snap.usage.get('t');
  const q = snap.quotas.get('t');
  if (u && q) {
    expect(u.gpus).toBeLessThanOrEqual(q.gpus ?? Infinity);
    expect(u.memoryBytes).toBeLessThanOrEqual(q.memoryBytes ?? Infinity);
    expect(u.computeMilli).toBeLessThanOrEqual(q.computeMilli ?? Infinity);
  }
}

describe('engine properties', () => {
  it.each(POLICY_NAMES)('%s: placements respect capacity, selectors and quotas; failures are explained truly', (name) => {
    const wl = fixedWorkload([{ cpuMilli: 1000, memoryBytes: 0, count: 1, computeShare: 0.5, gpuMemory: { kind: 'fraction', fraction: 0.5 }, models: [] }], [1]);
    fc.assert(
      fc.property(clusterArb, fc.array(requestArb, { minLength: 1, maxLength: 25 }), fc.integer(), (nodes, reqs, seed) => {
        const quotas = new Map([['t', { gpus: 4, memoryBytes: 100 * GIB, computeMilli: 2500 }]]);
        let snap = buildSnapshot(nodes, [], quotas);
        const rng = createPrng(seed);
        reqs.forEach((r0, k) => {
          const req = { ...r0, id: `r${k}` };
          const d = schedule(snap, req, { policy: policy(name), rng, workload: wl });
          if (d.status === 'ok') {
            const n = snap.nodes[snap.nodeByName.get(d.placement.node) ?? -1] as NodeState;
            expect(d.placement.gpus.length).toBe(req.slice.gpus);
            expect(new Set(d.placement.gpus.map((g) => g.gpu)).size).toBe(req.slice.gpus);
            for (const g of d.placement.gpus) expect(gpuCanTake(n, g.gpu, req, snap)).toBe(true);
            snap = withPlacement(snap, d.placement);
            checkInvariants(snap);
          } else if (d.status === 'unschedulable') {
            expect(d.rejections.map((r) => r.node).sort()).toEqual(snap.nodes.map((n) => n.spec.name).sort());
            for (const rej of d.rejections) {
              const n = snap.nodes[snap.nodeByName.get(rej.node) ?? -1] as NodeState;
              const cpuOk = n.cpuFree >= req.cpuMilli && n.memoryFree >= req.memoryBytes;
              const able = n.spec.gpus.filter((_, i) => gpuCanTake(n, i, req, snap)).length;
              expect(cpuOk && able >= req.slice.gpus).toBe(false);
              if (rej.reason.kind === 'tooFewGpus') {
                expect(rej.reason.eligible).toBe(able);
                expect(rej.reason.gpus.length).toBe(n.spec.gpus.length - able);
              }
            }
          } else {
            expect(d.reason.kind).toBe('quotaExceeded');
          }
        });
      }),
      { numRuns: 60 },
    );
  });
});
