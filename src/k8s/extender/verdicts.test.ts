/**
 * filter's kept verdicts (verdicts.ts) and the writer's kept bytes (reply-sections.ts) against
 * a fresh extender: random sequences of pods asked about, binds, departures and node changes
 * (inventory, a bad annotation, a node gone and back), and after each question the kept
 * extender's answers equal those of an extender built from the same events with nothing kept.
 */
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MemoryApi, gpuNode, gpuPod } from '../../../test/k8s/extender-memory-api.js';
import { encodeDecision, type PodDecision } from '../hami/decision.js';
import { parsePodGpuRequest } from '../hami/pod-request.js';
import { containerDecisions, placePod, placementRequests } from './decide.js';
import { Extender } from './extender.js';
import { ReplyWriter } from './reply-bytes.js';
import { filterResultOf, hostPrioritiesOf } from './wire.js';

const SHAPES: Record<string, string>[] = [
  { 'nvidia.com/gpu': '1', 'nvidia.com/gpumem': '20480', 'nvidia.com/gpucores': '25' },
  { 'nvidia.com/gpu': '1', 'nvidia.com/gpumem': '40960', 'nvidia.com/gpucores': '50' },
  { 'nvidia.com/gpu': '1' },
  { 'nvidia.com/gpu': '2', 'nvidia.com/gpumem': '30000' },
];
const NODES = 8;

type Event = { readonly node: V1Node } | { readonly pod: V1Pod; readonly deleted: boolean };

function replay(events: readonly Event[]): Extender {
  const ext = new Extender(new MemoryApi(), { now: () => 0 });
  for (const e of events) apply(ext, e);
  return ext;
}

function apply(ext: Extender, e: Event): void {
  if ('node' in e) ext.view.observeNode(e.node);
  else ext.view.observePod(e.pod, e.deleted);
}

/** The bound pod's event for `pod` on `node`, or null where it does not fit there now. */
function boundPod(ext: Extender, pod: V1Pod, node: string): V1Pod | null {
  const parsed = parsePodGpuRequest(pod);
  if (!parsed.ok || parsed.value === null) return null;
  const snapshot = ext.view.snapshot();
  const placed = placePod(snapshot, node, parsed.value, placementRequests(parsed.value, false));
  if (!placed.ok) return null;
  const decision: PodDecision = { v: 1, podUid: parsed.value.uid, node, decidedAtMs: 0, containers: containerDecisions(snapshot, parsed.value, placed.placements) };
  return { metadata: { uid: parsed.value.uid, name: parsed.value.name, namespace: 'default', annotations: { 'gpushare.io/decision': encodeDecision(decision) } }, spec: { nodeName: node, containers: [] }, status: { phase: 'Running' } };
}

const opArb = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('ask' as const), shape: fc.nat(SHAPES.length - 1), spread: fc.boolean() }) },
  { weight: 6, arbitrary: fc.record({ op: fc.constant('bind' as const), shape: fc.nat(SHAPES.length - 1), node: fc.nat(NODES - 1) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('leave' as const), which: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('inventory' as const), node: fc.nat(NODES - 1), gpus: fc.integer({ min: 1, max: 8 }), small: fc.boolean(), lost: fc.boolean() }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('bad' as const), node: fc.nat(NODES - 1) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('gone' as const), node: fc.nat(NODES - 1) }) },
);

describe('kept verdicts and kept reply bytes equal a fresh extender', () => {
  it('after any sequence of binds, departures and node changes', () => {
    let run = 0;
    let kept = 0;
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), (ops) => {
        run++;
        const ext = new Extender(new MemoryApi(), { now: () => 0 });
        const writer = new ReplyWriter();
        const events: Event[] = [];
        const record = (e: Event): void => {
          events.push(e);
          apply(ext, e);
        };
        const names = Array.from({ length: NODES }, (_, k) => `n${k}`);
        names.push('cpu-only');
        // Small nodes, so that binds fill them and refusals (and their reasons) change.
        for (let k = 0; k < NODES; k++) record({ node: gpuNode(`n${k}`, 1 + (k % 3)) });
        const alive: V1Pod[] = [];
        for (const [k, o] of ops.entries()) {
          if (o.op === 'ask') {
            const pod = gpuPod(`q${run}-${k}`, SHAPES[o.shape] as Record<string, string>, o.spread ? { annotations: { 'hami.io/node-scheduler-policy': 'spread' } } : {});
            // The list is sent anew each time (a copy), as each request's body is parsed anew.
            const answer = ext.filterAnswer({ Pod: pod as never, NodeNames: [...names] });
            if (answer.verdicts !== undefined) kept++;
            const fresh = replay(events);
            const want = fresh.filter({ Pod: pod as never, NodeNames: [...names] });
            expect(filterResultOf(answer)).toEqual(want);
            const bytes = writer.filter(answer).bytes.toString('utf8');
            expect(JSON.parse(bytes)).toEqual(want);
            expect(bytes).toBe(JSON.stringify(filterResultOf(answer)));
            const passed = want.NodeNames ?? [];
            const ranked = ext.prioritizeAnswer({ Pod: pod as never, NodeNames: [...passed] });
            const wantRanked = fresh.prioritize({ Pod: pod as never, NodeNames: [...passed] });
            expect(hostPrioritiesOf(ranked)).toEqual(wantRanked);
            expect(JSON.parse(writer.priorities(ranked).toString('utf8'))).toEqual(wantRanked);
            // Some of them (another extender refused the rest), and one name filter was not asked about.
            const some = passed.filter((_, j) => j % 2 === 0);
            expect(hostPrioritiesOf(ext.prioritizeAnswer({ Pod: pod as never, NodeNames: some }))).toEqual(fresh.prioritize({ Pod: pod as never, NodeNames: some }));
            expect(hostPrioritiesOf(ext.prioritizeAnswer({ Pod: pod as never, NodeNames: [...some, 'elsewhere'] }))).toEqual(fresh.prioritize({ Pod: pod as never, NodeNames: [...some, 'elsewhere'] }));
          } else if (o.op === 'bind') {
            const pod = boundPod(ext, gpuPod(`b${run}-${k}`, SHAPES[o.shape] as Record<string, string>), `n${o.node}`);
            if (pod !== null) {
              record({ pod, deleted: false });
              alive.push(pod);
            }
          } else if (o.op === 'leave') {
            if (alive.length > 0) record({ pod: alive.splice(o.which % alive.length, 1)[0] as V1Pod, deleted: true });
          } else if (o.op === 'inventory') {
            record({ node: gpuNode(`n${o.node}`, o.gpus, { memoryMiB: o.small ? 40960 : 81920, ...(o.lost ? { lost: [0] } : {}) }) });
          } else if (o.op === 'bad') {
            record({ node: { metadata: { name: `n${o.node}`, annotations: { 'gpushare.io/node-gpus': '{"v":1,"gpus":"not a list"}' } } } });
          } else {
            record({ node: { metadata: { name: `n${o.node}` } } });
          }
        }
      }),
      { numRuns: 200 },
    );
    // The kept path was taken, not only the fresh one.
    expect(kept).toBeGreaterThan(100);
  });

  it('a refused node whose reason changes while it stays refused is written anew', () => {
    const ext = new Extender(new MemoryApi(), { now: () => 0 });
    const writer = new ReplyWriter();
    const events: Event[] = [];
    const record = (e: Event): void => {
      events.push(e);
      apply(ext, e);
    };
    record({ node: gpuNode('n0', 3) });
    record({ node: gpuNode('n1', 8) });
    const names = ['n0', 'n1'];
    const ask = (k: number): { kept: boolean; failed: string | undefined } => {
      const pod = gpuPod(`two-${k}`, { 'nvidia.com/gpu': '2' });
      const answer = ext.filterAnswer({ Pod: pod as never, NodeNames: [...names] });
      const want = replay(events).filter({ Pod: pod as never, NodeNames: [...names] });
      expect(JSON.parse(writer.filter(answer).bytes.toString('utf8'))).toEqual(want);
      return { kept: answer.verdicts !== undefined, failed: want.FailedNodes['n0'] };
    };
    ask(0);
    const seen = new Set<string | undefined>();
    for (let k = 1; k <= 3; k++) {
      const pod = boundPod(ext, gpuPod(`whole-${k}`, { 'nvidia.com/gpu': '1' }), 'n0');
      if (pod !== null) record({ pod, deleted: false });
      const { kept, failed } = ask(k);
      expect(kept).toBe(true);
      seen.add(failed);
    }
    // Passed, then refused for one reason, then for another.
    expect(seen.size).toBe(3);
  });
});
