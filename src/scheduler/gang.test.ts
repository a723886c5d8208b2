import { describe, expect, it } from 'vitest';
import { scheduleGang } from './gang.js';
import { planPreemption } from './preempt.js';
import { policy } from './policy.js';
import { createPrng } from './prng.js';
import { buildSnapshot } from './snapshot.js';
import { node, request } from './testing/fixtures.js';
import type { Placement } from './types.js';

const opts = () => ({ policy: policy('binpack'), rng: createPrng(1) });

function held(id: string, gpuIndex: number, priority: number, extra: Partial<Placement> = {}): Placement {
  return { id, node: 'a', gpus: [{ gpu: gpuIndex, memoryBytes: 80 * 2 ** 30, computeMilli: 1000, mig: null }], cpuMilli: 0, memoryBytes: 0, priority, tenant: null, exclusive: false, suspendable: false, gang: null, ...extra };
}

describe('gangs', () => {
  it('places all members or none', () => {
    const snap = buildSnapshot([node('a', 2), node('b', 1)]);
    const ok = scheduleGang(snap, [request({ gpus: 1 }, { id: 'w1' }), request({ gpus: 2 }, { id: 'w0' })], opts());
    expect(ok.status).toBe('ok');
    if (ok.status === 'ok') expect(ok.placements.map((p) => p.id)).toEqual(['w0', 'w1']);
    const no = scheduleGang(snap, [1, 2, 3, 4].map((i) => request({ gpus: 1 }, { id: `w${i}` })), opts());
    expect(no).toMatchObject({ status: 'unschedulable', failed: 'w4' });
  });
});

describe('preemption planner', () => {
  const high = request({ gpus: 1, priority: 900 });
  it('takes the fewest lower-priority slices, suspending where it can', () => {
    const snap = buildSnapshot([node('a', 2)], [held('low-kill', 0, 100), held('low-suspend', 1, 100, { suspendable: true })]);
    const plan = planPreemption(snap, high, opts());
    expect(plan?.actions.map((a) => [a.placement.id, a.action])).toEqual([['low-suspend', 'suspend']]);
    expect(plan?.placement.gpus[0]?.gpu).toBe(1);
  });
  it('never touches equal or higher priority, and says so with null', () => {
    const snap = buildSnapshot([node('a', 1)], [held('peer', 0, 900)]);
    expect(planPreemption(snap, high, opts())).toBeNull();
  });
  it('takes a whole gang when it takes one member', () => {
    const snap = buildSnapshot([node('a', 2)], [held('g1', 0, 100, { gang: 'g' }), held('g2', 1, 100, { gang: 'g' })]);
    const plan = planPreemption(snap, request({ gpus: 1, priority: 900 }), opts());
    expect(plan?.actions.map((a) => a.placement.id).sort()).toEqual(['g1', 'g2']);
  });
  it('prefers the node needing fewer victims', () => {
    const snap = buildSnapshot(
      [node('a', 1), node('b', 2)],
      [held('a1', 0, 100), { ...held('b1', 0, 100), node: 'b', gpus: [{ gpu: 0, memoryBytes: 40 * 2 ** 30, computeMilli: 500, mig: null }] }, { ...held('b2', 0, 100), node: 'b', gpus: [{ gpu: 0, memoryBytes: 40 * 2 ** 30, computeMilli: 500, mig: null }] }, { ...held('b3', 1, 100), node: 'b' }],
    );
    const plan = planPreemption(snap, high, opts());
    expect(plan?.node).toBe('a');
    expect(plan?.actions.length).toBe(1);
  });
});
