/**
 * Allocate's answer for one container, pure: the extender's decision for it turned into what
 * the kubelet hands the runtime: the environment (the same limit, region and board variables a
 * DRA claim's CDI spec sets, cdi/spec.ts, plus HAMi-core's names so a HAMi image or tool reads
 * the same limits), the mounts (libgpushare and its /etc/ld.so.preload, the container's region
 * directory, the node's compute boards) and the device nodes of the decision's GPUs.
 */
import type { ContainerDecision } from '../hami/decision.js';
import { limitEnvironment, REGION_ENVIRONMENT, sliceDeviceNodes, sliceMounts, type HostPaths } from '../cdi/spec.js';

const MIB = 2 ** 20;

/** ContainerAllocateResponse in the proto's field names. */
export interface ContainerAllocateResponse {
  readonly envs: Record<string, string>;
  readonly mounts: readonly { readonly container_path: string; readonly host_path: string; readonly read_only: boolean }[];
  readonly devices: readonly { readonly container_path: string; readonly host_path: string; readonly permissions: string }[];
  readonly annotations: Record<string, string>;
  readonly cdi_devices: readonly { readonly name: string }[];
}

/** The pod a container belongs to, for the variables and annotations that name it. */
export interface PodRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

/** The container's answer. `deviceNode(uuid)`: the GPU's `/dev/nvidia<minor>`. */
export function containerResponse(pod: PodRef, container: ContainerDecision, host: HostPaths, deviceNode: (uuid: string) => string): ContainerAllocateResponse {
  const gpus = container.gpus;
  const envs = limitEnvironment(gpus.map((g) => ({ uuid: g.uuid, memoryBytes: g.memoryBytes, cores: g.coresPercent })));
  // HAMi-core's names, by ordinal inside the container (CUDA_VISIBLE_DEVICES' order). gpushare's
  // own names above win in libgpushare when both are set; these carry the same limits (memory
  // rounded down to the MiB HAMi's unit can say).
  gpus.forEach((g, i) => {
    envs[`CUDA_DEVICE_MEMORY_LIMIT_${i}`] = `${Math.floor(g.memoryBytes / MIB)}m`;
  });
  const limited = gpus.map((g) => (g.coresPercent > 0 && g.coresPercent < 100 ? g.coresPercent : 0));
  if (limited.some((c) => c > 0)) {
    if (limited.every((c) => c === limited[0])) envs['CUDA_DEVICE_SM_LIMIT'] = String(limited[0]);
    else limited.forEach((c, i) => { envs[`CUDA_DEVICE_SM_LIMIT_${i}`] = String(c); });
  }
  // nvidia.com/priority 0 is high; 1 is both "low" and HAMi's default for every pod that says
  // nothing, which the decision cannot tell apart: on this path it is the normal band.
  envs['GPUSHARE_PRIORITY'] = container.taskPriority === 0 ? 'high' : 'normal';
  envs['CUDA_TASK_PRIORITY'] = String(container.taskPriority);
  Object.assign(envs, REGION_ENVIRONMENT);
  envs['CUDA_DEVICE_MEMORY_SHARED_CACHE'] = REGION_ENVIRONMENT['GPUSHARE_REGION'] ?? '';
  envs['GPUSHARE_POD'] = `${pod.namespace}/${pod.name}`;
  return {
    envs,
    mounts: sliceMounts(host).map((m) => ({ container_path: m.containerPath, host_path: m.hostPath, read_only: m.readOnly })),
    devices: sliceDeviceNodes(gpus.map((g) => deviceNode(g.uuid))).map((path) => ({ container_path: path, host_path: path, permissions: 'rw' })),
    annotations: { 'gpushare.io/pod-uid': pod.uid, 'gpushare.io/container': container.name },
    cdi_devices: [],
  };
}
