import { describe, expect, it } from 'vitest';
import type { NodeGpu } from '../hami/node-gpus.js';
import { planSuspensions, nodePodOf, type NodePod } from './suspend-plan.js';

const NODE = 'n1';
const MIB = 2 ** 20;
const gpus: NodeGpu[] = [0, 1].map((index) => ({ index, uuid: `GPU-${index}`, model: 'H100-80GB', name: 'NVIDIA H100 80GB HBM3', memoryMiB: 80_000, health: 'ok', numaNode: 0 }));

function pod(name: string, over: Partial<NodePod> & { mib?: number; gpu?: number } = {}): NodePod {
  const uid = `uid-${name}`;
  const { mib = 30_000, gpu = 0, ...rest } = over;
  return {
    uid, namespace: 'ml', name, priority: 0, createdMs: 1000, bound: true, ended: false,
    decision: { v: 1, podUid: uid, node: NODE, decidedAtMs: 1, containers: [{ name: 'main', index: 0, taskPriority: 1, exclusive: false, gpus: [{ uuid: `GPU-${gpu}`, index: gpu, memoryBytes: mib * MIB, coresPercent: 0, computeMilli: 0 }] }] },
    request: null, suspension: null,
    ...rest,
  };
}
const suspendedFor = (preemptor: string) => ({ suspension: { v: 1 as const, state: 'suspended' as const, preemptor, atMs: 1 } });
const names = (actions: ReturnType<typeof planSuspensions>) => actions.map((a) => `${a.kind} ${a.pod.name}`);

describe('planSuspensions', () => {
  it('suspends a bound pod with a request and no answer; not one already answered, ended, or only nominated', () => {
    const request = { v: 1 as const, preemptor: 'uid-p', node: NODE, atMs: 1 };
    const actions = planSuspensions(NODE, gpus, [
      pod('asked', { request }),
      pod('answered', { request, suspension: { v: 1, state: 'failed', preemptor: 'uid-p', atMs: 2 } }),
      pod('ended', { request, ended: true }),
      pod('nominated', { request, bound: false }),
    ]);
    expect(actions).toEqual([{ kind: 'suspend', pod: expect.objectContaining({ name: 'asked' }), preemptor: 'uid-p' }]);
  });

  it('resumes by priority, then age, while the room lasts; the first that does not fit stops those behind it', () => {
    const actions = planSuspensions(NODE, gpus, [
      pod('running', { mib: 20_000 }),
      pod('old-low', { mib: 30_000, createdMs: 1, ...suspendedFor('gone') }),
      pod('new-high', { mib: 30_000, createdMs: 9, priority: 100, ...suspendedFor('gone') }),
      pod('big', { mib: 40_000, createdMs: 5, ...suspendedFor('gone') }),
      pod('small-after', { mib: 1_000, createdMs: 7, ...suspendedFor('gone') }),
    ]);
    // 80,000 - 20,000 running: new-high (30,000) then old-low (30,000) fit; big (40,000) does not, and small-after waits behind it.
    expect(names(actions)).toEqual(['resume new-high', 'resume old-low']);
  });

  it('counts room per GPU', () => {
    const actions = planSuspensions(NODE, gpus, [pod('a', { mib: 70_000, gpu: 0 }), pod('b', { mib: 70_000, gpu: 1, ...suspendedFor('x') })]);
    expect(names(actions)).toEqual(['resume b']);
    const none = planSuspensions(NODE, gpus, [pod('a', { mib: 70_000, gpu: 1 }), pod('b', { mib: 70_000, gpu: 1, ...suspendedFor('x') })]);
    expect(none).toEqual([]);
  });

  it('never resumes while its preemptor is nominated here and not yet bound; once it ends, does', () => {
    const victim = pod('victim', { mib: 60_000, ...suspendedFor('uid-p') });
    const pending = pod('p', { bound: false, decision: null });
    expect(planSuspensions(NODE, gpus, [victim, pending])).toEqual([]);
    const running = pod('p', { mib: 60_000 });
    expect(planSuspensions(NODE, gpus, [victim, running])).toEqual([]);
    expect(names(planSuspensions(NODE, gpus, [victim, { ...running, ended: true }]))).toEqual(['resume victim']);
  });

  it('a GPU lost since keeps its pod suspended; a pod holding no decision resumes once its preemptor is gone from the node', () => {
    const lost = gpus.map((g) => (g.index === 0 ? { ...g, health: 'lost' as const } : g));
    expect(planSuspensions(NODE, lost, [pod('v', suspendedFor('x'))])).toEqual([]);
    const bare = pod('bare', { decision: null, ...suspendedFor('uid-p') });
    expect(planSuspensions(NODE, gpus, [bare, pod('p')])).toEqual([]);
    expect(names(planSuspensions(NODE, gpus, [bare]))).toEqual(['resume bare']);
  });
});

describe('nodePodOf', () => {
  it('reads the annotations it acts on, and trusts no decision or request made for another pod or node', () => {
    const view = nodePodOf({
      metadata: { uid: 'u1', name: 'a', namespace: 'ml', creationTimestamp: new Date('2026-12-06T10:00:00Z'), annotations: {
        'gpushare.io/decision': JSON.stringify({ v: 1, podUid: 'u2', node: NODE, decidedAtMs: 1, containers: [{ name: 'm', index: 0, taskPriority: 1, exclusive: false, gpus: [{ uuid: 'GPU-0', index: 0, memoryBytes: 1, coresPercent: 0, computeMilli: 0 }] }] }),
        'gpushare.io/suspend-request': JSON.stringify({ v: 1, preemptor: 'p', node: 'other', atMs: 1 }),
        'gpushare.io/suspended': 'not json',
      } },
      spec: { nodeName: NODE, priority: 7, containers: [] },
      status: { phase: 'Running' },
    }, NODE);
    expect(view).toEqual({ uid: 'u1', namespace: 'ml', name: 'a', priority: 7, createdMs: Date.parse('2026-12-06T10:00:00Z'), bound: true, ended: false, decision: null, request: null, suspension: null });
    expect(nodePodOf({ metadata: { name: 'no-uid' } }, NODE)).toBeNull();
    expect(nodePodOf({ metadata: { uid: 'u', deletionTimestamp: new Date() }, spec: { nodeName: 'x', containers: [] } }, NODE)).toMatchObject({ bound: false, ended: true });
  });
});
