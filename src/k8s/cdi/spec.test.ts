import { describe, expect, it } from 'vitest';
import type { PreparedClaim, PreparedDevice } from '../dra/prepare.js';
import { buildClaimSpec, cdiDeviceId, cdiSpecFileName, claimEnvironment, CDI_KIND, CDI_VERSION, CONTAINER_PATHS } from './spec.js';

const GIB = 2 ** 30;
const UID = '5c1f8a52-7d2e-4b7a-9c3e-0f6d1a2b3c4d';

function device(over: Partial<PreparedDevice> = {}): PreparedDevice {
  return {
    request: 'gpu', pool: 'node-a', device: 'gpu-0', shareId: null, gpuUuid: 'GPU-aaaa', gpuIndex: 0, gpuMemoryBytes: 80 * GIB,
    deviceNode: '/dev/nvidia0', memoryBytes: 8 * GIB, cores: 30, ...over,
  };
}

function claim(devices: PreparedDevice[] = [device()], config: Partial<PreparedClaim['config']> = {}, smRanges: PreparedClaim['smRanges'] = []): PreparedClaim {
  return { uid: UID, namespace: 'ml', name: 'train-gpu', devices, config: { isolation: 'time-slice', priority: 500, computePolicy: 'hard', ...config }, smRanges };
}

const host = { library: '/var/lib/kubelet/plugins/gpu.gpushare.io/lib/libgpushare.so', preload: '/var/lib/kubelet/plugins/gpu.gpushare.io/ld.so.preload', claimDir: `/var/lib/kubelet/plugins/gpu.gpushare.io/claims/${UID}`, computeDir: '/var/lib/kubelet/plugins/gpu.gpushare.io/compute' };

describe('claimEnvironment', () => {
  it('gives one GPU\'s slice in the variables libgpushare reads', () => {
    expect(claimEnvironment(claim([device()], { priority: 900, computePolicy: 'share', isolation: 'sm-partition' }))).toEqual({
      CUDA_VISIBLE_DEVICES: 'GPU-aaaa',
      NVIDIA_VISIBLE_DEVICES: 'GPU-aaaa',
      GPUSHARE_MEMORY_LIMIT: String(8 * GIB),
      GPUSHARE_COMPUTE_LIMIT: '30',
      GPUSHARE_PRIORITY: 'high',
      GPUSHARE_ISOLATION: 'sm-partition',
      GPUSHARE_COMPUTE_POLICY: 'share',
      GPUSHARE_REGION: '/run/gpushare/claim/region',
      GPUSHARE_COMPUTE_DIR: '/run/gpushare/compute',
      GPUSHARE_CLAIM: 'ml/train-gpu',
    });
  });

  it('sets no compute limit for a whole GPU\'s compute', () => {
    expect(claimEnvironment(claim([device({ cores: 100 })]))).not.toHaveProperty('GPUSHARE_COMPUTE_LIMIT');
    expect(claimEnvironment(claim([device({ cores: 0 })]))).not.toHaveProperty('GPUSHARE_COMPUTE_LIMIT');
  });

  it('keys limits by GPU UUID when two GPUs\' slices differ', () => {
    const env = claimEnvironment(claim([device(), device({ device: 'gpu-1', gpuUuid: 'GPU-bbbb', gpuIndex: 1, memoryBytes: 4 * GIB, cores: 100 })]));
    expect(env['CUDA_VISIBLE_DEVICES']).toBe('GPU-aaaa,GPU-bbbb');
    expect(env['GPUSHARE_MEMORY_LIMIT']).toBe(`GPU-aaaa=${8 * GIB},GPU-bbbb=${4 * GIB}`);
    expect(env['GPUSHARE_COMPUTE_LIMIT']).toBe('GPU-aaaa=30,GPU-bbbb=100');
  });

  it('uses one value when every GPU has the same slice', () => {
    const env = claimEnvironment(claim([device(), device({ device: 'gpu-1', gpuUuid: 'GPU-bbbb', gpuIndex: 1 })]));
    expect(env['GPUSHARE_MEMORY_LIMIT']).toBe(String(8 * GIB));
    expect(env['GPUSHARE_COMPUTE_LIMIT']).toBe('30');
  });

  it('adds up two slices of one GPU in one claim', () => {
    const env = claimEnvironment(claim([device({ device: 'gpu-0-part2-0' }), device({ device: 'gpu-0-part2-1' })]));
    expect(env['CUDA_VISIBLE_DEVICES']).toBe('GPU-aaaa');
    expect(env['GPUSHARE_MEMORY_LIMIT']).toBe(String(16 * GIB));
    expect(env['GPUSHARE_COMPUTE_LIMIT']).toBe('60');
  });

  it('passes an sm-partition\'s start as GPUSHARE_SM_OFFSET, by ordinal inside the container', () => {
    const one = claimEnvironment(claim([device()], { isolation: 'sm-partition' }, [{ gpuUuid: 'GPU-aaaa', offset: 40, count: 40 }]));
    expect(one['GPUSHARE_SM_OFFSET']).toBe('40');
    const two = claimEnvironment(claim([device(), device({ device: 'gpu-1', gpuUuid: 'GPU-bbbb', gpuIndex: 1 })], { isolation: 'sm-partition' },
      [{ gpuUuid: 'GPU-bbbb', offset: 64, count: 40 }, { gpuUuid: 'GPU-aaaa', offset: 0, count: 40 }]));
    expect(two['GPUSHARE_SM_OFFSET']).toBe('0=0,1=64');
    expect(claimEnvironment(claim())).not.toHaveProperty('GPUSHARE_SM_OFFSET');
  });

  it.each([[100, 'low'], [500, 'normal'], [900, 'high']] as const)('priority %i is %s for libgpushare', (p, band) => {
    expect(claimEnvironment(claim([device()], { priority: p }))['GPUSHARE_PRIORITY']).toBe(band);
  });
});

describe('buildClaimSpec', () => {
  const spec = buildClaimSpec(claim(), host);
  const edits = spec.devices[0]?.containerEdits;

  it('is a CDI spec of our kind with one device named by the claim uid', () => {
    expect(spec.cdiVersion).toBe(CDI_VERSION);
    expect(spec.kind).toBe('gpushare.io/claim');
    expect(spec.devices.map((d) => d.name)).toEqual([UID]);
    expect(spec.annotations).toEqual({ 'gpushare.io/claim-namespace': 'ml', 'gpushare.io/claim-name': 'train-gpu', 'gpushare.io/claim-uid': UID });
  });

  it('carries the environment as NAME=value', () => {
    expect(edits?.env).toContain(`GPUSHARE_MEMORY_LIMIT=${8 * GIB}`);
    expect(edits?.env).toContain('CUDA_VISIBLE_DEVICES=GPU-aaaa');
    expect(edits?.env.every((e) => e.indexOf('=') > 0)).toBe(true);
    expect(edits?.env.some((e) => e.startsWith('LD_PRELOAD='))).toBe(false);
  });

  it('gives the GPU\'s device node and the driver\'s shared nodes', () => {
    expect(edits?.deviceNodes.map((d) => d.path)).toEqual(['/dev/nvidia0', '/dev/nvidiactl', '/dev/nvidia-uvm', '/dev/nvidia-uvm-tools']);
  });

  it('mounts libgpushare and the preload file read-only, the claim and compute directories read-write', () => {
    expect(edits?.mounts).toEqual([
      { hostPath: host.library, containerPath: CONTAINER_PATHS.library, type: 'bind', options: ['rbind', 'ro', 'nosuid', 'nodev'] },
      { hostPath: host.preload, containerPath: '/etc/ld.so.preload', type: 'bind', options: ['rbind', 'ro', 'nosuid', 'nodev'] },
      { hostPath: host.claimDir, containerPath: '/run/gpushare/claim', type: 'bind', options: ['rbind', 'rw', 'nosuid', 'nodev'] },
      { hostPath: host.computeDir, containerPath: '/run/gpushare/compute', type: 'bind', options: ['rbind', 'rw', 'nosuid', 'nodev'] },
    ]);
  });

  it('names each GPU\'s node once, even for two slices of it', () => {
    const two = buildClaimSpec(claim([device(), device({ device: 'gpu-0-part2-1' })]), host);
    expect(two.devices[0]?.containerEdits.deviceNodes.filter((d) => d.path === '/dev/nvidia0')).toHaveLength(1);
  });
});

describe('names', () => {
  it('the CDI device id is vendor/class=uid and the file is vendor-class_uid.json', () => {
    expect(cdiDeviceId(UID)).toBe(`${CDI_KIND}=${UID}`);
    expect(cdiSpecFileName(UID)).toBe(`gpushare.io-claim_${UID}.json`);
  });
});
