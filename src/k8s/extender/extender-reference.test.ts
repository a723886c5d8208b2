/**
 * filter and prioritize against a reference that shares none of their shortcuts: each node on
 * its own, through the engine's schedule() on a one-node snapshot (no memo, no cached reasons,
 * no reuse between pods or between filter and prioritize), and with the HTTP routes' hand-written
 * JSON compared with JSON.stringify of the object answers. A seeded random cluster changes
 * between pods (placements, departures, a node's inventory), as the watch changes it.
 */
import type { V1Pod } from '@kubernetes/client-node';
import fc from 'fast-check';
import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { MemoryApi, gpuNode, gpuPod } from '../../../test/k8s/extender-memory-api.js';
import { createPrng, type Prng } from '../../scheduler/index.js';
import { encodeDecision, type PodDecision } from '../hami/decision.js';
import { parsePodGpuRequest } from '../hami/pod-request.js';
import { containerDecisions, placePod, placementRequests } from './decide.js';
import { Extender } from './extender.js';
import { registerExtenderRoutes } from './server.js';
import { encodeFilterAnswer, encodePriorities, filterResultOf, hostPrioritiesOf, MAX_EXTENDER_PRIORITY, type ExtenderFilterResult, type HostPriority } from './wire.js';

const SHAPES: Record<string, string>[] = [
  { 'nvidia.com/gpu': '1', 'nvidia.com/gpumem': '20480', 'nvidia.com/gpucores': '25' },
  { 'nvidia.com/gpu': '1', 'nvidia.com/gpumem': '40960', 'nvidia.com/gpucores': '50' },
  { 'nvidia.com/gpu': '1' },
  { 'nvidia.com/gpu': '2', 'nvidia.com/gpumem': '30000' },
  { 'nvidia.com/gpu': '1', 'nvidia.com/gpumem-percentage': '60' },
  { 'nvidia.com/gpu': '3', 'nvidia.com/gpucores': '10' },
];

/** What filter and prioritize must answer, node by node with schedule() alone. */
function reference(ext: Extender, pod: V1Pod, names: readonly string[]): { filter: ExtenderFilterResult; prioritize: HostPriority[] } {
  const parsed = parsePodGpuRequest(pod);
  if (!parsed.ok || parsed.value === null) throw new Error('the reference takes GPU pods only');
  const request = parsed.value;
  const requests = placementRequests(request, false);
  const snapshot = ext.view.snapshot();
  const empty = ext.view.emptySnapshot();
  const passed: string[] = [];
  const scores = new Map<string, number>();
  const failed: Record<string, string> = {};
  const unresolvable: Record<string, string> = {};
  // placePod picks GPUs by the pod's GPU policy; filter ranks nodes by its node policy.
  const byNodePolicy = { ...request, gpuPolicy: request.nodePolicy };
  for (const name of names) {
    if (!snapshot.nodeByName.has(name)) {
      unresolvable[name] = expect.stringMatching(/no valid gpushare.io\/node-gpus annotation/) as unknown as string;
      continue;
    }
    const now = placePod(snapshot, name, byNodePolicy, requests);
    if (now.ok) {
      passed.push(name);
      scores.set(name, now.score);
    } else (placePod(empty, name, byNodePolicy, requests).ok ? failed : unresolvable)[name] = `gpushare: ${now.message}`;
  }
  const known = [...scores.values()];
  const lo = Math.min(...known);
  const hi = Math.max(...known);
  const flat = hi - lo <= 1e-12 * Math.max(1, Math.abs(hi));
  const prioritize = passed.map((Host) => {
    const s = scores.get(Host) as number;
    return { Host, Score: flat ? MAX_EXTENDER_PRIORITY : Math.round((MAX_EXTENDER_PRIORITY * (s - lo)) / (hi - lo)) };
  });
  return { filter: { Nodes: null, NodeNames: passed, FailedNodes: failed, FailedAndUnresolvableNodes: unresolvable, Error: '' }, prioritize };
}

function place(ext: Extender, pod: V1Pod, node: string): string | null {
  const parsed = parsePodGpuRequest(pod);
  if (!parsed.ok || parsed.value === null) return null;
  const snapshot = ext.view.snapshot();
  const placed = placePod(snapshot, node, parsed.value, placementRequests(parsed.value, false));
  if (!placed.ok) return null;
  const decision: PodDecision = { v: 1, podUid: parsed.value.uid, node, decidedAtMs: 0, containers: containerDecisions(snapshot, parsed.value, placed.placements) };
  ext.view.observePod({ metadata: { uid: parsed.value.uid, name: parsed.value.name, namespace: 'default', annotations: { 'gpushare.io/decision': encodeDecision(decision) } }, spec: { nodeName: node, containers: [] }, status: { phase: 'Running' } });
  return parsed.value.uid;
}

describe('filter and prioritize equal the node-by-node reference', () => {
  it.each([1, 2, 3])('seed %i: 40 nodes, 120 pods, the cluster changing between them; over HTTP the same JSON', async (seed) => {
    const rng: Prng = createPrng(seed);
    const ext = new Extender(new MemoryApi(), { now: () => 0 });
    const nodeNames: string[] = [];
    for (let n = 0; n < 40; n++) {
      const name = `n${n}`;
      nodeNames.push(name);
      ext.view.observeNode(gpuNode(name, 1 + Math.floor(rng.next() * 8), { memoryMiB: rng.next() < 0.3 ? 40960 : 81920 }));
    }
    nodeNames.push('cpu-only');
    const app = Fastify();
    registerExtenderRoutes(app, ext);
    await app.ready();
    const alive: string[] = [];
    try {
      for (let k = 0; k < 120; k++) {
        const pod = gpuPod(`p${seed}-${k}`, SHAPES[Math.floor(rng.next() * SHAPES.length)] as Record<string, string>, rng.next() < 0.3 ? { annotations: { 'hami.io/node-scheduler-policy': 'spread' } } : {});
        // All names, or a window of them (percentageOfNodesToScore), in a shuffled order.
        const names = rng.next() < 0.5 ? nodeNames : nodeNames.filter(() => rng.next() < 0.5);
        const want = reference(ext, pod, names);
        const answer = ext.filterAnswer({ Pod: pod as never, NodeNames: names });
        const filter = filterResultOf(answer);
        expect(filter).toEqual(want.filter);
        expect(encodeFilterAnswer(answer)).toBe(JSON.stringify(filter));
        const ranked = ext.prioritizeAnswer({ Pod: pod as never, NodeNames: filter.NodeNames ?? [] });
        const prioritize = hostPrioritiesOf(ranked);
        expect(prioritize).toEqual(want.prioritize);
        expect(encodePriorities(ranked)).toBe(JSON.stringify(prioritize));
        // Over HTTP (a second filter of the same pod: reasons now from the memo, keys in another order).
        const fr = await app.inject({ method: 'POST', url: '/gpushare-scheduler/filter', payload: { Pod: pod, Nodes: null, NodeNames: names } });
        expect(fr.headers['content-type']).toMatch(/^application\/json/);
        expect(JSON.parse(fr.body)).toEqual(want.filter);
        const pr = await app.inject({ method: 'POST', url: '/gpushare-scheduler/prioritize', payload: { Pod: pod, Nodes: null, NodeNames: filter.NodeNames } });
        expect(JSON.parse(pr.body)).toEqual(want.prioritize);
        // The cluster moves on: the pod lands where prioritize ranked best, one bound pod leaves,
        // now and then a node's inventory changes.
        const best = prioritize.reduce<HostPriority | null>((a, b) => (a === null || b.Score > a.Score ? b : a), null);
        const uid = best ? place(ext, pod, best.Host) : null;
        if (uid !== null) alive.push(uid);
        if (alive.length > 0 && rng.next() < 0.4) ext.view.observePod({ metadata: { uid: alive.splice(Math.floor(rng.next() * alive.length), 1)[0] as string } }, true);
        if (rng.next() < 0.05) ext.view.observeNode(gpuNode(nodeNames[Math.floor(rng.next() * 40)] as string, 1 + Math.floor(rng.next() * 8)));
      }
    } finally {
      await app.close();
    }
  });
});

describe('over HTTP, as the kube-scheduler sends it, the answers equal the reference (fast-check)', () => {
  // Bodies laid out as Go's encoder writes them (the routes' split path: lists and pods
  // remembered by their text), prioritize sent filter's NodeNames as the very text filter
  // wrote, several pods in turn with the cluster changing between them (the caches' keys).
  const podArb = fc.record({ shape: fc.nat(SHAPES.length - 1), spread: fc.boolean(), pick: fc.option(fc.array(fc.boolean(), { minLength: 13, maxLength: 13 }), { nil: null }), leave: fc.boolean() });
  const clusterArb = fc.record({
    nodes: fc.array(fc.record({ gpus: fc.integer({ min: 1, max: 8 }), small: fc.boolean() }), { minLength: 1, maxLength: 12 }),
    bound: fc.array(fc.record({ shape: fc.nat(SHAPES.length - 1), node: fc.nat(11) }), { maxLength: 30 }),
    pods: fc.array(podArb, { minLength: 1, maxLength: 6 }),
  });

  it('filter and prioritize: same nodes, reasons and scores, and the JSON of the objects', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(clusterArb, async ({ nodes, bound, pods }) => {
        run++;
        const ext = new Extender(new MemoryApi(), { now: () => 0 });
        const names = nodes.map((n, k) => {
          ext.view.observeNode(gpuNode(`n${k}`, n.gpus, { memoryMiB: n.small ? 40960 : 81920 }));
          return `n${k}`;
        });
        names.push('cpu-only');
        const alive: string[] = [];
        for (const [k, b] of bound.entries()) {
          const uid = place(ext, gpuPod(`b${run}-${k}`, SHAPES[b.shape] as Record<string, string>), names[b.node % nodes.length] as string);
          if (uid !== null) alive.push(uid);
        }
        const app = Fastify();
        registerExtenderRoutes(app, ext);
        await app.ready();
        try {
          for (const [k, p] of pods.entries()) {
            const pod = gpuPod(`p${run}-${k}`, SHAPES[p.shape] as Record<string, string>, p.spread ? { annotations: { 'hami.io/node-scheduler-policy': 'spread' } } : {});
            const asked = p.pick === null ? names : names.filter((_, i) => p.pick?.[i] === true);
            const want = reference(ext, pod, asked);
            const post = (verb: string, list: string) =>
              app.inject({ method: 'POST', url: `/gpushare-scheduler/${verb}`, headers: { 'content-type': 'application/json' }, payload: `{"Pod":${JSON.stringify(pod)},"Nodes":null,"NodeNames":${list}}` });
            const fr = await post('filter', JSON.stringify(asked));
            const filter = JSON.parse(fr.body) as ExtenderFilterResult;
            expect(filter).toEqual(want.filter);
            expect(fr.body).toBe(JSON.stringify(filter));
            const namesText = /,"NodeNames":(null|\[[^\]]*\]),"FailedNodes"/.exec(fr.body)?.[1] ?? 'null';
            const pr = await post('prioritize', namesText);
            const prioritize = JSON.parse(pr.body) as HostPriority[];
            expect(prioritize).toEqual(want.prioritize);
            expect(pr.body).toBe(JSON.stringify(prioritize));
            // Asked again, directly: the same answer (the route's caches are not the answer).
            expect(ext.prioritize({ Pod: pod as never, NodeNames: filter.NodeNames ?? [] })).toEqual(want.prioritize);
            const best = prioritize.reduce<HostPriority | null>((a, b) => (a === null || b.Score > a.Score ? b : a), null);
            const uid = best ? place(ext, pod, best.Host) : null;
            if (uid !== null) alive.push(uid);
            if (p.leave && alive.length > 0) ext.view.observePod({ metadata: { uid: alive.shift() as string } }, true);
          }
        } finally {
          await app.close();
        }
      }),
      { numRuns: 40 },
    );
  });
});
