import { describe, expect, it } from 'vitest';
import { MemoryApi, gpuNode, gpuPod } from '../../../test/k8s/extender-memory-api.js';
import { GPUSHARE_ANNOTATION } from '../hami/names.js';
import { encodeSuspension } from '../hami/suspension.js';
import { encodeDecision } from '../hami/decision.js';
import { Extender } from './extender.js';

const NOW = 1_796_000_000_000;

describe('cluster view: a suspended pod holds no room', () => {
  it('frees its slices while gpushare.io/suspended says suspended, and holds them again once it is gone', async () => {
    const api = new MemoryApi();
    const ext = new Extender(api, { now: () => NOW });
    ext.view.observeNode(gpuNode('n1', 1));
    api.add(gpuPod('batch', { 'nvidia.com/gpumem': '60000' }));
    expect((await ext.bind({ PodName: 'batch', PodNamespace: 'default', PodUID: 'uid-batch', Node: 'n1' })).Error).toBe('');
    const bound = await api.getPod({ namespace: 'default', name: 'batch' });
    ext.view.observePod(bound);
    const big = gpuPod('big', { 'nvidia.com/gpumem': '60000' });
    expect(ext.filter({ Pod: big as never, NodeNames: ['n1'] }).NodeNames).toEqual([]);

    const annotate = (value: string | null) => ({ ...bound, metadata: { ...bound.metadata, annotations: { ...bound.metadata?.annotations, ...(value === null ? {} : { [GPUSHARE_ANNOTATION.suspended]: value }) } } });
    ext.view.observePod(annotate(encodeSuspension({ v: 1, state: 'suspended', preemptor: 'uid-big', atMs: NOW })));
    expect(ext.filter({ Pod: big as never, NodeNames: ['n1'] }).NodeNames).toEqual(['n1']);
    // A failed suspension (the agent evicts instead) still holds the room until the pod goes.
    ext.view.observePod(annotate(encodeSuspension({ v: 1, state: 'failed', preemptor: 'uid-big', atMs: NOW, reason: 'no CUDA process' })));
    expect(ext.filter({ Pod: big as never, NodeNames: ['n1'] }).NodeNames).toEqual([]);
    ext.view.observePod(annotate(encodeSuspension({ v: 1, state: 'suspended', preemptor: 'uid-big', atMs: NOW })));
    ext.view.observePod(annotate(null)); // resumed: the annotation removed
    expect(ext.filter({ Pod: big as never, NodeNames: ['n1'] }).NodeNames).toEqual([]);
  });
});

describe('cluster view: the nodes changed since a snapshot', () => {
  const MIB = 2 ** 20;
  const bound = (uid: string, node: string) => ({
    metadata: { uid, name: uid, namespace: 'default', annotations: { [GPUSHARE_ANNOTATION.decision]: encodeDecision({ v: 1, podUid: uid, node, decidedAtMs: 0, containers: [{ name: 'main', index: 0, taskPriority: 1, exclusive: false, gpus: [{ uuid: `GPU-${node}-0`, index: 0, memoryBytes: 1024 * MIB, coresPercent: 10, computeMilli: 100 }] }] }) } },
    spec: { nodeName: node, containers: [] },
    status: { phase: 'Running' },
  });

  it('lists exactly the nodes whose state object changed, and null where it cannot say', () => {
    const ext = new Extender(new MemoryApi(), { now: () => NOW });
    for (let n = 0; n < 4; n++) ext.view.observeNode(gpuNode(`n${n}`, 1));
    const s0 = ext.view.snapshot();
    const seq0 = ext.view.snapshotSeq;
    expect(ext.view.changedSince(seq0)).toEqual([]);
    ext.view.observePod(bound('a', 'n1'));
    ext.view.observePod(bound('b', 'n3'));
    const s1 = ext.view.snapshot();
    const changed = ext.view.changedSince(seq0)?.sort() ?? null;
    expect(changed).toEqual([1, 3].map((k) => s1.nodeByName.get(`n${k}`)).sort());
    // The claim: every node whose state is another object is listed.
    for (let i = 0; i < s1.nodes.length; i++) if (s1.nodes[i] !== s0.nodes[i]) expect(changed).toContain(i);
    const seq1 = ext.view.snapshotSeq;
    ext.view.observePod({ metadata: { uid: 'a' } }, true);
    ext.view.snapshot();
    expect(ext.view.changedSince(seq1)).toEqual([s1.nodeByName.get('n1')]);
    expect(ext.view.changedSince(seq0)?.length).toBe(3); // n1 twice, n3 once
    // A node added remakes the index: earlier snapshots cannot be compared position by position.
    ext.view.observeNode(gpuNode('n4', 1));
    ext.view.snapshot();
    expect(ext.view.changedSince(seq1)).toBeNull();
    // The log keeps the last 256 snapshots: older ones are answered null.
    const seq2 = ext.view.snapshotSeq;
    for (let k = 0; k < 300; k++) {
      ext.view.observePod(bound(`p${k}`, 'n0'));
      ext.view.snapshot();
    }
    expect(ext.view.changedSince(seq2)).toBeNull();
    expect(ext.view.changedSince(ext.view.snapshotSeq - 10)?.length).toBe(10);
  });
});
