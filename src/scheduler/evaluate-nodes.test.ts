import { describe, expect, it } from 'vitest';
import { evaluateNodes, schedule, type ScheduleOptions } from './engine.js';
import { DecisionMemo } from './memo.js';
import { policy } from './policy.js';
import { createPrng } from './prng.js';
import { buildSnapshot } from './snapshot.js';
import { GIB, node, request, share } from './testing/fixtures.js';
import type { NodeSpec, Placement, PlacementRequest } from './types.js';

const opts = (name = 'binpack', memo?: DecisionMemo): ScheduleOptions => ({ policy: policy(name), rng: createPrng(3), ...(memo ? { memo } : {}) });

/** A cluster where node i has i quarter-slices on GPU 0 (node 4 full on GPU 0, one GPU each). */
function cluster(): { nodes: NodeSpec[]; placements: Placement[] } {
  const nodes = Array.from({ length: 5 }, (_, i) => node(`n${i}`, 1));
  const placements: Placement[] = [];
  for (let i = 0; i < 5; i++) {
    for (let q = 0; q < i; q++) {
      placements.push({ id: `p${i}-${q}`, node: `n${i}`, gpus: [{ gpu: 0, memoryBytes: 20 * GIB, computeMilli: 250, mig: null }], cpuMilli: 0, memoryBytes: 0, priority: 1, tenant: null, exclusive: false, suspendable: false, gang: null });
    }
  }
  return { nodes, placements };
}

describe('evaluateNodes: every node judged alone, as schedule() judges it', () => {
  const reqs: [string, PlacementRequest][] = [
    ['a quarter', share(0.25)],
    ['a half', share(0.5)],
    ['a whole GPU', request()],
    ['30 GiB, no compute', request({ memory: { kind: 'bytes', bytes: 30 * GIB } })],
  ];
  it.each(reqs)('%s: the feasible nodes are those a one-node schedule() places on, with the same scores', (_n, req) => {
    const { nodes, placements } = cluster();
    const snap = buildSnapshot(nodes, placements);
    for (const name of ['binpack', 'spread']) {
      const ev = evaluateNodes(snap, req, opts(name));
      expect(ev.status).toBe('evaluated');
      if (ev.status !== 'evaluated') return;
      expect(ev.feasible.length + ev.rejections.length).toBe(nodes.length);
      for (const spec of nodes) {
        const alone = buildSnapshot([spec], placements.filter((p) => p.node === spec.name));
        const d = schedule({ ...alone, scale: snap.scale }, req, opts(name));
        const at = ev.feasible.indexOf(snap.nodeByName.get(spec.name) as number);
        const hit = at < 0 ? undefined : ev.scores[at];
        if (d.status === 'ok') expect(hit).toBeCloseTo(d.score, 12);
        else {
          expect(hit).toBeUndefined();
          expect(ev.rejections.find((r) => r.node === spec.name)?.reason.kind).toBe('tooFewGpus');
        }
      }
      // schedule()'s pick is a node with the best score.
      const d = schedule(snap, req, opts(name));
      if (d.status === 'ok') expect(Math.max(...ev.scores)).toBeCloseTo(d.score, 12);
      else expect(ev.feasible).toEqual([]);
    }
  });

  it('explains refused nodes GPU by GPU', () => {
    const { nodes, placements } = cluster();
    const ev = evaluateNodes(buildSnapshot(nodes, placements), share(0.5), opts());
    if (ev.status !== 'evaluated') throw new Error('unresolvable');
    const n4 = ev.rejections.find((r) => r.node === 'n4');
    expect(n4?.reason).toMatchObject({ kind: 'tooFewGpus', eligible: 0 });
    expect(n4?.reason.kind === 'tooFewGpus' && n4.reason.gpus[0]?.kind).toBe('insufficientGpuMemory');
    expect(ev.feasible).toEqual([0, 1, 2]);
  });

  it('judges only the nodes asked, and answers the same from the memo', () => {
    const { nodes, placements } = cluster();
    const snap = buildSnapshot(nodes, placements);
    const memo = new DecisionMemo();
    const first = evaluateNodes(snap, share(0.25), opts('binpack', memo), [0, 3, 4]);
    const again = evaluateNodes(snap, share(0.25), opts('binpack', memo), [0, 3, 4]);
    expect(again).toEqual(first);
    if (first.status !== 'evaluated') throw new Error('unresolvable');
    expect(first.feasible).toEqual([0, 3]);
    expect(first.rejections.map((r) => r.node)).toEqual(['n4']);
  });

  it('an unknown policy is unresolvable', () => {
    const { nodes } = cluster();
    expect(evaluateNodes(buildSnapshot(nodes), share(0.25, {}, { policy: 'nope' }), opts()).status).toBe('unresolvable');
  });
});
