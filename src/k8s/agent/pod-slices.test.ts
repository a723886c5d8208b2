import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { afterAll, describe, expect, it } from 'vitest';
import { openBackend } from '../../gpu/open.js';
import { DEFAULT_GPU_CONFIG } from '../dra/config.js';
import type { PreparedClaim, PreparedDevice } from '../dra/prepare.js';
import { draOwners, readPodSlices } from './pod-slices.js';

const GIB = 2 ** 30;
const root = mkdtempSync(join(tmpdir(), 'gs-pod-slices-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const gpus = openBackend({ simulate: '2xH100-80GB' }).backend.gpus();

function device(gpu: number, memoryBytes: number, cores: number): PreparedDevice {
  const g = gpus[gpu]!;
  return { request: 'gpu', pool: 'node', device: `gpu-${gpu}-share`, shareId: null, gpuUuid: g.uuid, gpuIndex: g.index, gpuMemoryBytes: g.memoryTotalBytes, deviceNode: `/dev/nvidia${gpu}`, memoryBytes, cores };
}
const claim = (name: string, devices: PreparedDevice[]): PreparedClaim => ({ uid: `uid-${name}`, namespace: 'ml', name, devices, config: DEFAULT_GPU_CONFIG, smRanges: [] });

function pod(name: string, claims: { pod: string; resource: string }[], containers: { name: string; uses: string[] }[]): V1Pod {
  return {
    metadata: { name, namespace: 'ml', uid: `pod-${name}` },
    spec: { containers: containers.map((c) => ({ name: c.name, resources: { claims: c.uses.map((u) => ({ name: u })) } })) },
    status: { resourceClaimStatuses: claims.map((c) => ({ name: c.pod, resourceClaimName: c.resource })) },
  };
}

describe('the DRA claims as the monitor shows them', () => {
  it("names the pod using a claim and its containers that use it; one GPU per share set, the shares' memory and compute summed", () => {
    const claims = [claim('train-gpu-abc', [device(0, 10 * GIB, 25), device(0, 6 * GIB, 25), device(1, 20 * GIB, 100)]), claim('orphan', [device(1, 4 * GIB, 0)])];
    const pods = [
      pod('other', [{ pod: 'gpu', resource: 'other-claim' }], [{ name: 'x', uses: ['gpu'] }]),
      pod('trainer', [{ pod: 'gpu', resource: 'train-gpu-abc' }], [{ name: 'main', uses: ['gpu'] }, { name: 'sidecar', uses: [] }, { name: 'loader', uses: ['gpu'] }]),
    ];
    const owners = draOwners(claims, (c) => join(root, c.uid, 'region'), pods);
    expect(owners).toEqual([
      { namespace: 'ml', pod: 'trainer', podUid: 'pod-trainer', container: 'main,loader', gpus: [gpus[0]!.uuid, gpus[1]!.uuid], region: join(root, 'uid-train-gpu-abc', 'region'), decided: [{ memoryBytes: 16 * GIB, computeLimitPercent: 50 }, { memoryBytes: 20 * GIB, computeLimitPercent: null }] },
      { namespace: 'ml', pod: '', container: '', gpus: [gpus[1]!.uuid], region: join(root, 'uid-orphan', 'region'), decided: [{ memoryBytes: 4 * GIB, computeLimitPercent: null }] },
    ]);
    // No region yet (no process used CUDA): the decided slices, nothing measured; suspended as the suspender says.
    expect(readPodSlices(owners.slice(0, 1), gpus, (uid) => uid === 'pod-trainer')).toEqual([
      { namespace: 'ml', pod: 'trainer', container: 'main,loader', suspended: true, usage: null, gpus: [{ uuid: gpus[0]!.uuid, index: 0, memoryLimitBytes: 16 * GIB, computeLimitPercent: 50 }, { uuid: gpus[1]!.uuid, index: 1, memoryLimitBytes: 20 * GIB, computeLimitPercent: null }] },
    ]);
  });

  it('leaves out a container whose limits are known only from its region until the region exists', () => {
    expect(readPodSlices([{ namespace: 'ml', pod: 'p', container: 'c', gpus: [gpus[0]!.uuid], region: join(root, 'none', 'region') }], gpus)).toEqual([]);
  });
});
