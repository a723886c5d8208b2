/** The preemption planner beyond the basics in gang.test.ts: minimality, priorities, quotas, MIG-free GPUs. */
import { describe, expect, it } from 'vitest';
import { planPreemption } from './preempt.js';
import { policy } from './policy.js';
import { createPrng } from './prng.js';
import { buildSnapshot } from './snapshot.js';
import { GIB, node, request, share } from './testing/fixtures.js';
import type { Placement } from './types.js';

const opts = () => ({ policy: policy('bestfit'), rng: createPrng(1) });

function held(id: string, gpu: number, milli: number, priority: number, extra: Partial<Placement> = {}): Placement {
  return {
    id, node: 'a', gpus: [{ gpu, memoryBytes: (milli / 1000) * 80 * GIB, computeMilli: milli, mig: null }],
    cpuMilli: 0, memoryBytes: 0, priority, tenant: null, exclusive: false, suspendable: false, gang: null, ...extra,
  };
}

describe('preemption planner', () => {
  it('returns no victims needlessly: a request that fits already gets an empty plan', () => {
    const snap = buildSnapshot([node('a', 1)], [held('x', 0, 250, 100)]);
    const plan = planPreemption(snap, share(0.5, { priority: 900 }), opts());
    expect(plan?.actions).toEqual([]);
  });
  it('drops a victim the fit turned out not to need (the minimal set, not the first that works)', () => {
    // GPU 0 holds 0.25 (prio 100) and 0.5 (prio 200): a 0.5 share needs only the 0.5 gone,
    // though the cheaper-first order tries the 0.25 (lower priority) first.
    const snap = buildSnapshot([node('a', 1)], [held('small', 0, 250, 100), held('half', 0, 500, 200)]);
    const plan = planPreemption(snap, share(0.75, { priority: 900 }), opts());
    expect(plan?.actions.map((a) => a.placement.id)).toEqual(['half']);
  });
  it('among equal counts, takes the lower priority', () => {
    const snap = buildSnapshot([node('a', 2)], [held('p300', 0, 1000, 300), held('p100', 1, 1000, 100)]);
    const plan = planPreemption(snap, request({ gpus: 1, priority: 900 }), opts());
    expect(plan?.actions.map((a) => a.placement.id)).toEqual(['p100']);
    expect(plan?.placement.gpus[0]?.gpu).toBe(1);
  });
  it('counts the quota the victims give back', () => {
    const quotas = new Map([['t', { gpus: 1 }]]);
    const snap = buildSnapshot([node('a', 2)], [held('mine', 0, 1000, 100, { tenant: 't' })], quotas);
    // Admission refuses outright (quota full); the planner's per-node view frees the tenant's own slice.
    const plan = planPreemption(snap, request({ gpus: 1, priority: 900 }, { tenant: 't' }), opts());
    expect(plan?.actions.map((a) => a.placement.id)).toEqual(['mine']);
  });
  it('null when even every lower-priority slice would not make room', () => {
    const snap = buildSnapshot([node('a', 1)], [held('low', 0, 500, 100), held('high', 0, 500, 950)]);
    expect(planPreemption(snap, request({ gpus: 1, priority: 900 }), opts())).toBeNull();
  });
});
