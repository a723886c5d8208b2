import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { podJson, type PodFixture } from '../../../test/k8s/device-plugin-fixtures.js';
import { GPUSHARE_ANNOTATION } from '../hami/names.js';
import { containerKey, describeNoPending, pendingContainer } from './pending.js';

type PodJson = { metadata: { annotations: Record<string, string>; deletionTimestamp?: string }; status: Record<string, unknown> };
const pod = (f: Partial<PodFixture> & { n: number }, change: (p: PodJson) => void = () => undefined): V1Pod => {
  const json = podJson({ name: `p-${f.n}`, uid: `u-${f.n}`, decidedAtMs: 1000 + f.n, containers: [{ gpus: 1, decided: ['GPU-a'] }], ...f }) as unknown as PodJson;
  change(json);
  return json as unknown as V1Pod;
};
const none = (): boolean => false;
const pick = (pods: V1Pod[], count = 1, served: (k: string) => boolean = none): string | null => {
  const c = pendingContainer(pods, 'node-a', count, served);
  return c.found === null ? null : `${c.found.pod.name}#${c.found.container.index}`;
};

describe('pendingContainer', () => {
  it('takes the oldest decision first, then the next container of a pod', () => {
    const pods = [pod({ n: 2 }), pod({ n: 1, containers: [{ gpus: 1, decided: ['GPU-a'] }, { gpus: 1, decided: ['GPU-b'] }] })];
    expect(pick(pods)).toBe('p-1#0');
    expect(pick(pods, 1, (k) => k === containerKey('u-1', 0))).toBe('p-1#1');
    expect(pick(pods, 1, (k) => k.startsWith('u-1'))).toBe('p-2#0');
  });

  it('passes over pods that are not pending for this node: other node, running, deleting, served by annotation', () => {
    expect(pick([pod({ n: 1, node: 'node-b' })])).toBeNull();
    expect(pick([pod({ n: 1 }, (p) => { p.status = { phase: 'Running' }; })])).toBeNull();
    expect(pick([pod({ n: 1 }, (p) => { p.metadata.deletionTimestamp = '2026-12-06T10:00:00Z'; })])).toBeNull();
    expect(pick([pod({ n: 1 }, (p) => {
      p.metadata.annotations[GPUSHARE_ANNOTATION.allocated] = JSON.stringify({ v: 1, node: 'node-a', containers: [{ index: 0, name: 'c0', gpus: ['GPU-a'], deviceIds: [], atMs: 1 }] });
    })])).toBeNull();
    expect(pick([pod({ n: 1 }, (p) => { p.status['containerStatuses'] = [{ name: 'c0', state: { running: {} } }]; })])).toBeNull();
  });

  it('matches the count the kubelet allocates, and says why each pod was passed over', () => {
    const pods = [pod({ n: 1, containers: [{ gpus: 2, decided: ['GPU-a', 'GPU-b'] }] }), pod({ n: 2, decided: false })];
    expect(pick(pods, 2)).toBe('p-1#0');
    const c = pendingContainer(pods, 'node-a', 1, none);
    expect(c.found).toBeNull();
    const text = c.found === null ? describeNoPending('node-a', 1, c.passed) : '';
    expect(text).toMatch(/ml\/p-1: its next container "c0" was given 2 GPU\(s\) and asks for 2 nvidia.com\/gpu; the kubelet is allocating 1/);
    expect(text).toMatch(/ml\/p-2: has no gpushare.io\/decision annotation/);
  });
});
