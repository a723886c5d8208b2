import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { podJson, type PodFixture } from '../../../test/k8s/device-plugin-fixtures.js';
import { GPUSHARE_ANNOTATION } from '../hami/names.js';
import { containerKey, memoDecoder, pendingContainer, type PendingContainer } from './pending.js';
import { PreparedAnswers } from './prepared.js';
import { containerResponse, type PodRef } from './response.js';
import type { ContainerDecision } from '../hami/decision.js';

type PodJson = { metadata: { annotations: Record<string, string>; deletionTimestamp?: string }; status: Record<string, unknown> };
const pod = (f: Partial<PodFixture> & { n: number }, change: (p: PodJson) => void = () => undefined): V1Pod => {
  const json = podJson({ name: `p-${f.n}`, uid: `u-${f.n}`, decidedAtMs: 1000 + f.n, containers: [{ gpus: 1, memoryMiB: 1000 + f.n, decided: ['GPU-a'] }], ...f }) as unknown as PodJson;
  change(json);
  return json as unknown as V1Pod;
};

const host = (uid: string, index: number) => ({ library: '/s/lib/libgpushare.so', preload: '/s/ld.so.preload', claimDir: `/s/containers/${uid}_${index}`, computeDir: '/s/compute' });
const node = (uuid: string): string => `/dev/nvidia${uuid === 'GPU-a' ? 0 : 1}`;
/** The answer as Allocate makes it at call time (plugin.ts's answerOf). */
const atCallTime = (p: PodRef, c: ContainerDecision) => containerResponse(p, c, host(p.uid, c.index), node);

/** PreparedAnswers over a fake file system: the set of directories, and a ledger of served keys. */
function setup(over: { failDir?: string } = {}) {
  const dirs = new Set<string>();
  const served = new Set<string>();
  const made: string[] = [];
  const decode = memoDecoder();
  const errors: string[] = [];
  const ready = new PreparedAnswers({
    node: 'node-a', decode, served: (k) => served.has(k), hasGpu: (u) => u === 'GPU-a' || u === 'GPU-b', answer: atCallTime,
    makeDir: (uid, i) => {
      if (`${uid}_${i}` === over.failDir) throw new Error('EACCES');
      made.push(`${uid}_${i}`);
      dirs.add(`${uid}_${i}`);
    },
    dropDir: (uid, i) => dirs.delete(`${uid}_${i}`),
    onError: (uid, i, e) => errors.push(`${uid}_${i}: ${e.message}`),
  });
  /** What Allocate chooses among `pods` (pending.ts, with the same memo). */
  const choose = (pods: V1Pod[], count = 1): PendingContainer => {
    const c = pendingContainer(pods, 'node-a', count, (k) => served.has(k), decode);
    if (c.found === null) throw new Error('no pending container');
    return c.found;
  };
  return { ready, dirs, served, made, errors, choose };
}

describe('PreparedAnswers: Allocate\'s answers made from the watch', () => {
  it('makes each unserved container\'s directory and answer once, identical to the answer made at call time', () => {
    const s = setup();
    const p = pod({ n: 1, containers: [{ gpus: 1, decided: ['GPU-b'], cores: 20 }, { gpus: 2, decided: ['GPU-a', 'GPU-b'] }] });
    s.ready.update(p);
    s.ready.update(p); // the same pod again (a resync, our own patch's event): nothing made twice
    expect(s.made).toEqual(['u-1_0', 'u-1_1']);
    expect(s.ready.keys()).toEqual(['u-1#0', 'u-1#1']);
    const first = s.choose([p]);
    const answer = s.ready.take(first);
    expect(answer).toBeDefined();
    expect(answer).toEqual(atCallTime(first.pod, first.container));
    expect(s.ready.take(first)).toBeUndefined(); // taken once: the ledger has it now
    s.served.add(containerKey('u-1', 0));
    const second = s.choose([p], 2);
    expect(s.ready.take(second)).toEqual(atCallTime(second.pod, second.container));
    expect(s.ready.keys()).toEqual([]);
  });

  it('a pod whose decision changes is prepared again, and an answer of the old decision is never given for the new one', () => {
    const s = setup();
    const before = pod({ n: 1, containers: [{ gpus: 1, memoryMiB: 1000, decided: ['GPU-a'] }] });
    s.ready.update(before);
    const after = pod({ n: 1, decidedAtMs: 5000, containers: [{ gpus: 1, memoryMiB: 2000, decided: ['GPU-b'] }] });
    const chosen = s.choose([after]);
    // The watch has not delivered the change yet: the answer held was made from another decision.
    expect(s.ready.take(chosen)).toBeUndefined();
    // Delivered: made again from the new decision (the directory is the same: made once).
    s.ready.update(before);
    s.ready.update(after);
    const answer = s.ready.take(chosen);
    expect(answer?.envs['NVIDIA_VISIBLE_DEVICES']).toBe('GPU-b');
    expect(answer).toEqual(atCallTime(chosen.pod, chosen.container));
    expect(s.made).toEqual(['u-1_0', 'u-1_0']); // made again after the stale take released it
  });

  it('drops the answers and removes the directories no Allocate took when the pod is deleted or stops waiting', () => {
    const s = setup();
    for (const n of [1, 2, 3, 4]) s.ready.update(pod({ n }));
    expect([...s.dirs].sort()).toEqual(['u-1_0', 'u-2_0', 'u-3_0', 'u-4_0']);
    s.ready.remove('u-1'); // deleted
    s.ready.update(pod({ n: 2 }, (j) => { j.status = { phase: 'Running' }; }));
    s.ready.update(pod({ n: 3 }, (j) => { j.metadata.deletionTimestamp = '2026-12-08T00:00:00Z'; }));
    s.ready.update(pod({ n: 4, decided: false }));
    expect([...s.dirs]).toEqual([]);
    expect(s.ready.keys()).toEqual([]);
  });

  it('keeps a served container\'s directory (the ledger\'s now) when its pod goes', () => {
    const s = setup();
    const p = pod({ n: 1 });
    s.ready.update(p);
    expect(s.ready.take(s.choose([p]))).toBeDefined();
    s.served.add(containerKey('u-1', 0));
    s.ready.update(p);
    s.ready.remove('u-1');
    expect([...s.dirs]).toEqual(['u-1_0']);
  });

  it('makes nothing for a pod Allocate would not serve: another node, another pod\'s or a malformed decision, a GPU not here, served containers', () => {
    const s = setup();
    s.ready.update(pod({ n: 1, node: 'node-b' }));
    s.ready.update(pod({ n: 2 }, (j) => { j.metadata.annotations[GPUSHARE_ANNOTATION.decision] = '{"v":1,'; }));
    s.ready.update(pod({ n: 3 }, (j) => { j.metadata.annotations[GPUSHARE_ANNOTATION.decision] = (pod({ n: 9 }) as unknown as PodJson).metadata.annotations[GPUSHARE_ANNOTATION.decision]!; }));
    s.ready.update(pod({ n: 4, containers: [{ gpus: 1, decided: ['GPU-elsewhere'] }] }));
    s.ready.update(pod({ n: 5 }, (j) => {
      j.metadata.annotations[GPUSHARE_ANNOTATION.allocated] = JSON.stringify({ v: 1, node: 'node-a', containers: [{ index: 0, name: 'c0', gpus: ['GPU-a'], deviceIds: [], atMs: 1 }] });
    }));
    s.served.add(containerKey('u-6', 0));
    s.ready.update(pod({ n: 6 }));
    expect(s.made).toEqual([]);
    expect(s.ready.keys()).toEqual([]);
  });

  it('a directory that cannot be made ahead: no answer held (Allocate makes both at call time), the error reported', () => {
    const s = setup({ failDir: 'u-1_0' });
    const p = pod({ n: 1 });
    s.ready.update(p);
    expect(s.errors).toEqual(['u-1_0: EACCES']);
    expect(s.ready.take(s.choose([p]))).toBeUndefined();
  });
});
