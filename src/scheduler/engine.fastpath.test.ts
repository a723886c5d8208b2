/**
 * The fast engine against the naive one it replaced (testing/reference-engine.ts): on random
 * clusters, carried through random placements, both must make the same decision, reasons
 * included, and draw the same numbers from the PRNG, for every policy and with or without
 * explanations. Also: the node summaries the fast path skips nodes by, and the incremental
 * fragmentation, against their definitions.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { schedule } from './engine.js';
import { demandOf } from './demand.js';
import { fragAfter, fragAfterOne, fragIndex, nodeFragmentation, type FragState } from './fragmentation.js';
import { fragmentation } from './plugins/scores.js';
import { policy, POLICY_NAMES } from './policy.js';
import { createPrng } from './prng.js';
import { DecisionMemo } from './memo.js';
import { buildSnapshot, nodeState, withPlacement, withoutPlacements } from './snapshot.js';
import { GIB, gpu, node, request, slice } from './testing/fixtures.js';
import { scheduleReference } from './testing/reference-engine.js';
import type { SmSupport } from '../domain/index.js';
import type { GpuSpec, NodeSpec, NodeState, PlacementRequest } from './types.js';
import { fixedWorkload } from './workload.js';

const MODELS = ['H100-80GB', 'A100-40GB', 'T4-16GB'];
const MIG = { instances: [{ id: 'm0', profile: '3g.40gb', memoryBytes: 40e9, slices: 3 }], dynamic: true, creatable: ['1g.10gb', '3g.40gb'], totalSlices: 7 };

const gpuArb = fc.record({
  model: fc.constantFrom(...MODELS),
  numa: fc.constantFrom(0, 1),
  state: fc.integer({ min: 0, max: 19 }).map((x) => (x < 17 ? 'ok' : x < 19 ? 'lost' : 'mig')),
  // What the driver groups of an H100's SMs: all whole groups, 15 groups (an H200's), or an unknown SM count.
  groupable: fc.constantFrom(128, 128, 120, 0),
});

/** A GPU's SM layout: Hopper ones partition (in the driver's groups), the others cannot. */
function smOf(model: string, groupable: number): SmSupport {
  if (!model.startsWith('H100')) return { ok: false, cause: 'computeCapability', computeCapability: model.startsWith('A100') ? '8.0' : '7.5' };
  if (groupable === 0) return { ok: false, cause: 'smCountUnknown' };
  return { ok: true, layout: { total: 132, min: 8, step: 8, groupable } };
}

/** Nodes of one model (uniform, the trace's case) or mixed, some with topology, a few GPUs short. */
const clusterArb = fc
  .array(fc.tuple(fc.array(gpuArb, { minLength: 0, maxLength: 8 }), fc.boolean(), fc.integer({ min: 4, max: 32 })), { minLength: 1, maxLength: 6 })
  .map((nodes): NodeSpec[] =>
    nodes.map(([gpus, uniform, cpus], n) =>
      node(
        `n${n}`,
        gpus.map((g, i) => {
          const model = uniform ? (gpus[0]?.model ?? g.model) : g.model;
          return gpu(i, {
            uuid: `n${n}-g${i}`,
            model,
            name: model,
            memoryBytes: Number(/-(\d+)GB/.exec(model)?.[1]) * GIB,
            numaNode: g.numa,
            health: g.state === 'lost' ? 'lost' : 'ok',
            mig: g.state === 'mig' ? MIG : null,
            sm: smOf(model, g.groupable),
          });
        }),
        { cpuMilli: cpus * 1000, memoryBytes: 64 * GIB },
      ),
    ),
  );

const requestArb = fc
  .record({
    gpus: fc.constantFrom(0, 1, 1, 1, 1, 2, 3),
    kind: fc.constantFrom('share', 'share', 'bytes', 'whole', 'exclusive', 'mig', 'partition', 'partition', 'resume'),
    // A resuming partition's fixed range (offset, count), the same on each of its GPUs.
    fixed: fc.constantFrom({ offset: 0, count: 64 }, { offset: 64, count: 64 }, { offset: 32, count: 32 }, { offset: 96, count: 32 }, { offset: 120, count: 8 }, { offset: 0, count: 132 }),
    fraction: fc.constantFrom(0.1, 0.25, 0.3, 0.5, 0.75, 1),
    bytesGib: fc.integer({ min: 1, max: 40 }),
    include: fc.option(fc.constantFrom(...MODELS, 'a100', 'T4')),
    uuid: fc.option(fc.constantFrom('n0-g0', 'N1-G1', 'n2-g3')),
    numa: fc.option(fc.constantFrom(0, 1), { freq: 4 }),
    cpu: fc.constantFrom(0, 1000, 2000, 4000),
    // Host memory against the nodes' 64 GiB: the memo keys answers without it.
    memGib: fc.constantFrom(0, 1, 1, 8, 30, 70),
    tenant: fc.constantFrom(null, 't'),
    // Half the requests select no GPU, so the uniform nodes' packed path (feasibility.ts) sees them.
    plain: fc.boolean(),
  })
  .map((r): PlacementRequest => {
    const gpus = r.gpus;
    const base =
      gpus === 0
        ? slice({ gpus: 0 })
        : r.kind === 'share'
          ? slice({ gpus, memory: { kind: 'fraction', fraction: r.fraction }, compute: r.fraction })
          : r.kind === 'bytes'
            ? slice({ gpus, memory: { kind: 'bytes', bytes: r.bytesGib * GIB }, compute: null })
            : r.kind === 'exclusive'
              ? slice({ gpus, isolation: 'exclusive' })
              : r.kind === 'mig'
                ? slice({ gpus: 1, isolation: 'mig', memory: { kind: 'bytes', bytes: r.bytesGib * 1e9 } })
                : r.kind === 'partition' || r.kind === 'resume'
                  ? slice({ gpus, isolation: 'sm-partition', memory: { kind: 'fraction', fraction: r.fraction / 2 }, compute: r.fraction })
                  : slice({ gpus });
    const s =
      gpus === 0 || r.plain
        ? base
        : { ...base, models: { include: r.include ? [r.include] : [], exclude: [] }, uuids: { include: r.uuid ? [r.uuid] : [], exclude: [] }, numaNode: r.numa };
    const smRanges = r.kind === 'resume' && gpus > 0 ? Array.from({ length: gpus }, () => r.fixed) : null;
    return { id: 'r', slice: s, cpuMilli: r.cpu, memoryBytes: r.memGib * GIB, tenant: r.tenant, gang: null, suspendable: false, policy: null, smRanges };
  });

const workload = fixedWorkload(
  [
    { cpuMilli: 1000, memoryBytes: 0, count: 1, computeShare: 0.25, gpuMemory: { kind: 'fraction', fraction: 0.25 }, models: [] },
    { cpuMilli: 4000, memoryBytes: 0, count: 1, computeShare: 0.5, gpuMemory: { kind: 'fraction', fraction: 0.5 }, models: [] },
    { cpuMilli: 8000, memoryBytes: 0, count: 2, computeShare: 1, gpuMemory: null, models: [] },
    { cpuMilli: 2000, memoryBytes: 0, count: 1, computeShare: 1, gpuMemory: null, models: ['t4'] },
    { cpuMilli: 2000, memoryBytes: 0, count: 0, computeShare: 0, gpuMemory: null, models: [] },
  ],
  [5, 3, 1, 1, 1],
);

describe('fast engine = reference engine', () => {
  it.each([...POLICY_NAMES, 'fragmentation+bestfit:0.15', 'binpack+topology:0.5'])(
    '%s: same decisions and PRNG draws on random clusters, with and without the memo, under churn',
    (name) => {
      fc.assert(
        fc.property(
          clusterArb,
          fc.array(fc.tuple(requestArb, fc.integer({ min: 0, max: 4 })), { minLength: 1, maxLength: 30 }),
          fc.integer(),
          fc.boolean(),
          (nodes, reqs, seed, explain) => {
            const quotas = new Map([['t', { gpus: 6, memoryBytes: 120 * GIB }]]);
            let snap = buildSnapshot(nodes, [], quotas);
            const rngMemo = createPrng(seed);
            const rngFast = createPrng(seed);
            const rngRef = createPrng(seed);
            const memo = new DecisionMemo();
            const placed: string[] = [];
            reqs.forEach(([r, churn], k) => {
              const req = { ...r, id: `r${k}` };
              const withMemo = schedule(snap, req, { policy: policy(name), rng: rngMemo, workload, explain, memo });
              const fast = schedule(snap, req, { policy: policy(name), rng: rngFast, workload, explain });
              const ref = scheduleReference(snap, req, { policy: policy(name), rng: rngRef, workload, explain });
              expect(fast).toEqual(ref);
              expect(withMemo).toEqual(ref);
              const next = rngRef.next();
              expect(rngFast.next()).toBe(next);
              expect(rngMemo.next()).toBe(next);
              if (fast.status === 'ok') {
                snap = withPlacement(snap, fast.placement);
                placed.push(fast.placement.id);
              }
              // Now and then a placement leaves, so cached answers of its node go stale.
              if (churn === 0 && placed.length > 0) snap = withoutPlacements(snap, new Set(placed.splice(k % placed.length, 1)));
            });
          },
        ),
        { numRuns: 80 },
      );
    },
  );

  it('one PRNG draw per decision, whatever the number of ties', () => {
    const nodes = Array.from({ length: 5 }, (_, n) => node(`n${n}`, Array.from({ length: 4 }, (_, i) => gpu(i, { uuid: `n${n}-${i}` }))));
    const snap = buildSnapshot(nodes);
    for (const count of [1, 3]) {
      const rng = createPrng(7);
      const twin = createPrng(7);
      expect(schedule(snap, request({ gpus: count }), { policy: policy('random'), rng }).status).toBe('ok');
      twin.next();
      expect(rng.next()).toBe(twin.next());
    }
  });

  it('the tie-break spreads ties: every tied node wins for some seed, none for most', () => {
    const nodes = Array.from({ length: 4 }, (_, n) => node(`n${n}`, [gpu(0, { uuid: `n${n}-0` })]));
    const snap = buildSnapshot(nodes);
    const wins = new Map<string, number>();
    for (let seed = 0; seed < 400; seed++) {
      const d = schedule(snap, request({ gpus: 1 }), { policy: policy('random'), rng: createPrng(seed) });
      if (d.status === 'ok') wins.set(d.placement.node, (wins.get(d.placement.node) ?? 0) + 1);
    }
    expect([...wins.keys()].sort()).toEqual(['n0', 'n1', 'n2', 'n3']);
    // 100 expected each; a fair tie-break stays well within 60-140 over 400 seeds.
    for (const c of wins.values()) expect(c).toBeGreaterThan(60);
    for (const c of wins.values()) expect(c).toBeLessThan(140);
  });
});

describe('node summaries', () => {
  it('match their definitions on random placements', () => {
    fc.assert(
      fc.property(clusterArb, fc.array(requestArb, { maxLength: 30 }), fc.integer(), (nodes, reqs, seed) => {
        let snap = buildSnapshot(nodes);
        const rng = createPrng(seed);
        for (const [k, r] of reqs.entries()) {
          const d = schedule(snap, { ...r, id: `r${k}`, tenant: null }, { policy: policy('random'), rng });
          if (d.status === 'ok') snap = withPlacement(snap, d.placement);
        }
        for (const n of snap.nodes) {
          const gs = n.spec.gpus;
          const healthy = gs.map((_, i) => i).filter((i) => (gs[i] as GpuSpec).health === 'ok');
          const free = (i: number): [number, number] => [n.gpuComputeFree[i] ?? 0, n.gpuMemoryFree[i] ?? 0];
          expect(n.maxGpuComputeFree).toBe(Math.max(0, ...healthy.map((i) => free(i)[0])));
          expect(n.maxGpuMemoryFree).toBe(Math.max(0, ...healthy.map((i) => free(i)[1])));
          expect(n.computeCapacity).toBe(healthy.reduce((s, i) => s + (gs[i] as GpuSpec).computeMilli, 0));
          const full = healthy.filter((i) => {
            const g = gs[i] as GpuSpec;
            return g.mig === null && !n.gpuExclusive[i] && free(i)[0] >= g.computeMilli && free(i)[1] >= g.memoryBytes;
          });
          expect(n.fullGpusFree).toBe(full.length);
          expect(n.uniformGpus).toBe(gs.every((g) => g.computeMilli === gs[0]?.computeMilli && g.memoryBytes === gs[0]?.memoryBytes));
          gs.forEach((g, i) => {
            const same = (j: number): boolean => {
              const h = gs[j] as GpuSpec;
              return free(i)[0] === free(j)[0] && free(i)[1] === free(j)[1] && n.gpuSlices[i] === n.gpuSlices[j] && g.computeMilli === h.computeMilli && g.memoryBytes === h.memoryBytes && g.model === h.model;
            };
            expect(n.gpuClass[i]).toBe(gs.findIndex((_, j) => same(j)));
          });
        }
      }),
      { numRuns: 100 },
    );
  });
});

describe('incremental fragmentation', () => {
  const stateOf = (n: NodeState): FragState => ({
    cpuFree: n.cpuFree,
    memoryFree: n.memoryFree,
    gpus: n.spec.gpus,
    computeFree: n.gpuComputeFree,
    memoryFreeGpu: n.gpuMemoryFree,
    exclusive: n.gpuExclusive,
  });
  it('fragAfter equals the fragmentation of the node after the placement', () => {
    fc.assert(
      fc.property(clusterArb, fc.array(requestArb, { minLength: 1, maxLength: 30 }), fc.integer(), (nodes, reqs, seed) => {
        let snap = buildSnapshot(nodes);
        const rng = createPrng(seed);
        for (const [k, r] of reqs.entries()) {
          const d = schedule(snap, { ...r, id: `r${k}`, tenant: null }, { policy: policy('random'), rng });
          if (d.status !== 'ok') continue;
          const i = snap.nodeByName.get(d.placement.node) as number;
          const before = snap.nodes[i] as NodeState;
          const gpus = d.placement.gpus.map((g) => g.gpu);
          const predicted = fragAfter(
            fragIndex(stateOf(before), workload),
            stateOf(before),
            workload,
            gpus,
            d.placement.gpus.map((g) => g.computeMilli),
            d.placement.gpus.map((g) => g.memoryBytes),
            d.placement.cpuMilli,
            d.placement.exclusive,
          );
          snap = withPlacement(snap, d.placement);
          const after = nodeState(before.spec, i, [...before.placements, d.placement]);
          // MIG GPUs are outside the fragmentation accounting; a MIG share changes only CPU.
          expect(predicted).toBeCloseTo(nodeFragmentation(stateOf(after), workload), 6);
          expect(fragIndex(stateOf(after), workload).total).toBeCloseTo(nodeFragmentation(stateOf(after), workload), 6);
          if (gpus.length === 1) {
            const one = fragAfterOne(fragIndex(stateOf(before), workload), stateOf(before), workload, gpus[0] as number, d.placement.gpus[0]?.computeMilli ?? 0, d.placement.gpus[0]?.memoryBytes ?? 0, d.placement.cpuMilli, d.placement.exclusive);
            expect(one).toBe(predicted);
          }
        }
      }),
      { numRuns: 100 },
    );
  });

  it('the score plugin, answering from its per-node memo, equals the score worked out afresh', () => {
    fc.assert(
      fc.property(clusterArb, fc.array(requestArb, { minLength: 1, maxLength: 12 }), fc.array(requestArb, { minLength: 1, maxLength: 12 }), fc.integer(), (nodes, placed, asked, seed) => {
        let snap = buildSnapshot(nodes);
        const rng = createPrng(seed);
        for (const [k, r] of placed.entries()) {
          const d = schedule(snap, { ...r, id: `p${k}`, tenant: null }, { policy: policy('random'), rng });
          if (d.status === 'ok') snap = withPlacement(snap, d.placement);
        }
        // Twice over the same requests: the second pass reads what the first memoised.
        for (const pass of [0, 1]) {
          for (const r of asked) {
            if (r.slice.gpus !== 1) continue;
            const ctx = { snapshot: snap, request: r, demand: demandOf(r), workload };
            const scorer = fragmentation.prepare(ctx);
            for (const n of snap.nodes) {
              n.spec.gpus.forEach((g, i) => {
                if (g.health !== 'ok' || g.mig !== null) return;
                const idx = fragIndex(stateOf(n), workload);
                const after = fragAfter(idx, stateOf(n), workload, [i], [ctx.demand.computeOn(g)], [ctx.demand.memoryOn(g)], r.cpuMilli, ctx.demand.exclusive);
                const fresh = Math.min(1, Math.max(0, 0.5 - (after - idx.total) / (2 * snap.scale.computeMilli)));
                expect(scorer?.score(n, [i]), `pass ${pass}`).toBe(fresh);
              });
            }
          }
        }
      }),
      { numRuns: 60 },
    );
  });
});
