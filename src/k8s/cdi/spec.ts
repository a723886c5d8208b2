/**
 * The CDI spec (github.com/cncf-tags/container-device-interface, SPEC.md) that gives a
 * container a prepared claim's slice, built by a pure function. One spec file per claim, kind
 * `gpushare.io/claim`, one CDI device per claim named by the claim's uid: the container runtime
 * applies its edits when the kubelet passes the id `gpushare.io/claim=<uid>`.
 *
 * How the slice reaches the process: libgpushare is bind-mounted read-only and preloaded through
 * a mounted /etc/ld.so.preload, not LD_PRELOAD. CDI's env edits replace a variable of the same
 * name, so an LD_PRELOAD edit would silently drop the image's own preloads (jemalloc, ...), and a
 * process started with a cleared environment (`env -i`, su, a supervisor) would escape the
 * limits; ld.so.preload reaches every process of the container. The limits themselves are the
 * variables libgpushare reads (native/shim/gs_config.c), the same ones the daemon sets for a
 * task (src/node/launcher.ts taskEnvironment).
 */
import type { PreparedClaim } from '../dra/prepare.js';
import { libraryPriorityBand } from '../dra/config.js';

/** CDI 0.6.0: device names may start with a digit (0.5.0, a uid may) and specs may carry annotations (0.6.0). */
export const CDI_VERSION = '0.6.0';
export const CDI_VENDOR = 'gpushare.io';
export const CDI_CLASS = 'claim';
export const CDI_KIND = `${CDI_VENDOR}/${CDI_CLASS}`;

/** Where things are inside the container. */
export const CONTAINER_PATHS = {
  library: '/usr/local/gpushare/lib/libgpushare.so',
  preload: '/etc/ld.so.preload',
  /** The claim's own directory: its shared region lives here. */
  claimDir: '/run/gpushare/claim',
  /** The GPUs' compute boards, shared by every container on the node (a pod's /dev/shm is its own). */
  computeDir: '/run/gpushare/compute',
} as const;

/** Host paths the spec mounts (written by the plugin beforehand). */
export interface HostPaths {
  readonly library: string;
  /** A file whose one line is CONTAINER_PATHS.library. */
  readonly preload: string;
  /** This claim's (or, on the device-plugin path, this container's) directory: its region is created there by the first process that attaches. */
  readonly claimDir: string;
  readonly computeDir: string;
}

export interface CdiDeviceNode {
  readonly path: string;
  readonly permissions?: string;
}
export interface CdiMount {
  readonly hostPath: string;
  readonly containerPath: string;
  readonly options: readonly string[];
  readonly type?: string;
}
export interface CdiContainerEdits {
  readonly env: readonly string[];
  readonly deviceNodes: readonly CdiDeviceNode[];
  readonly mounts: readonly CdiMount[];
}
export interface CdiSpec {
  readonly cdiVersion: string;
  readonly kind: string;
  readonly annotations: Readonly<Record<string, string>>;
  readonly devices: readonly { readonly name: string; readonly containerEdits: CdiContainerEdits }[];
}

/** The fully qualified CDI device id the kubelet hands the runtime. */
export function cdiDeviceId(claimUid: string): string {
  return `${CDI_KIND}=${claimUid}`;
}

/** The spec's file name in the CDI directory (the container-device-interface transient-spec form vendor-class_id). */
export function cdiSpecFileName(claimUid: string): string {
  return `${CDI_VENDOR}-${CDI_CLASS}_${claimUid}.json`;
}

/** One GPU of a container's slice: the GPU by UUID and the limits libgpushare enforces on it. */
export interface SliceLimit {
  readonly uuid: string;
  readonly memoryBytes: number;
  /** Hundredths of the GPU's compute; 0 (none reserved) and 100 (all of it) set no compute limit. */
  readonly cores: number;
}

/**
 * The GPU and limit variables of a container's slice, the names libgpushare and CUDA read: the
 * GPUs by UUID, memory per GPU, compute where limited. Shared by the DRA claim's CDI spec and the
 * device plugin's Allocate, so both paths give a container the same environment.
 */
export function limitEnvironment(limits: readonly SliceLimit[]): Record<string, string> {
  const uuids = limits.map((l) => l.uuid);
  // Per GPU by UUID when the GPUs' slices differ: libgpushare matches a GPU- key to the device
  // whatever ordinal CUDA gives it inside the container.
  const perGpu = (value: (l: SliceLimit) => number): string => {
    const values = limits.map(value);
    return values.every((v) => v === values[0]) ? String(values[0]) : uuids.map((u, i) => `${u}=${values[i]}`).join(',');
  };
  const env: Record<string, string> = {
    CUDA_VISIBLE_DEVICES: uuids.join(','),
    NVIDIA_VISIBLE_DEVICES: uuids.join(','),
    GPUSHARE_MEMORY_LIMIT: perGpu((l) => l.memoryBytes),
  };
  // 100 (or more, two shares of one GPU) is the whole GPU: no limit, as the daemon does for a
  // task without one; 0 means the slice reserved no compute, which libgpushare cannot express.
  const cores = limits.map((l) => Math.min(100, l.cores));
  if (cores.some((c) => c > 0 && c < 100)) env['GPUSHARE_COMPUTE_LIMIT'] = perGpu((l) => Math.min(100, l.cores) || 100);
  return env;
}

/** Where a container finds its region and the node's compute boards (the mounts of `sliceMounts`). */
export const REGION_ENVIRONMENT: Readonly<Record<string, string>> = {
  GPUSHARE_REGION: `${CONTAINER_PATHS.claimDir}/region`,
  GPUSHARE_COMPUTE_DIR: CONTAINER_PATHS.computeDir,
};

/** The container environment for a claim: the names libgpushare and CUDA read. */
export function claimEnvironment(claim: PreparedClaim): Record<string, string> {
  const gpus = claim.devices;
  const uuids = [...new Set(gpus.map((d) => d.gpuUuid))];
  const sum = (uuid: string, pick: (d: PreparedClaim['devices'][number]) => number): number =>
    gpus.filter((d) => d.gpuUuid === uuid).reduce((s, d) => s + pick(d), 0);
  const env = limitEnvironment(uuids.map((uuid) => ({ uuid, memoryBytes: sum(uuid, (d) => d.memoryBytes), cores: sum(uuid, (d) => d.cores) })));
  env['GPUSHARE_PRIORITY'] = libraryPriorityBand(claim.config.priority);
  env['GPUSHARE_ISOLATION'] = claim.config.isolation;
  env['GPUSHARE_COMPUTE_POLICY'] = claim.config.computePolicy;
  if (claim.smRanges.length > 0) {
    // By ordinal inside the container (CUDA_VISIBLE_DEVICES order): the form libgpushare reads.
    const offsets = uuids.map((u) => claim.smRanges.find((r) => r.gpuUuid === u)?.offset);
    env['GPUSHARE_SM_OFFSET'] = uuids.length === 1 ? String(offsets[0]) : offsets.flatMap((o, i) => (o === undefined ? [] : [`${i}=${o}`])).join(',');
  }
  Object.assign(env, REGION_ENVIRONMENT);
  env['GPUSHARE_CLAIM'] = `${claim.namespace}/${claim.name}`;
  return env;
}

/** The device nodes a container of a slice needs: its GPUs' (`/dev/nvidia<minor>`) and the driver's shared ones. */
export function sliceDeviceNodes(gpuNodes: readonly string[]): string[] {
  return [...new Set(gpuNodes), '/dev/nvidiactl', '/dev/nvidia-uvm', '/dev/nvidia-uvm-tools'];
}

/** A bind mount of a slice's container: host path, container path, read-only or not. */
export interface SliceMount {
  readonly hostPath: string;
  readonly containerPath: string;
  readonly readOnly: boolean;
}

/** The mounts that put a container under libgpushare with its region: the library and its preload (read-only), the region's directory and the compute boards. */
export function sliceMounts(host: HostPaths): SliceMount[] {
  return [
    { hostPath: host.library, containerPath: CONTAINER_PATHS.library, readOnly: true },
    { hostPath: host.preload, containerPath: CONTAINER_PATHS.preload, readOnly: true },
    { hostPath: host.claimDir, containerPath: CONTAINER_PATHS.claimDir, readOnly: false },
    { hostPath: host.computeDir, containerPath: CONTAINER_PATHS.computeDir, readOnly: false },
  ];
}

/** The CDI spec for one prepared claim. */
export function buildClaimSpec(claim: PreparedClaim, host: HostPaths): CdiSpec {
  const env = claimEnvironment(claim);
  const bind = (m: SliceMount): CdiMount => ({
    hostPath: m.hostPath, containerPath: m.containerPath, type: 'bind', options: ['rbind', m.readOnly ? 'ro' : 'rw', 'nosuid', 'nodev'],
  });
  return {
    cdiVersion: CDI_VERSION,
    kind: CDI_KIND,
    annotations: { 'gpushare.io/claim-namespace': claim.namespace, 'gpushare.io/claim-name': claim.name, 'gpushare.io/claim-uid': claim.uid },
    devices: [{
      name: claim.uid,
      containerEdits: {
        env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
        deviceNodes: sliceDeviceNodes(claim.devices.map((d) => d.deviceNode)).map((path) => ({ path, permissions: 'rw' })),
        mounts: sliceMounts(host).map(bind),
      },
    }],
  };
}
