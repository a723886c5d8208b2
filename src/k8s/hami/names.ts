/**
 * The names of the classic, HAMi-compatible path: the resources and pod annotations a pod
 * written for HAMi uses (so it schedules unchanged), and gpushare's own annotations that carry
 * the node inventory and the extender's decision between the cluster component and the node.
 */

/** HAMi's extended resources, per container (limits, or requests equal to them). */
export const RESOURCE = {
  /** How many GPUs (HAMi's vGPUs: one slice on each of that many distinct GPUs). */
  gpu: 'nvidia.com/gpu',
  /** GPU memory per GPU, in MiB. */
  gpumem: 'nvidia.com/gpumem',
  /** GPU memory per GPU as a percentage (1-100) of the GPU; never together with gpumem. */
  gpumemPercentage: 'nvidia.com/gpumem-percentage',
  /** Compute per GPU as a percentage (0-100); absent or 0: no compute limit. */
  gpucores: 'nvidia.com/gpucores',
  /** HAMi-core's task priority: 0 high, 1 low (the default): CUDA_TASK_PRIORITY on the node. */
  priority: 'nvidia.com/priority',
} as const;

/** Every nvidia.com/* resource this path understands; any other nvidia.com/* name is refused. */
export const KNOWN_RESOURCES: ReadonlySet<string> = new Set(Object.values(RESOURCE));

/** The resource domain the path owns: an unknown name in it is a typo, not someone else's resource. */
export const RESOURCE_DOMAIN = 'nvidia.com/';

/** HAMi's pod annotations. */
export const ANNOTATION = {
  /** Comma-separated GPU model substrings the pod may use (case-insensitive), e.g. `A100,H100`. */
  useGpuType: 'nvidia.com/use-gputype',
  /** Comma-separated GPU model substrings the pod must not use. */
  noUseGpuType: 'nvidia.com/nouse-gputype',
  /** Comma-separated GPU UUIDs the pod may use. */
  useGpuUuid: 'nvidia.com/use-gpuuuid',
  /** Comma-separated GPU UUIDs the pod must not use. */
  noUseGpuUuid: 'nvidia.com/nouse-gpuuuid',
  /** Which node: `binpack` (default: fill the busiest node that fits) or `spread`. */
  nodePolicy: 'hami.io/node-scheduler-policy',
  /** Which GPU on the chosen node: `spread` (default: the least used) or `binpack`. */
  gpuPolicy: 'hami.io/gpu-scheduler-policy',
} as const;

/** HAMi's scheduler policies (both annotations take the same two words). */
export const POLICIES = ['binpack', 'spread'] as const;
export type HamiPolicy = (typeof POLICIES)[number];
/** HAMi's defaults: pack nodes, spread GPUs within the chosen node. */
export const DEFAULT_NODE_POLICY: HamiPolicy = 'binpack';
export const DEFAULT_GPU_POLICY: HamiPolicy = 'spread';

/** gpushare's own annotations on the classic path (versioned JSON, codecs beside this module). */
export const GPUSHARE_ANNOTATION = {
  /** On a Node: its GPUs, written by the node agent (node-gpus.ts). */
  nodeGpus: 'gpushare.io/node-gpus',
  /** On a Pod: where the extender placed each container's slice (decision.ts), read by Allocate. */
  decision: 'gpushare.io/decision',
  /** On a Pod: which of its containers the device plugin's Allocate has given their slice (deviceplugin/allocated.ts). */
  allocated: 'gpushare.io/allocated',
  /** On a Pod chosen as a preemption victim to be suspended rather than evicted (preempt). */
  suspendRequest: 'gpushare.io/suspend-request',
  /**
   * On a Pod: the node agent's answer to a suspend request (suspension.ts): suspended (its GPU
   * processes checkpointed, so its slices hold no room in the extender's view) or failed (why).
   */
  suspended: 'gpushare.io/suspended',
} as const;
