/**
 * filter's kept verdicts (verdicts.ts) and the writer's kept bytes (reply-sections.ts) against
 * a fresh extender: random sequences of pods asked about, binds (held as bind holds them),
 * departures and node changes
 * (inventory, a bad annotation, a node gone and back), and after each question the kept
 * extender's answers equal those of an extender built from the same events with nothing kept.
 */
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { MemoryApi, gpuNode, gpuPod } from '../../../test/k8s/extender-memory-api.js';
import type { PodDecision } from '../hami/decision.js';
import { parsePodGpuRequest } from '../hami/pod-request.js';
import { containerDecisions, placePod, placementRequests } from './decide.js';
import { placementsOf } from './cluster-view.js';
import { Extender } from './extender.js';
import { ReplyWriter } from './reply-bytes.js';
import { VerdictTable } from './verdicts.js';
import { filterResultOf, hostPrioritiesOf } from './wire.js';

const SHAPES: Record<string, string>[] = [
  { 'nvidia.com/gpu': '1', 'nvidia.com/gpumem': '20480', 'nvidia.com/gpucores': '25' },
  { 'nvidia.com/gpu': '1', 'nvidia.com/gpumem': '40960', 'nvidia.com/gpucores': '50' },
  { 'nvidia.com/gpu': '1' },
  { 'nvidia.com/gpu': '2', 'nvidia.com/gpumem': '30000' },
];
const NODES = 8;

type Reservation = Parameters<Extender['view']['reserve']>[0];
type Event = { readonly node: V1Node } | { readonly reserve: Reservation } | { readonly release: string };

/** An extender fed events, and a fresh one built from the same events with nothing kept. */
class Recorded {
  readonly ext = new Extender(new MemoryApi(), { now: () => 0 });
  private readonly events: Event[] = [];

  record(e: Event): void {
    this.events.push(e);
    play(this.ext, e);
  }

  fresh(): Extender {
    const ext = new Extender(new MemoryApi(), { now: () => 0 });
    for (const e of this.events) play(ext, e);
    return ext;
  }
}

function play(ext: Extender, e: Event): void {
  if ('node' in e) ext.view.observeNode(e.node);
  else if ('reserve' in e) ext.view.reserve(e.reserve);
  else ext.view.release(e.release);
}

/** `pod` held on `node` as bind holds it, or null where it does not fit there now. */
function reservation(ext: Extender, pod: V1Pod, node: string): Reservation | null {
  const request = parsePodGpuRequest(pod);
  const value = request.ok ? request.value : null;
  const snapshot = ext.view.snapshot();
  const placed = value === null ? null : placePod(snapshot, node, value, placementRequests(value, false));
  if (value === null || placed === null || !placed.ok) return null;
  const decision: PodDecision = { v: 1, podUid: value.uid, node, decidedAtMs: 0, containers: containerDecisions(snapshot, value, placed.placements) };
  return { uid: value.uid, namespace: 'default', name: value.name, decision, placements: placementsOf(decision, 0, false) };
}

const opArb = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant('ask' as const), shape: fc.nat(SHAPES.length - 1), spread: fc.boolean() }) },
  // A list new each time (the kube-scheduler's window moving round the nodes): any of the nodes,
  // a CPU node, a name not of the cluster, duplicates; kept by node ordinal, not by table.
  { weight: 4, arbitrary: fc.record({ op: fc.constant('window' as const), shape: fc.nat(SHAPES.length - 1), spread: fc.boolean(), list: fc.array(fc.nat(NODES + 1), { maxLength: 12 }) }) },
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
    const judged = { asked: 0, byEngine: 0 };
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), (ops) => {
        run++;
        const cluster = new Recorded();
        const { ext } = cluster;
        const writer = new ReplyWriter();
        const names = Array.from({ length: NODES }, (_, k) => `n${k}`);
        names.push('cpu-only');
        // Small nodes, so that binds fill them and refusals (and their reasons) change.
        for (let k = 0; k < NODES; k++) cluster.record({ node: gpuNode(`n${k}`, 1 + (k % 3)) });
        const alive: string[] = [];
        for (const [k, o] of ops.entries()) {
          if (o.op === 'window') {
            const list = o.list.map((n) => (n < NODES ? `n${n}` : n === NODES ? 'cpu-only' : 'nowhere'));
            const pod = gpuPod(`w${run}-${k}`, SHAPES[o.shape] as Record<string, string>, o.spread ? { annotations: { 'hami.io/node-scheduler-policy': 'spread' } } : {});
            const answer = ext.filterAnswer({ Pod: pod as never, NodeNames: [...list] });
            const fresh = cluster.fresh();
            const want = fresh.filter({ Pod: pod as never, NodeNames: [...list] });
            expect(filterResultOf(answer)).toEqual(want);
            expect(JSON.parse(writer.filter(answer).bytes.toString('utf8'))).toEqual(want);
            const passed = want.NodeNames ?? [];
            expect(hostPrioritiesOf(ext.prioritizeAnswer({ Pod: pod as never, NodeNames: [...passed] }))).toEqual(fresh.prioritize({ Pod: pod as never, NodeNames: [...passed] }));
            // Another pod of the shape over a list of its own (not filter's): prioritize judges it.
            const other = gpuPod(`v${run}-${k}`, SHAPES[o.shape] as Record<string, string>, o.spread ? { annotations: { 'hami.io/node-scheduler-policy': 'spread' } } : {});
            const reversed = [...list].reverse();
            expect(hostPrioritiesOf(ext.prioritizeAnswer({ Pod: other as never, NodeNames: reversed }))).toEqual(fresh.prioritize({ Pod: other as never, NodeNames: [...reversed] }));
          } else if (o.op === 'ask') {
            const pod = gpuPod(`q${run}-${k}`, SHAPES[o.shape] as Record<string, string>, o.spread ? { annotations: { 'hami.io/node-scheduler-policy': 'spread' } } : {});
            // The list is sent anew each time (a copy), as each request's body is parsed anew.
            const answer = ext.filterAnswer({ Pod: pod as never, NodeNames: [...names] });
            if (answer.verdicts !== undefined) kept++;
            const fresh = cluster.fresh();
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
            const held = reservation(ext, gpuPod(`b${run}-${k}`, SHAPES[o.shape] as Record<string, string>), `n${o.node}`);
            if (held !== null) {
              cluster.record({ reserve: held });
              alive.push(held.uid);
            }
          } else if (o.op === 'leave') {
            if (alive.length > 0) cluster.record({ release: alive.splice(o.which % alive.length, 1)[0] as string });
          } else if (o.op === 'inventory') {
            cluster.record({ node: gpuNode(`n${o.node}`, o.gpus, { memoryMiB: o.small ? 40960 : 81920, ...(o.lost ? { lost: [0] } : {}) }) });
          } else if (o.op === 'bad') {
            cluster.record({ node: { metadata: { name: `n${o.node}`, annotations: { 'gpushare.io/node-gpus': '{"v":1,"gpus":"not a list"}' } } } });
          } else {
            cluster.record({ node: { metadata: { name: `n${o.node}` } } });
          }
        }
        judged.asked += ext.judged.asked;
        judged.byEngine += ext.judged.byEngine;
      }),
      { numRuns: 200 },
    );
    // The kept paths were taken, not only the fresh one: tables, and verdicts kept by ordinal.
    expect(kept).toBeGreaterThan(50);
    expect(judged.byEngine).toBeLessThan(judged.asked * 0.8);
  });

  it('a writer that missed more revisions than the table keeps compares every position', () => {
    const cluster = new Recorded();
    const { ext } = cluster;
    const writer = new ReplyWriter();
    const names = Array.from({ length: NODES }, (_, k) => `n${k}`);
    for (let k = 0; k < NODES; k++) cluster.record({ node: gpuNode(`n${k}`, 2) });
    const shape = SHAPES[0] as Record<string, string>;
    const ask = (k: number) => ext.filterAnswer({ Pod: gpuPod(`m-${k}`, shape) as never, NodeNames: [...names] });
    ask(0);
    const first = ask(1);
    expect(first.verdicts?.changedSince).toBeDefined();
    writer.filter(first);
    const written = first.verdicts?.revision ?? -1;
    expect(written).toBeGreaterThan(0);
    // 100 revisions unwritten (more than the 64 a table keeps): n0 changes before each ask
    // (its oldest pod leaves, a new one comes), full from the eighth on.
    const alive: string[] = [];
    for (let k = 2; k < 102; k++) {
      if (alive.length >= 8) cluster.record({ release: alive.shift() as string });
      const held = reservation(ext, gpuPod(`fill-${k}`, shape), 'n0');
      if (held !== null) {
        cluster.record({ reserve: held });
        alive.push(held.uid);
      }
      ask(k);
    }
    expect(first.verdicts?.changedSince?.(written)).toBeNull();
    const answer = ask(102);
    const want = cluster.fresh().filter({ Pod: gpuPod('m-102', shape) as never, NodeNames: [...names] });
    expect(want.NodeNames).not.toEqual(names); // verdicts did change in between
    expect(JSON.parse(writer.filter(answer).bytes.toString('utf8'))).toEqual(want);
  });

  it("prioritize's scores by position, scaled again only where they may have changed, for writers that missed some", () => {
    // Two writers of one extender (two route scopes, or one that missed calls another made):
    // each must write its own last scores forward, not another's. After each change to the
    // cluster, filter and prioritize are asked, and the answer is written by A, by B or by none.
    let incremental = 0;
    let writtenFromChanges = 0;
    fc.assert(
      fc.property(fc.array(fc.record({ node: fc.nat(NODES - 1), leave: fc.boolean(), shape: fc.nat(1), writer: fc.constantFrom('A', 'B', 'none') }), { minLength: 5, maxLength: 30 }), (steps) => {
        const cluster = new Recorded();
        const { ext } = cluster;
        const writers = { A: new ReplyWriter(), B: new ReplyWriter() };
        const names = Array.from({ length: NODES }, (_, k) => `n${k}`);
        for (let k = 0; k < NODES; k++) cluster.record({ node: gpuNode(`n${k}`, 4) });
        const alive: string[] = [];
        const served = { A: -1, B: -1 };
        steps.forEach((step, k) => {
          const shape = SHAPES[step.shape] as Record<string, string>;
          if (step.leave && alive.length > 0) cluster.record({ release: alive.shift() as string });
          else {
            const held = reservation(ext, gpuPod(`fill-${k}`, shape), `n${step.node}`);
            if (held !== null) {
              cluster.record({ reserve: held });
              alive.push(held.uid);
            }
          }
          const pod = gpuPod(`p-${k}`, shape);
          // Asked twice: the second time over the kept table.
          for (let again = 0; again < 2; again++) {
            const answer = ext.filterAnswer({ Pod: pod as never, NodeNames: [...names] });
            if (answer.verdicts === undefined) continue;
            const passed = answer.nodeNames ?? [];
            const ranked = ext.prioritizeAnswer({ Pod: pod as never, NodeNames: passed as string[] });
            const want = cluster.fresh().prioritize({ Pod: pod as never, NodeNames: [...passed] });
            expect(hostPrioritiesOf(ranked)).toEqual(want);
            const positions = ranked.positions;
            expect(positions).toBeDefined();
            if (positions?.changed != null) incremental++;
            if (step.writer === 'none') continue;
            if (positions?.changed != null && positions.from === served[step.writer]) writtenFromChanges++;
            expect(writers[step.writer].priorities(ranked).toString('utf8')).toBe(JSON.stringify(want));
            served[step.writer] = positions?.serial ?? -1;
          }
        });
      }),
      { numRuns: 100 },
    );
    // Both ways were taken: scores scaled again only where changed, and written from them.
    expect(incremental).toBeGreaterThan(100);
    expect(writtenFromChanges).toBeGreaterThan(50);
  });

  it("the routes' path over a kept table makes no refused lists; an answer's are made when read, from its own revision", () => {
    const cluster = new Recorded();
    const { ext } = cluster;
    const writer = new ReplyWriter();
    const names = Array.from({ length: NODES }, (_, k) => `n${k}`);
    for (let k = 0; k < NODES; k++) cluster.record({ node: gpuNode(`n${k}`, 1 + (k % 3)) });
    const shape = SHAPES[3] as Record<string, string>;
    const ask = (k: number) => ext.filterAnswer({ Pod: gpuPod(`r-${k}`, shape) as never, NodeNames: [...names] });
    ask(0);
    // The lists are made by a private method: spied on the prototype, as the routes' calls reach it.
    const made = vi.spyOn(VerdictTable.prototype as unknown as { makeRefused: () => unknown }, 'makeRefused');
    try {
      const alive: string[] = [];
      for (let k = 1; k <= 12; k++) {
        // Each round a node fills or empties, so verdicts and their reasons change.
        if (k % 3 === 0 && alive.length > 0) cluster.record({ release: alive.shift() as string });
        const held = reservation(ext, gpuPod(`fill-${k}`, shape), `n${k % NODES}`);
        if (held !== null) {
          cluster.record({ reserve: held });
          alive.push(held.uid);
        }
        const pod = gpuPod(`r-${k}`, shape);
        const answer = ext.filterAnswer({ Pod: pod as never, NodeNames: [...names] });
        expect(answer.verdicts).toBeDefined();
        // What the filter route does: the writer, then prioritize over the passed names.
        const bytes = writer.filter(answer).bytes.toString('utf8');
        const fresh = cluster.fresh();
        const want = fresh.filter({ Pod: pod as never, NodeNames: [...names] });
        expect(JSON.parse(bytes)).toEqual(want);
        const ranked = ext.prioritizeAnswer({ Pod: pod as never, NodeNames: answer.nodeNames as string[] });
        expect(JSON.parse(writer.priorities(ranked).toString('utf8'))).toEqual(fresh.prioritize({ Pod: pod as never, NodeNames: [...(want.NodeNames ?? [])] }));
      }
      expect(made).not.toHaveBeenCalled();
      // Read, the answer's refused lists are made once and equal a fresh extender's.
      const pod = gpuPod('r-read', shape);
      const answer = ext.filterAnswer({ Pod: pod as never, NodeNames: [...names] });
      expect(filterResultOf(answer)).toEqual(cluster.fresh().filter({ Pod: pod as never, NodeNames: [...names] }));
      expect(answer.failed).toBe(answer.failed);
      expect(made).toHaveBeenCalledTimes(1);
    } finally {
      made.mockRestore();
    }
    // An answer whose refused lists are first read after its table changed: a clear error, not another revision's lists.
    const stale = ask(100);
    const held = reservation(ext, gpuPod('fill-last', { 'nvidia.com/gpu': '1', 'nvidia.com/gpumem': '1024' }), 'n2');
    expect(held).not.toBeNull();
    cluster.record({ reserve: held as Reservation });
    ask(101);
    expect(() => stale.failed).toThrow(/read after its table changed/);
  });

  it('a refused node whose reason changes while it stays refused is written anew', () => {
    const cluster = new Recorded();
    const { ext } = cluster;
    const writer = new ReplyWriter();
    cluster.record({ node: gpuNode('n0', 3) });
    cluster.record({ node: gpuNode('n1', 8) });
    const names = ['n0', 'n1'];
    const ask = (k: number): { kept: boolean; failed: string | undefined } => {
      const pod = gpuPod(`two-${k}`, { 'nvidia.com/gpu': '2' });
      const answer = ext.filterAnswer({ Pod: pod as never, NodeNames: [...names] });
      const want = cluster.fresh().filter({ Pod: pod as never, NodeNames: [...names] });
      expect(JSON.parse(writer.filter(answer).bytes.toString('utf8'))).toEqual(want);
      return { kept: answer.verdicts !== undefined, failed: want.FailedNodes['n0'] };
    };
    ask(0);
    const seen = new Set<string | undefined>();
    for (let k = 1; k <= 3; k++) {
      const held = reservation(ext, gpuPod(`whole-${k}`, { 'nvidia.com/gpu': '1' }), 'n0');
      if (held !== null) cluster.record({ reserve: held });
      const { kept, failed } = ask(k);
      expect(kept).toBe(true);
      seen.add(failed);
    }
    // Passed, then refused for one reason, then for another.
    expect(seen.size).toBe(3);
  });
});
