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

  it('breaks a tie of decision time by creation, then uid; reads the annotation and started containers only past the ledger', () => {
    const at = (n: number, created: string, uid: string): V1Pod => pod({ n, uid, decidedAtMs: 5000 }, (p) => { (p.metadata as Record<string, unknown>)['creationTimestamp'] = created; });
    expect(pick([at(1, '2026-12-07T10:00:02Z', 'u-a'), at(2, '2026-12-07T10:00:01Z', 'u-b')])).toBe('p-2#0');
    expect(pick([at(1, '2026-12-07T10:00:01Z', 'u-b'), at(2, '2026-12-07T10:00:01Z', 'u-a')])).toBe('p-2#0');
    expect(pick([at(2, '2026-12-07T10:00:01Z', 'u-a'), at(1, '2026-12-07T10:00:01Z', 'u-b')])).toBe('p-2#0');
    const two = { containers: [{ gpus: 1, decided: ['GPU-a'] }, { gpus: 1, decided: ['GPU-b'] }] };
    const annotated = pod({ n: 1, ...two }, (p) => {
      p.metadata.annotations[GPUSHARE_ANNOTATION.allocated] = JSON.stringify({ v: 1, node: 'node-a', containers: [{ index: 0, name: 'c0', gpus: ['GPU-a'], deviceIds: [], atMs: 1 }] });
    });
    expect(pick([annotated])).toBe('p-1#1');
    expect(pick([pod({ n: 1, ...two }, (p) => { p.status['containerStatuses'] = [{ name: 'c0', state: { terminated: {} } }]; })])).toBe('p-1#1');
    // A malformed annotation records nothing: the ledger decides.
    const malformed = pod({ n: 1, ...two }, (p) => { p.metadata.annotations[GPUSHARE_ANNOTATION.allocated] = '{'; });
    expect(pick([malformed])).toBe('p-1#0');
    expect(pick([malformed], 1, (k) => k === containerKey('u-1', 0))).toBe('p-1#1');
  });

  it('answers as collecting every candidate and sorting them would, over random nodes', () => {
    let seed = 7;
    const rand = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    for (let trial = 0; trial < 300; trial++) {
      const pods = Array.from({ length: 1 + rand(12) }, (_, i) => {
        const containers = Array.from({ length: 1 + rand(3) }, () => ({ gpus: 1 + rand(2), decided: ['GPU-a', 'GPU-b'].slice(0, 1 + rand(2)) }));
        return pod({ n: i, uid: `u-${rand(50)}-${i}`, decidedAtMs: 1000 + rand(3), containers }, (p) => {
          (p.metadata as Record<string, unknown>)['creationTimestamp'] = `2026-12-07T10:00:0${rand(3)}Z`;
          if (rand(4) === 0) p.metadata.annotations[GPUSHARE_ANNOTATION.allocated] = JSON.stringify({ v: 1, node: 'node-a', containers: [{ index: 0, name: 'c0', gpus: ['GPU-a'], deviceIds: [], atMs: 1 }] });
          if (rand(5) === 0) p.status['containerStatuses'] = [{ name: `c${rand(2)}`, state: { running: {} } }];
        });
      });
      const servedKeys = new Set(pods.filter(() => rand(3) === 0).map((p) => containerKey(p.metadata?.uid ?? '', rand(2))));
      for (const count of [1, 2]) {
        const got = pendingContainer(pods, 'node-a', count, (k) => servedKeys.has(k));
        const want = reference(pods, count, (k) => servedKeys.has(k));
        expect(got.found === null ? null : `${got.found.pod.uid}#${got.found.container.index}`).toBe(want);
      }
    }
  });
});

/** The choice as it was made before session 24: every candidate collected, then sorted. */
function reference(pods: V1Pod[], count: number, served: (key: string) => boolean): string | null {
  const candidates: { key: string; at: number; created: number; uid: string }[] = [];
  for (const p of pods) {
    const uid = p.metadata?.uid ?? '';
    const decision = JSON.parse(p.metadata?.annotations?.[GPUSHARE_ANNOTATION.decision] ?? 'null') as { decidedAtMs: number; containers: { index: number; name: string; gpus: unknown[] }[] };
    const allocatedText = p.metadata?.annotations?.[GPUSHARE_ANNOTATION.allocated];
    const annotated = new Set(allocatedText === undefined ? [] : (JSON.parse(allocatedText) as { containers: { index: number }[] }).containers.map((c) => c.index));
    const started = new Set(((p.status as { containerStatuses?: { name: string }[] } | undefined)?.containerStatuses ?? []).map((s) => s.name));
    const next = [...decision.containers].sort((a, b) => a.index - b.index).find((c) => !served(containerKey(uid, c.index)) && !annotated.has(c.index) && !started.has(c.name));
    if (next === undefined) continue;
    const asked = Number(p.spec?.containers[next.index]?.resources?.limits?.['nvidia.com/gpu']);
    if (next.gpus.length !== count || asked !== count) continue;
    const created = Date.parse(String(p.metadata?.creationTimestamp ?? ''));
    candidates.push({ key: `${uid}#${next.index}`, at: decision.decidedAtMs, created: Number.isNaN(created) ? 0 : created, uid });
  }
  candidates.sort((a, b) => a.at - b.at || a.created - b.created || (a.uid < b.uid ? -1 : 1));
  return candidates[0]?.key ?? null;
}
