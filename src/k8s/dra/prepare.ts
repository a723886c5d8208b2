/**
 * NodePrepareResources' decision, pure: from a claim's allocation, this node's devices and the
 * claims already prepared here, the slice each GPU gives the claim (or why none). The shell
 * (kubelet-plugin.ts) writes what this returns; nothing here touches the disk.
 *
 * The ledger of what is prepared per GPU is the set of prepared claims itself (checkpointed by
 * the shell), so it cannot drift from what the checkpoint says after a restart.
 */
import type { Gpu } from '../../domain/gpu.js';
import { fail, ok, type Issue, type Result } from '../../domain/result.js';
import { firstFit, freeSms, largestFreeRun, partitionRange, smLayout, type SmRange } from '../../domain/smpartition.js';
import { formatBytes } from '../../domain/units.js';
import { mergeGpuConfigs, type GpuConfig } from './config.js';
import { CAPACITY, DRIVER_NAME } from './names.js';
import { parseK8sQuantity, type ClaimAllocation } from './prepare-claim.js';
import { publishedDevices, type LayoutConfig, type PublishedDevice } from './slices.js';

/** A device this node publishes (slices.ts' PublishedDevice: name, GPU, capacities), and its GPU's device node. */
export interface CatalogDevice extends PublishedDevice {
  /** The GPU's device node, `/dev/nvidia<minor>`. */
  readonly deviceNode: string;
}

/** This node's devices by name: exactly those the ResourceSlice publisher publishes. */
export interface DeviceCatalog {
  readonly pool: string;
  get(device: string): CatalogDevice | undefined;
  names(): readonly string[];
}

/**
 * The catalog for a layout: the devices `publishedDevices` makes of the node's GPUs, the same
 * code (and the same LayoutConfig, `layoutConfig(...)`) that builds the published ResourceSlices,
 * so every name and capacity is the one the slice says. Every GPU is in it, healthy or not: a
 * claim allocated before its GPU failed is still this node's to answer for. A GsError for a
 * layout this inventory cannot be published in (the publisher refuses it too).
 */
export function deviceCatalog(pool: string, gpus: readonly Gpu[], layout: LayoutConfig, deviceNode: (gpu: Gpu) => string = indexDeviceNode): DeviceCatalog {
  const nodes = new Map(gpus.map((gpu) => [gpu.uuid, deviceNode(gpu)]));
  const byName = new Map<string, CatalogDevice>(publishedDevices(gpus, layout).map((d) => [d.name, { ...d, deviceNode: nodes.get(d.gpu.uuid) ?? deviceNode(d.gpu) }]));
  return { pool, get: (name) => byName.get(name), names: () => [...byName.keys()] };
}

/** `/dev/nvidia<index>`: right where the driver numbers its minors as NVML orders the GPUs (the usual case). */
export function indexDeviceNode(gpu: Gpu): string {
  return `/dev/nvidia${gpu.index}`;
}

/** One device of a prepared claim: the slice of one GPU it gives. */
export interface PreparedDevice {
  readonly request: string;
  readonly pool: string;
  readonly device: string;
  readonly shareId: string | null;
  readonly gpuUuid: string;
  readonly gpuIndex: number;
  readonly gpuMemoryBytes: number;
  readonly deviceNode: string;
  readonly memoryBytes: number;
  readonly cores: number;
}

/** Isolation sm-partition: the SMs a claim's partition takes on one GPU (none for a whole GPU's compute). */
export interface PreparedSmRange extends SmRange {
  readonly gpuUuid: string;
}

/** A claim as prepared on this node: what the checkpoint records and the CDI spec is built from. */
export interface PreparedClaim {
  readonly uid: string;
  readonly namespace: string;
  readonly name: string;
  readonly devices: readonly PreparedDevice[];
  readonly config: GpuConfig;
  /** Empty unless the config's isolation is sm-partition. */
  readonly smRanges: readonly PreparedSmRange[];
}

/** What the kubelet names: the claim it wants prepared. */
export interface ClaimRef {
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
}

/**
 * Decides a claim's slices. `prepared`: the claims already prepared on this node (other than
 * this one), whose slices count against each GPU.
 */
export function decidePrepare(ref: ClaimRef, claim: ClaimAllocation, catalog: DeviceCatalog, prepared: Iterable<PreparedClaim>): Result<PreparedClaim> {
  const where = `ResourceClaim ${ref.namespace}/${ref.name}`;
  if (claim.uid !== ref.uid) {
    return fail('claim.uid', 'conflict', `${where} has uid ${claim.uid}, not ${ref.uid}: the claim the kubelet means was deleted (and perhaps recreated)`);
  }
  if (claim.results === null) return fail('claim.status.allocation', 'empty', `${where} is not allocated: the scheduler has not (or no longer) placed it`);
  const ours = claim.results.filter((r) => r.driver === DRIVER_NAME);
  if (ours.length === 0) {
    const others = claim.results.map((r) => `${r.driver}/${r.pool}/${r.device}`).join(', ') || 'none';
    return fail('claim.status.allocation.devices.results', 'empty', `${where} has no device allocated by driver ${DRIVER_NAME} (its devices: ${others})`);
  }
  const configs = claim.configs
    .filter((c) => c.opaque?.driver === DRIVER_NAME)
    .filter((c) => c.requests === undefined || c.requests.length === 0 || ours.some((r) => c.requests?.includes(r.request)))
    .map((c) => c.opaque?.parameters);
  const config = mergeGpuConfigs(configs);
  if (!config.ok) return { ok: false, issues: config.issues.map((i) => ({ ...i, message: `${where}: ${i.message}` })) };

  const devices: PreparedDevice[] = [];
  const issues: Issue[] = [];
  for (const r of ours) {
    const device = prepareDevice(r, catalog);
    if (device.ok) devices.push(device.value);
    else issues.push(...device.issues);
  }
  if (issues.length > 0) return { ok: false, issues };
  const others = [...prepared].filter((p) => p.uid !== ref.uid);
  const room = checkRoom(devices, catalog, others);
  if (!room.ok) return room;
  const smRanges = config.value.isolation === 'sm-partition' ? placePartitions(devices, catalog, others) : ok([]);
  if (!smRanges.ok) return smRanges;
  return ok({ uid: ref.uid, namespace: ref.namespace, name: ref.name, devices, config: config.value, smRanges: smRanges.value });
}

/**
 * Isolation sm-partition: per GPU, the SMs the claim's compute share becomes, placed first-fit
 * beside the partitions other claims hold there (the daemon's rule, src/domain/smpartition.ts),
 * so side-by-side partitions never share an SM. A whole GPU's compute is no partition.
 */
function placePartitions(devices: readonly PreparedDevice[], catalog: DeviceCatalog, others: readonly PreparedClaim[]): Result<PreparedSmRange[]> {
  const ranges: PreparedSmRange[] = [];
  for (const uuid of new Set(devices.map((d) => d.gpuUuid))) {
    const mine = devices.filter((d) => d.gpuUuid === uuid);
    const percent = Math.min(100, mine.reduce((s, d) => s + d.cores, 0));
    const gpu = mine[0] === undefined ? undefined : catalog.get(mine[0].device)?.gpu;
    if (gpu === undefined || percent === 100) continue;
    const field = `gpu ${gpu.index} (${uuid})`;
    if (percent === 0) return fail(field, 'conflict', 'isolation sm-partition needs a compute share (cores 1-99): its size sets how many SMs the partition gets');
    const layout = smLayout(gpu);
    if (!layout.ok) return { ok: false, issues: layout.issues.map((i) => ({ ...i, field })) };
    const taken = others.flatMap((o) => o.smRanges.filter((r) => r.gpuUuid === uuid));
    const count = partitionRange(layout.value, percent);
    const range = firstFit(layout.value, taken, count);
    if (range === null) {
      return fail(field, 'exceedsCapacity', `has no room for a partition of ${count} SMs (${percent}%): ${freeSms(layout.value, taken)} SMs are free, the largest free run is ${largestFreeRun(layout.value, taken)}`);
    }
    ranges.push({ gpuUuid: uuid, ...range });
  }
  return ok(ranges);
}

function prepareDevice(r: ClaimAllocation['results'] extends readonly (infer R)[] | null ? R : never, catalog: DeviceCatalog): Result<PreparedDevice> {
  const field = `device ${r.pool}/${r.device}`;
  if (r.pool !== catalog.pool) return fail(field, 'unknownValue', `is in pool "${r.pool}"; this node's pool is "${catalog.pool}"`);
  const known = catalog.get(r.device);
  if (known === undefined) {
    return fail(field, 'unknownValue', `is not a device of this node; its devices are ${catalog.names().join(', ') || 'none (no GPU found)'}`);
  }
  let memoryBytes = known.memoryBytes;
  let cores = known.cores;
  const consumed = r.consumedCapacity ?? {};
  for (const [name, value] of Object.entries(consumed)) {
    const q = parseK8sQuantity(value, `${field} consumedCapacity.${name}`);
    if (!q.ok) return q;
    if (name === CAPACITY.memory) {
      if (!Number.isSafeInteger(q.value) || q.value <= 0) return fail(`${field} consumedCapacity.memory`, 'outOfRange', `is ${value}; expected a whole number of bytes greater than zero`);
      memoryBytes = q.value;
    } else if (name === CAPACITY.cores) {
      if (!Number.isInteger(q.value) || q.value < 0 || q.value > 100) return fail(`${field} consumedCapacity.cores`, 'outOfRange', `is ${value}; expected a whole number from 0 to 100 (hundredths of the GPU)`);
      cores = q.value;
    } else {
      return fail(`${field} consumedCapacity.${name}`, 'unknownValue', `is not a capacity of driver ${DRIVER_NAME}; its capacities are ${Object.values(CAPACITY).join(', ')}`);
    }
  }
  if (memoryBytes > known.memoryBytes) {
    return fail(`${field} memory`, 'exceedsCapacity', `asks for ${formatBytes(memoryBytes)}; the device has ${formatBytes(known.memoryBytes)}`);
  }
  return ok({
    request: r.request, pool: r.pool, device: r.device, shareId: r.shareID ?? null,
    gpuUuid: known.gpu.uuid, gpuIndex: known.gpu.index, gpuMemoryBytes: known.gpu.memoryTotalBytes, deviceNode: known.deviceNode, memoryBytes, cores,
  });
}

/** Refuses a claim whose slices do not fit beside the prepared ones (per GPU: memory, cores; per fixed device: one holder). */
function checkRoom(devices: readonly PreparedDevice[], catalog: DeviceCatalog, others: readonly PreparedClaim[]): Result<null> {
  const wanted = new Map<string, { memory: number; cores: number; gpuMemory: number; index: number }>();
  for (const d of devices) {
    const w = wanted.get(d.gpuUuid) ?? { memory: 0, cores: 0, gpuMemory: d.gpuMemoryBytes, index: d.gpuIndex };
    wanted.set(d.gpuUuid, { ...w, memory: w.memory + d.memoryBytes, cores: w.cores + d.cores });
    const holder = catalog.get(d.device)?.shared === false ? others.find((o) => o.devices.some((od) => od.device === d.device)) : undefined;
    if (holder !== undefined) {
      return fail(`device ${d.pool}/${d.device}`, 'conflict', `is already prepared for ResourceClaim ${holder.namespace}/${holder.name} (uid ${holder.uid}); a fixed slice has one holder`);
    }
  }
  for (const [uuid, w] of wanted) {
    const used = usageOnGpu(others, uuid);
    if (used.memory + w.memory > w.gpuMemory) {
      return fail(`gpu ${w.index} (${uuid})`, 'exceedsCapacity',
        `cannot hold ${formatBytes(w.memory)} more: ${formatBytes(used.memory)} of its ${formatBytes(w.gpuMemory)} are prepared for other claims (${formatBytes(w.gpuMemory - used.memory)} free)`);
    }
    if (used.cores + w.cores > 100) {
      return fail(`gpu ${w.index} (${uuid})`, 'exceedsCapacity', `cannot give ${w.cores}% more compute: ${used.cores}% is prepared for other claims (${100 - used.cores}% free)`);
    }
  }
  return ok(null);
}

/** What the prepared claims hold on one GPU: bytes, and hundredths of its compute. */
export function usageOnGpu(claims: Iterable<PreparedClaim>, gpuUuid: string): { memory: number; cores: number } {
  let memory = 0;
  let cores = 0;
  for (const c of claims) {
    for (const d of c.devices) {
      if (d.gpuUuid !== gpuUuid) continue;
      memory += d.memoryBytes;
      cores += d.cores;
    }
  }
  return { memory, cores };
}
