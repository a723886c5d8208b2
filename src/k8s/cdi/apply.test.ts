import { describe, expect, it } from 'vitest';
import type { PreparedClaim } from '../dra/prepare.js';
import { decodeAllocateResponse } from './apply-allocate.js';
import { decodeCdiSpec, parseCdiDeviceId, resolveCdiDevices, type DecodedCdiSpec } from './apply-spec.js';
import { applyEdits, baseProcess, containerProcess, DEFAULT_IMAGE_ENV, injectCdiDevices, mergeEnv, type ProcessPlan } from './apply.js';
import { buildClaimSpec, cdiDeviceId, CONTAINER_PATHS } from './spec.js';

const GIB = 2 ** 30;

function spec(json: unknown, source = 'vendor.json'): DecodedCdiSpec {
  const d = decodeCdiSpec(json, source);
  if (!d.ok) throw new Error(JSON.stringify(d.issues));
  return d.value;
}

function base(argv = ['/bin/true'], env?: readonly string[]): ProcessPlan {
  const b = baseProcess(argv, env);
  if (!b.ok) throw new Error(JSON.stringify(b.issues));
  return b.value;
}

const vendor = {
  cdiVersion: '0.7.0', kind: 'vendor.com/gpu',
  containerEdits: { env: ['SPEC_WIDE=1', 'SHARED=spec'], mounts: [{ hostPath: '/opt/vendor/bin', containerPath: '/usr/local/vendor/bin', options: ['bind', 'ro'] }] },
  devices: [
    { name: 'gpu0', containerEdits: { env: ['SHARED=gpu0', 'VISIBLE=0'], deviceNodes: [{ path: '/dev/vgpu0' }], hooks: [{ hookName: 'createContainer', path: '/usr/bin/vendor-hook', args: ['vendor-hook', 'ldcache'] }], additionalGids: [44, 0] } },
    { name: 'gpu1', containerEdits: { env: ['VISIBLE=1'], deviceNodes: [{ path: '/dev/vgpu1', hostPath: '/dev/vgpu-real1', permissions: 'none' }], additionalGids: [44, 109] } },
  ],
};

describe('CDI edits applied as the CDI library applies them', () => {
  it('env: a name already there is replaced where it stands, a new one appended, later edits win', () => {
    expect(mergeEnv(['PATH=/bin', 'HOME=/root', 'A=1'], ['A=2', 'B=x=y', 'PATH=/usr/bin'])).toEqual(['PATH=/usr/bin', 'HOME=/root', 'A=2', 'B=x=y']);
  });

  it('applies a spec\'s own edits once, before its first device, then each device\'s, in the order asked', () => {
    const s = spec(vendor);
    const plan = injectCdiDevices(base(), [s], ['vendor.com/gpu=gpu1', 'vendor.com/gpu=gpu0']);
    expect(plan.ok).toBe(true);
    if (!plan.ok) return;
    expect(plan.value.env).toEqual([...DEFAULT_IMAGE_ENV, 'SPEC_WIDE=1', 'SHARED=gpu0', 'VISIBLE=0']);
    expect(plan.value.deviceNodes.map((d) => [d.path, d.hostPath, d.permissions])).toEqual([['/dev/vgpu1', '/dev/vgpu-real1', ''], ['/dev/vgpu0', '/dev/vgpu0', 'rwm']]);
    expect(plan.value.additionalGids).toEqual([44, 109]);
    expect(plan.value.hooks.createContainer).toEqual([{ path: '/usr/bin/vendor-hook', args: ['vendor-hook', 'ldcache'], env: [], timeoutSeconds: null }]);
    expect(plan.value.mounts).toEqual([{ source: '/opt/vendor/bin', destination: '/usr/local/vendor/bin', type: '', options: ['bind', 'ro'] }]);
  });

  it('mounts: one at the same container path is replaced; all sorted by depth, stably', () => {
    let plan = applyEdits(base(), { mounts: [{ hostPath: '/h/deep', containerPath: '/a/b/c' }, { hostPath: '/h/one', containerPath: '/x' }, { hostPath: '/h/two', containerPath: '/a/b' }] });
    plan = applyEdits(plan, { mounts: [{ hostPath: '/h/other', containerPath: '/x', options: ['rbind', 'rw'] }, { hostPath: '/h/y', containerPath: '/y' }] });
    expect(plan.mounts.map((m) => `${m.destination}<-${m.source}`)).toEqual(['/x<-/h/other', '/y<-/h/y', '/a/b<-/h/two', '/a/b/c<-/h/deep']);
  });

  it('lists edits it cannot carry out rather than dropping them', () => {
    expect(applyEdits(base(), { intelRdt: { closID: 'gold' }, netDevices: [{ hostInterfaceName: 'eth1', name: 'net0' }] }).unsupported).toEqual(['intelRdt (resctrl class of service)', 'netDevices eth1 -> net0']);
  });

  it('refuses what a runtime refuses, naming the field', () => {
    const bad = (over: Record<string, unknown>, path: string, message: RegExp): void => {
      const d = decodeCdiSpec({ ...vendor, ...over }, 'v.json');
      expect(d.ok).toBe(false);
      if (d.ok) return;
      expect(d.issues[0]?.field).toBe(`v.json${path}`);
      expect(d.issues[0]?.message).toMatch(message);
    };
    bad({ kind: 'gpu' }, '.kind', /vendor\/class/);
    bad({ devices: [] }, '.devices', /at least one device/);
    bad({ devices: [{ name: '-x', containerEdits: {} }] }, '.devices.0.name', /alphanumeric/);
    bad({ containerEdits: { env: ['=x'] } }, '.containerEdits.env.0', /NAME=VALUE/);
    bad({ containerEdits: { hooks: [{ hookName: 'onBoot', path: '/x' }] } }, '.containerEdits.hooks.0.hookName', /createRuntime/);
    bad({ containerEdits: { hooks: [{ hookName: 'poststop', path: 'x' }] } }, '.containerEdits.hooks.0.path', /absolute/);
    bad({ containerEdits: { deviceNodes: [{ path: '/dev/x', permissions: 'rx' }] } }, '.containerEdits.deviceNodes.0.permissions', /r, w, m/);
    bad({ containerEdits: { surprise: 1 } }, '.containerEdits', /surprise/);
    expect(decodeCdiSpec({ ...vendor, devices: [vendor.devices[0], vendor.devices[0]] }, 'v.json')).toMatchObject({ ok: false, issues: [{ code: 'conflict' }] });
  });

  it('an unknown device id, or one two specs define, is an error listing what exists; nothing is applied', () => {
    const r = resolveCdiDevices([spec(vendor)], ['vendor.com/gpu=gpu0', 'vendor.com/gpu=gpu7', 'other.io/x=y']);
    expect(r).toEqual({ ok: false, issues: [{ field: 'cdiDevices', code: 'unknownValue', message: 'unresolvable CDI devices vendor.com/gpu=gpu7, other.io/x=y (the specs define vendor.com/gpu=gpu0, vendor.com/gpu=gpu1)' }] });
    expect(resolveCdiDevices([spec(vendor, 'a.json'), spec(vendor, 'b.json')], ['vendor.com/gpu=gpu0'])).toMatchObject({ ok: false, issues: [{ field: 'vendor.com/gpu=gpu0', message: 'is defined by both a.json and b.json' }] });
    expect(parseCdiDeviceId('gpushare.io/claim=5c1f')).toEqual({ kind: 'gpushare.io/claim', name: '5c1f' });
    expect(parseCdiDeviceId('nvidia.com/gpu')).toBeNull();
  });
});

describe('the container a kubelet and containerd would start', () => {
  const allocate = decodeAllocateResponse({
    envs: { NVIDIA_VISIBLE_DEVICES: 'GPU-a', CUDA_DEVICE_MEMORY_LIMIT_0: '4096m', POD_SET: 'plugin' },
    mounts: [{ container_path: '/usr/local/vgpu/libvgpu.so', host_path: '/usr/local/vgpu/libvgpu.so', read_only: true }, { container_path: '/tmp/vgpu', host_path: '/tmp/vgpu/containers/x' }],
    devices: [{ container_path: '/dev/nvidia0', host_path: '/dev/nvidia0', permissions: 'rw' }],
    annotations: { 'hami.io/vgpu-devices-allocated': 'GPU-a,NVIDIA,4096,30:;' },
    cdi_devices: [{ name: 'vendor.com/gpu=gpu1' }],
  });

  it('decodes the v1beta1 answer with proto3\'s defaults for absent fields', () => {
    expect(decodeAllocateResponse({})).toEqual({ ok: true, value: { envs: {}, mounts: [], devices: [], annotations: {}, cdi_devices: [] } });
    expect(allocate.ok && allocate.value.mounts[1]?.read_only).toBe(false);
  });

  it('refuses a malformed answer, naming the field', () => {
    expect(decodeAllocateResponse({ mounts: [{ host_path: '/x' }] })).toMatchObject({ ok: false, issues: [{ field: 'ContainerAllocateResponse.mounts.0.container_path' }] });
    expect(decodeAllocateResponse({ cdi_devices: [{ name: 'gpu0' }] })).toMatchObject({ ok: false, issues: [{ message: /fully qualified CDI device name/ }] });
    expect(decodeAllocateResponse({ envs: { 'A=B': '1' } })).toMatchObject({ ok: false, issues: [{ field: 'ContainerAllocateResponse.envs' }] });
  });

  it('env: image, then the plugin\'s, then the pod\'s own (which win), then CDI edits (which win over all)', () => {
    if (!allocate.ok) throw new Error('fixture');
    const plan = containerProcess({
      argv: ['python3', 'train.py'], imageEnv: ['PATH=/opt/conda/bin:/usr/bin', 'LANG=C.UTF-8', 'VISIBLE=image'],
      containerEnv: ['POD_SET=pod', 'BATCH=64'], allocate: [allocate.value],
    }, [spec(vendor)]);
    expect(plan.ok).toBe(true);
    if (!plan.ok) return;
    expect(plan.value.env).toEqual([
      'PATH=/opt/conda/bin:/usr/bin', 'LANG=C.UTF-8', 'VISIBLE=1',
      'NVIDIA_VISIBLE_DEVICES=GPU-a', 'CUDA_DEVICE_MEMORY_LIMIT_0=4096m', 'POD_SET=pod', 'BATCH=64', 'SPEC_WIDE=1', 'SHARED=spec',
    ]);
    expect(plan.value.mounts.map((m) => [m.destination, m.options.join(',')])).toEqual([
      ['/tmp/vgpu', 'rbind,rw'], ['/usr/local/vgpu/libvgpu.so', 'rbind,ro'], ['/usr/local/vendor/bin', 'bind,ro'],
    ]);
    expect(plan.value.deviceNodes.map((d) => `${d.path} ${d.permissions}`)).toEqual(['/dev/nvidia0 rw', '/dev/vgpu1 ']);
    expect(plan.value.annotations).toEqual({ 'hami.io/vgpu-devices-allocated': 'GPU-a,NVIDIA,4096,30:;' });
  });

  it('refuses an empty command or a malformed env entry', () => {
    expect(containerProcess({ argv: [] }, [])).toMatchObject({ ok: false, issues: [{ field: 'argv' }] });
    expect(containerProcess({ argv: ['x'], containerEnv: ['NOEQUALS'] }, [])).toMatchObject({ ok: false, issues: [{ field: 'containerEnv' }] });
    expect(containerProcess({ argv: ['x'], imageEnv: ['=1'] }, [])).toMatchObject({ ok: false, issues: [{ field: 'imageEnv' }] });
  });

  it('a claim spec gpushare writes gives the process its slice, the preload file and the library read-only', () => {
    const claim: PreparedClaim = {
      uid: '5c1f8a52-7d2e-4b7a-9c3e-0f6d1a2b3c4d', namespace: 'ml', name: 'train', config: { isolation: 'time-slice', priority: 500, computePolicy: 'hard' }, smRanges: [],
      devices: [{ request: 'gpu', pool: 'n', device: 'gpu-0', shareId: null, gpuUuid: 'GPU-aaaa', gpuIndex: 0, gpuMemoryBytes: 80 * GIB, deviceNode: '/dev/nvidia0', memoryBytes: 20 * GIB, cores: 30 }],
    };
    const written = JSON.parse(JSON.stringify(buildClaimSpec(claim, { library: '/h/lib.so', preload: '/h/preload', claimDir: '/h/claim', computeDir: '/h/compute' }))) as unknown;
    const plan = containerProcess({ argv: ['nvidia-smi'], cdiDevices: [cdiDeviceId(claim.uid)] }, [spec(written, 'gpushare.json')]);
    expect(plan.ok).toBe(true);
    if (!plan.ok) return;
    expect(plan.value.env).toContain(`GPUSHARE_MEMORY_LIMIT=${20 * GIB}`);
    expect(plan.value.env).toContain('GPUSHARE_COMPUTE_LIMIT=30');
    expect(plan.value.env).toContain('CUDA_VISIBLE_DEVICES=GPU-aaaa');
    expect(plan.value.env.some((e) => e.startsWith('LD_PRELOAD='))).toBe(false);
    expect(plan.value.mounts.map((m) => [m.destination, m.source, m.options.includes('ro')])).toEqual([
      [CONTAINER_PATHS.preload, '/h/preload', true], [CONTAINER_PATHS.claimDir, '/h/claim', false], [CONTAINER_PATHS.computeDir, '/h/compute', false], [CONTAINER_PATHS.library, '/h/lib.so', true],
    ]);
    expect(plan.value.deviceNodes.map((d) => d.path)).toEqual(['/dev/nvidia0', '/dev/nvidiactl', '/dev/nvidia-uvm', '/dev/nvidia-uvm-tools']);
  });
});
