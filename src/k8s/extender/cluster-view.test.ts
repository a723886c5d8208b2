import { describe, expect, it } from 'vitest';
import { MemoryApi, gpuNode, gpuPod } from '../../../test/k8s/extender-memory-api.js';
import { GPUSHARE_ANNOTATION } from '../hami/names.js';
import { encodeSuspension } from '../hami/suspension.js';
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
