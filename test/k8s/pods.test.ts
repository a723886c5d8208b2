/**
 * Two "pods" through the DRA kubelet plugin and the CDI applier, with the fake CUDA driver:
 * claims in a fake API server, NodePrepareResources over the plugin's socket, the CDI specs
 * applied in a private mount namespace each, a small C program (scripts/gpu/k8s_probe.c) as
 * each pod's command reporting its environment, its preload, its mounts and how far CUDA
 * allocations got; then NodeUnprepareResources leaves nothing behind.
 *
 * Performing the mounts needs root: CI runs as root (.ci/run installs Debian packages with
 * apt-get, no sudo). Elsewhere that test is skipped, saying why; the plan is still checked.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_IMAGE_ENV } from '../../src/k8s/cdi/apply.js';
import { CONTAINER_PATHS } from '../../src/k8s/cdi/spec.js';
import { h100 } from './gpus.js';
import { runPodsFlow, type FlowReport, type PodDefinition } from './pods-flow.js';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const MIB = 2 ** 20;
const LIBRARY = join(REPO, 'build/native/libgpushare.so');
const FAKE_DIR = join(REPO, 'build/native/fake');
const gpu = h100(0);
const CONTEXT = 4 * MIB;
const imageEnv = [
  ...DEFAULT_IMAGE_ENV,
  // The "image" carries the driver, as a CUDA image does: here the fake one, describing the GPU the node publishes.
  `LD_LIBRARY_PATH=${FAKE_DIR}`,
  `GPUSHARE_FAKE_CUDA=${JSON.stringify({ contextBytes: CONTEXT, devices: [{ uuid: gpu.uuid, totalMemory: gpu.memoryTotalBytes }] })}`,
];
const mountPoints = [CONTAINER_PATHS.preload, CONTAINER_PATHS.library, CONTAINER_PATHS.claimDir, CONTAINER_PATHS.computeDir];

let root: string;
let probe: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'gs-pods-'));
  probe = join(root, 'k8s_probe');
  const cc = spawnSync('cc', ['-O2', '-Wall', '-Werror', '-o', probe, join(REPO, 'scripts/gpu/k8s_probe.c'), '-ldl'], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`cannot build the probe: ${cc.stderr || cc.error?.message}`);
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

const pods = (): PodDefinition[] => [
  { name: 'pod-a', memory: '256Mi', cores: 30, argv: [probe, '--fill', ...mountPoints], containerEnv: ['POD_NAME={pod}'] },
  { name: 'pod-b', memory: '512Mi', cores: 70, argv: [probe, '--fill', ...mountPoints], containerEnv: ['POD_NAME={pod}'] },
];

interface ProbeOutput {
  env: string[];
  preloadFile: string;
  libraryMapped: boolean;
  mounts: Record<string, { mounted: boolean; readOnly: boolean }>;
  groups: number[];
  fill: { total: number; freeBefore: number; allocated: number; lastResult: number; freeAfter: number };
}

describe('two pods through prepare and the CDI edits', () => {
  it('plans each pod\'s process from the CDI spec NodePrepareResources wrote, and unprepare leaves nothing', async () => {
    const report = await runPodsFlow({ root: join(root, 'plan'), gpus: [gpu], library: LIBRARY, pods: pods(), imageEnv, execute: 'plan' });
    expect(report.refusal).toBe('not asked to run (plans only)');
    const [a, b] = report.pods;
    expect(a?.cdiDeviceIds).toEqual([`gpushare.io/claim=${a?.claim?.uid}`]);
    expect(a?.plan.env).toEqual([...imageEnv, 'POD_NAME=pod-a', `CUDA_VISIBLE_DEVICES=${gpu.uuid}`, `NVIDIA_VISIBLE_DEVICES=${gpu.uuid}`,
      `GPUSHARE_MEMORY_LIMIT=${256 * MIB}`, 'GPUSHARE_COMPUTE_LIMIT=30', 'GPUSHARE_PRIORITY=normal', 'GPUSHARE_ISOLATION=time-slice', 'GPUSHARE_COMPUTE_POLICY=hard',
      `GPUSHARE_REGION=${CONTAINER_PATHS.claimDir}/region`, `GPUSHARE_COMPUTE_DIR=${CONTAINER_PATHS.computeDir}`, `GPUSHARE_CLAIM=pods-check/pod-a-gpu`]);
    expect(b?.plan.env).toContain(`GPUSHARE_MEMORY_LIMIT=${512 * MIB}`);
    expect(b?.plan.env).toContain('GPUSHARE_COMPUTE_LIMIT=70');
    expect(a?.plan.mounts.find((m) => m.destination === CONTAINER_PATHS.claimDir)?.source).toMatch(new RegExp(`/claims/${a?.claim?.uid}$`));
    expect(report.afterUnprepare).toEqual({ cdiFiles: [], claimDirs: [], checkpointClaims: 0, prepared: 0 });
  });

  it('the allocate path asks the real device plugin: each pod\'s plan carries its slice in HAMi\'s variables and ours, the library preloaded, its own region directory', async () => {
    const report = await runPodsFlow({ root: join(root, 'alloc'), gpus: [gpu], library: LIBRARY, pods: pods(), imageEnv, execute: 'plan', path: 'allocate', deviceNode: () => '/dev/null' });
    expect(report.path).toBe('allocate');
    const [a, b] = report.pods;
    expect(a?.plan.env).toContain('CUDA_DEVICE_MEMORY_LIMIT_0=256m');
    expect(a?.plan.env).toContain(`GPUSHARE_MEMORY_LIMIT=${256 * MIB}`);
    expect(a?.plan.env).toContain('GPUSHARE_COMPUTE_LIMIT=30');
    expect(b?.plan.env).toContain('CUDA_DEVICE_MEMORY_LIMIT_0=512m');
    expect(b?.plan.env).toContain('GPUSHARE_COMPUTE_LIMIT=70');
    expect(a?.plan.env).toContain(`CUDA_VISIBLE_DEVICES=${gpu.uuid}`);
    const claimDirs = report.pods.map((p) => p.plan.mounts.find((m) => m.destination === CONTAINER_PATHS.claimDir)?.source);
    expect(new Set(claimDirs).size).toBe(2);
    for (const dir of claimDirs) expect(dir).toMatch(/\/device-plugin\/containers\/[0-9a-f-]+_0$/);
    expect(a?.plan.mounts.some((m) => m.destination === CONTAINER_PATHS.library)).toBe(true);
  });

  const isRoot = process.getuid?.() === 0;
  it.skipIf(!isRoot)('the allocate path: a device plugin\'s v1beta1 answer (HAMi\'s variables, the library and preload file mounted) runs the same way (root only)', async () => {
    const preload = join(root, 'preload');
    writeFileSync(preload, `${CONTAINER_PATHS.library}\n`);
    const answer = (pod: PodDefinition): unknown => ({
      envs: { CUDA_VISIBLE_DEVICES: gpu.uuid, CUDA_DEVICE_MEMORY_LIMIT_0: pod.memory === '256Mi' ? '256m' : '512m', CUDA_DEVICE_SM_LIMIT: String(pod.cores) },
      mounts: [{ container_path: CONTAINER_PATHS.library, host_path: LIBRARY, read_only: true }, { container_path: CONTAINER_PATHS.preload, host_path: preload, read_only: true }],
      devices: [{ container_path: '/dev/null', host_path: '/dev/null', permissions: 'rw' }],
      annotations: { 'gpushare.io/pod': pod.name },
    });
    const report = await runPodsFlow({
      root: join(root, 'allocate-run'), gpus: [gpu], library: LIBRARY, pods: pods().map((p) => ({ ...p, argv: [probe, '--fill', CONTAINER_PATHS.preload, CONTAINER_PATHS.library] })),
      imageEnv, execute: 'run', path: 'allocate', allocate: { allocate: async (pod) => answer(pod) }, timeoutMs: 60_000,
    });
    expect(report.path).toBe('allocate');
    for (const [i, limit] of [[0, 256 * MIB], [1, 512 * MIB]] as const) {
      const pod = report.pods[i];
      const out = JSON.parse(pod?.result?.stdout ?? '') as ProbeOutput;
      expect(out.env).toEqual([...imageEnv, `CUDA_VISIBLE_DEVICES=${gpu.uuid}`, `CUDA_DEVICE_MEMORY_LIMIT_0=${limit / MIB}m`, `CUDA_DEVICE_SM_LIMIT=${pod?.pod === 'pod-a' ? 30 : 70}`, `POD_NAME=${pod?.pod}`]);
      expect(out.libraryMapped).toBe(true);
      expect(out.mounts).toEqual({ [CONTAINER_PATHS.preload]: { mounted: true, readOnly: true }, [CONTAINER_PATHS.library]: { mounted: true, readOnly: true } });
      expect(out.fill).toMatchObject({ total: limit, lastResult: 2, freeAfter: 0 });
      expect(pod?.devices).toEqual({ present: ['/dev/null'], missing: [], notEnforced: ['/dev/null: cgroup permissions "rw"'] });
      expect(pod?.plan.annotations).toEqual({ 'gpushare.io/pod': pod?.pod });
    }
    for (const p of report.mountTargetsCreated) expect(existsSync(p)).toBe(false);
  }, 90_000);

  it.skipIf(!isRoot)('runs both at once in private mount namespaces: exactly the edits\' env, the library preloaded, its mounts, each held to its limit (skipped unless root: the mounts need it)', async () => {
    const hostPreload = existsSync('/etc/ld.so.preload') ? readFileSync('/etc/ld.so.preload', 'utf8') : null;
    const report: FlowReport = await runPodsFlow({ root: join(root, 'run'), gpus: [gpu], library: LIBRARY, pods: pods(), imageEnv, execute: 'run', missingDevices: 'report', timeoutMs: 60_000 });
    expect(report.refusal).toBeNull();
    for (const [i, limit] of [[0, 256 * MIB], [1, 512 * MIB]] as const) {
      const pod = report.pods[i];
      const result = pod?.result;
      expect(result?.code, result?.stderr).toBe(0);
      const out = JSON.parse(result?.stdout ?? '') as ProbeOutput;
      expect(out.env).toEqual(pod?.plan.env);
      expect(out.preloadFile).toBe(CONTAINER_PATHS.library);
      expect(out.libraryMapped).toBe(true);
      expect(out.mounts).toEqual({
        [CONTAINER_PATHS.preload]: { mounted: true, readOnly: true }, [CONTAINER_PATHS.library]: { mounted: true, readOnly: true },
        [CONTAINER_PATHS.claimDir]: { mounted: true, readOnly: false }, [CONTAINER_PATHS.computeDir]: { mounted: true, readOnly: false },
      });
      expect(out.groups).toEqual([]);
      // The slice: CUDA sees the limit as the GPU's memory; 1 MiB steps fill what is free of it, to the byte, and the next one is OOM (2).
      expect(out.fill).toEqual({ total: limit, freeBefore: out.fill.allocated, allocated: out.fill.freeBefore, lastResult: 2, freeAfter: 0 });
      expect(out.fill.allocated).toBeGreaterThan(limit - 2 * CONTEXT);
      expect(result?.stderr).toMatch(new RegExp(`out of memory on device 0: asked 1 MiB, limit ${limit / MIB} MiB`));
      // No NVIDIA driver here: the GPU's nodes are listed as missing, not pretended.
      expect([...(pod?.devices?.present ?? []), ...(pod?.devices?.missing ?? [])].sort()).toEqual(['/dev/nvidia-uvm', '/dev/nvidia-uvm-tools', '/dev/nvidia0', '/dev/nvidiactl']);
    }
    // Each pod had its own claim directory (and region), and nothing of the namespaces leaked.
    expect(report.afterUnprepare).toEqual({ cdiFiles: [], claimDirs: [], checkpointClaims: 0, prepared: 0 });
    for (const p of report.mountTargetsCreated) expect(existsSync(p), `${p} was created for the mounts and must be gone`).toBe(false);
    expect(existsSync('/etc/ld.so.preload') ? readFileSync('/etc/ld.so.preload', 'utf8') : null).toBe(hostPreload);
  }, 90_000);
});
