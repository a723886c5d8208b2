import type { V1ResourceSlice } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { DRIVER_FACTS, h100 } from '../../../test/k8s/gpus.js';
import { planSlices } from './publisher-plan.js';
import { buildResourceSlices, layoutConfig } from './slices.js';

const layout = layoutConfig({ layout: 'fixed' });

function wanted(gpus = 8): V1ResourceSlice[] {
  return buildResourceSlices({ nodeName: 'n', inventory: { gpus: Array.from({ length: gpus }, (_, i) => h100(i)), driver: DRIVER_FACTS }, layout, generation: 0 });
}

/** As the server stores them: a resourceVersion each, at `generation`. */
function stored(slices: V1ResourceSlice[], generation: number): V1ResourceSlice[] {
  return slices.map((s, i) => ({ ...s, metadata: { ...s.metadata, resourceVersion: String(100 + i), uid: `u${i}` }, spec: { ...s.spec, pool: { ...s.spec.pool, generation } } }));
}

describe('planSlices', () => {
  it('creates everything at generation 1 on an empty server', () => {
    const plan = planSlices(wanted(), []);
    expect(plan.generation).toBe(1);
    expect(plan.create.map((s) => [s.metadata?.name, s.spec.pool.generation])).toEqual([['n-gpu.gpushare.io-0', 1], ['n-gpu.gpushare.io-1', 1], ['n-gpu.gpushare.io-2', 1]]);
    expect(plan.update).toEqual([]);
    expect(plan.delete).toEqual([]);
  });

  it('does nothing when the server has exactly what is wanted', () => {
    const plan = planSlices(wanted(), stored(wanted(), 4));
    expect(plan).toEqual({ generation: 4, create: [], update: [], delete: [] });
  });

  it('ignores key order and the serializer\'s model names (what a re-read gives)', () => {
    const reread = stored(wanted(), 4).map((s) => JSON.parse(JSON.stringify(s)) as V1ResourceSlice);
    reread[1]!.spec = { pool: reread[1]!.spec.pool, devices: reread[1]!.spec.devices, nodeName: 'n', driver: reread[1]!.spec.driver };
    expect(planSlices(wanted(), reread).update).toEqual([]);
  });

  it('moves every slice of the pool to the next generation when one differs', () => {
    const now = stored(wanted(8), 4);
    const plan = planSlices(wanted(7), now);
    expect(plan.generation).toBe(5);
    expect(plan.update.map((s) => [s.metadata?.name, s.spec.pool.generation, s.metadata?.resourceVersion])).toEqual([['n-gpu.gpushare.io-0', 5, '100'], ['n-gpu.gpushare.io-1', 5, '101'], ['n-gpu.gpushare.io-2', 5, '102']]);
    expect(plan.update[2]!.spec.devices).toHaveLength(45);
  });

  it('deletes what is not wanted, on the condition it is unchanged', () => {
    const extra = { ...stored(wanted(), 2)[0]!, metadata: { name: 'n-gpu.gpushare.io-9', resourceVersion: '77' } };
    const plan = planSlices(wanted(4), [...stored(wanted(4), 2), extra]);
    expect(plan.delete).toEqual([{ name: 'n-gpu.gpushare.io-9', resourceVersion: '77' }]);
    expect(plan.generation).toBe(3);
  });

  it('brings a pool of mixed generations to one above the highest', () => {
    const now = stored(wanted(), 2);
    now[1] = { ...now[1]!, spec: { ...now[1]!.spec, pool: { ...now[1]!.spec.pool, generation: 6 } } };
    const plan = planSlices(wanted(), now);
    expect(plan.generation).toBe(7);
    expect(plan.update.every((s) => s.spec.pool.generation === 7)).toBe(true);
  });

  it('deletes everything when nothing is wanted', () => {
    const plan = planSlices([], stored(wanted(), 2));
    expect(plan.delete.map((d) => d.name)).toEqual(['n-gpu.gpushare.io-0', 'n-gpu.gpushare.io-1', 'n-gpu.gpushare.io-2']);
    expect(plan.create).toEqual([]);
  });
});
