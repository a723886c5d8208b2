/**
 * The names gpushare's DRA driver puts on the wire: what the ResourceSlices it publishes, the
 * DeviceClasses it ships, the claims' opaque configuration and the kubelet plugin must agree on.
 * One module so the publisher (API server side) and the kubelet plugin (node side) cannot drift.
 */

/** The DRA driver name: a DNS subdomain, as `gpu.nvidia.com` is NVIDIA's. */
export const DRIVER_NAME = 'gpu.gpushare.io';

/** The group and version of the opaque configuration a claim may carry for this driver. */
export const CONFIG_API_VERSION = 'gpu.gpushare.io/v1alpha1';
/** The opaque configuration's kind. */
export const CONFIG_KIND = 'GpuConfig';

/**
 * Device capacities (resource.k8s.io/v1 `capacity`, QualifiedName keys of this driver's domain
 * left unqualified): bytes of GPU memory, and compute in hundredths of the whole GPU (100 = all
 * of it, the unit of HAMi's `gpucores`).
 */
export const CAPACITY = {
  memory: 'memory',
  cores: 'cores',
} as const;

/** Device attributes (unqualified names in this driver's domain), from the GPU inventory. */
export const ATTRIBUTE = {
  uuid: 'uuid',
  model: 'productName',
  architecture: 'architecture',
  computeCapability: 'cudaComputeCapability',
  driverVersion: 'driverVersion',
  cudaDriverVersion: 'cudaDriverVersion',
  pciBusId: 'pciBusID',
  numaNode: 'numaNode',
  migEnabled: 'migEnabled',
  multiprocessors: 'multiprocessors',
  index: 'index',
} as const;

/** The DeviceClasses deploy/ ships: a whole GPU, and a slice of one (shared with other claims). */
export const DEVICE_CLASS = {
  gpu: 'gpu.gpushare.io',
  slice: 'gpu-slice.gpushare.io',
} as const;

/** How a node's GPUs are laid out in its ResourceSlices (docs/kubernetes.md gives the trade-off). */
export type SliceLayout = 'consumable' | 'fixed';

/**
 * Device names in this node's ResourceSlice pool (DNS labels, as the API requires): the
 * publisher (slices.ts) names the devices it publishes with these and the kubelet plugin's
 * catalog is built by the same code, so a claim's allocated device name maps back to its GPU.
 * A whole GPU is `gpu-<index>` (the consumable layout's one device per GPU, and the fixed
 * layout's whole-GPU partition).
 */
export function gpuDeviceName(gpuIndex: number): string {
  return `gpu-${gpuIndex}`;
}

/**
 * The fixed layout's part `part` (from 0) of GPU `gpuIndex` cut in `parts` equal parts:
 * `gpu-<index>-part<parts>-<part>`; cut in one part it is the whole GPU, `gpu-<index>`.
 */
export function partitionDeviceName(gpuIndex: number, parts: number, part: number): string {
  return parts === 1 ? gpuDeviceName(gpuIndex) : `gpu-${gpuIndex}-part${parts}-${part}`;
}
