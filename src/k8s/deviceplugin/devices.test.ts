import { describe, expect, it } from 'vitest';
import { gpu } from '../../../test/k8s/dra-kubelet-fixtures.js';
import { advertisedDevices, checkSplit, deviceId, gpusOfIds, preferredReplicas, resolveDeviceIds } from './devices.js';

const GPUS = [gpu(0), gpu(1, { health: 'lost', numaNode: null })];
const [A, B] = GPUS.map((g) => g.uuid) as [string, string];

describe('advertised devices', () => {
  it('lists each GPU split times as <uuid>::<n>, a lost GPU Unhealthy, NUMA only where known', () => {
    const list = advertisedDevices(GPUS, 2);
    expect(list).toEqual([
      { ID: `${A}::0`, health: 'Healthy', topology: { nodes: [{ ID: 0 }] } },
      { ID: `${A}::1`, health: 'Healthy', topology: { nodes: [{ ID: 0 }] } },
      { ID: `${B}::0`, health: 'Unhealthy' },
      { ID: `${B}::1`, health: 'Unhealthy' },
    ]);
  });

  it.each([[0], [1025], [2.5], [Number.NaN]])('refuses split %s', (split) => {
    expect(checkSplit(split).ok).toBe(false);
  });
});

describe('resolveDeviceIds', () => {
  it('reads IDs back to their GPUs', () => {
    const r = resolveDeviceIds([deviceId(B, 1), deviceId(A, 0)], GPUS, 2);
    expect(r.ok && r.value.map((x) => [x.gpu.index, x.replica])).toEqual([[1, 1], [0, 0]]);
  });

  it.each([
    [`${A}::2`], [`${A}::-1`], [`${A}::1.0`], [`${A}:1`], ['GPU-nope::0'], [''],
  ])('refuses %j, naming it', (id) => {
    const r = resolveDeviceIds([id], GPUS, 2);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.issues[0]?.field).toBe(`device ${JSON.stringify(id)}`);
  });
});

describe('preferredReplicas', () => {
  const avail = [`${A}::0`, `${A}::1`, `${B}::0`, `${B}::1`, `${B}::2`];

  it('takes a replica of each wanted GPU, lowest replica first', () => {
    expect(preferredReplicas(avail, [], 1, [A])).toEqual([`${A}::0`]);
    expect(preferredReplicas([`${A}::1`, `${A}::0`], [], 1, [A])).toEqual([`${A}::0`]);
    expect(preferredReplicas(avail, [], 2, [B, A])).toEqual([`${B}::0`, `${A}::0`]);
  });

  it('spreads the rest over distinct GPUs, the one with most replicas free first', () => {
    expect(preferredReplicas(avail, [], 2, [])).toEqual([`${B}::0`, `${A}::0`]);
    expect(preferredReplicas(avail, [], 3, [])).toEqual([`${B}::0`, `${A}::0`, `${B}::1`]);
  });

  it('keeps what the kubelet must include, and never more than it can give', () => {
    expect(preferredReplicas(avail, [`${A}::1`], 2, [A])).toEqual([`${A}::1`, `${B}::0`]);
    expect(preferredReplicas([`${A}::0`], [], 3, [])).toEqual([`${A}::0`]);
  });

  it('groups IDs by GPU', () => {
    expect(gpusOfIds([`${A}::0`, `${B}::1`, `${A}::1`])).toEqual([A, B]);
  });
});
