/**
 * ResourceSlices for a node's GPUs: a pure function from the GPU inventory and a layout choice
 * to the resource.k8s.io/v1 objects the publisher keeps in the API server.
 *
 * Two layouts (docs/kubernetes.md, "DRA: ResourceSlices and DeviceClasses", gives the trade-off):
 * - `consumable` (KEP-5075, feature gate DRAConsumableCapacity): each GPU is one device that
 *   many claims share (`allowMultipleAllocations`); claims ask for `memory` and `cores` and the
 *   scheduler subtracts what each allocation consumed.
 * - `fixed`: each GPU is a counter set (its memory and cores; KEP-4815, feature gate
 *   DRAPartitionableDevices) and a fixed menu of partition devices (the whole GPU, halves,
 *   quarters, ...) that consume from it, so the default kube-scheduler never allocates more of
 *   a GPU than it has; or, without counters, one way of cutting each GPU into equal parts.
 *
 * The devices themselves (names, GPUs, capacities) come from `publishedDevices`, which the
 * kubelet plugin's catalog (prepare.ts) is built from too: what is prepared is what is published.
 */
import type { V1CounterSet, V1Device, V1ResourceSlice } from '@kubernetes/client-node';
import { ErrorCodes, GsError } from '../../domain/errors.js';
import type { Gpu } from '../../domain/gpu.js';
import { CAPACITY, DRIVER_NAME, gpuDeviceName, partitionDeviceName, type SliceLayout } from './names.js';
import { gpuAttributes, quantity, type DriverFacts } from './slices-attributes.js';
import { LIMITS, checkPoolLimits } from './slices-limits.js';

const MIB = 2 ** 20;
/** Cores of a whole GPU (CAPACITY.cores is in hundredths of a GPU). */
export const WHOLE_GPU_CORES = 100;

export const SLICE_LAYOUTS: readonly SliceLayout[] = ['consumable', 'fixed'];

/** Consumable capacity: the steps a claim's request is rounded up to. */
export interface ConsumableLayout {
  readonly kind: 'consumable';
  /** Memory is granted in multiples of this many bytes (a whole number of MiB). */
  readonly memoryStepBytes: number;
  /** Cores are granted in multiples of this (a divisor of 100). */
  readonly coresStep: number;
}

/** Fixed partitions: each GPU offered whole and cut into each of these numbers of equal parts. */
export interface FixedLayout {
  readonly kind: 'fixed';
  /** e.g. [1, 2, 4, 8]: the whole GPU, halves, quarters and eighths. */
  readonly partitions: readonly number[];
  /** A partition's memory is rounded down to a multiple of this (a whole number of MiB). */
  readonly memoryStepBytes: number;
  /**
   * Publish a counter set per GPU that partitions consume (KEP-4815, feature gate
   * DRAPartitionableDevices). Without it a GPU may only be cut one way (one partition count),
   * so its parts never overlap: an API server with the gate off drops counters, and mixed
   * sizes would then let the scheduler hand out the whole GPU and its halves at once.
   */
  readonly sharedCounters: boolean;
}

export type LayoutConfig = ConsumableLayout | FixedLayout;

/**
 * 256 MiB: small enough that an inference pod asking for 1 GiB or 20 GiB gets what it asked
 * for (both are multiples), large enough that an 80 GB GPU has ~320 distinct grants rather than
 * 80,000, and a multiple of the 2 MiB pages CUDA allocates in, so no grant splits a page.
 */
export const DEFAULT_MEMORY_STEP_BYTES = 256 * MIB;
/** 1 core (1% of the GPU): HAMi's gpucores unit, so any gpucores value maps without rounding. */
export const DEFAULT_CORES_STEP = 1;
/** The whole GPU, halves, quarters, eighths: 15 devices per GPU, 4 GPUs to a slice of devices. */
export const DEFAULT_PARTITIONS: readonly number[] = [1, 2, 4, 8];

/** Layout settings as configuration gives them (every field but `layout` optional). */
export interface LayoutSettings {
  readonly layout: string;
  readonly memoryStepBytes?: number;
  readonly coresStep?: number;
  readonly partitions?: readonly number[];
  readonly sharedCounters?: boolean;
}

function invalid(message: string, details: Record<string, unknown>): never {
  throw new GsError(ErrorCodes.invalidArgument, message, { details });
}

function checkMemoryStep(step: number): number {
  if (!Number.isSafeInteger(step) || step <= 0 || step % MIB !== 0) {
    invalid(`memory step ${step} bytes is not accepted: it must be a positive whole number of MiB (1048576 bytes), e.g. 268435456 for 256 MiB`, { memoryStepBytes: step });
  }
  return step;
}

/** Cores steps a range policy can use: divisors of 100 that leave room for min + step <= 100. */
const CORES_STEPS = [1, 2, 4, 5, 10, 20, 25, 50];

/** Validated layout configuration; a clear GsError (GS_ERR_INVALID_ARGUMENT) naming what is accepted otherwise. */
export function layoutConfig(settings: LayoutSettings): LayoutConfig {
  const memoryStepBytes = checkMemoryStep(settings.memoryStepBytes ?? DEFAULT_MEMORY_STEP_BYTES);
  if (settings.layout === 'consumable') {
    if (settings.partitions !== undefined || settings.sharedCounters !== undefined) {
      invalid(`partitions and sharedCounters apply to the fixed layout only; the consumable layout takes memoryStepBytes and coresStep`, { layout: settings.layout });
    }
    const coresStep = settings.coresStep ?? DEFAULT_CORES_STEP;
    if (!CORES_STEPS.includes(coresStep)) {
      invalid(`cores step ${coresStep} is not accepted: it must divide 100 and be at most 50 (one of ${CORES_STEPS.join(', ')})`, { coresStep });
    }
    return { kind: 'consumable', memoryStepBytes, coresStep };
  }
  if (settings.layout === 'fixed') {
    if (settings.coresStep !== undefined) invalid(`coresStep applies to the consumable layout only; the fixed layout takes partitions and memoryStepBytes`, { layout: settings.layout });
    const partitions = settings.partitions ?? DEFAULT_PARTITIONS;
    const bad = partitions.find((p) => !Number.isInteger(p) || p < 1 || p > WHOLE_GPU_CORES);
    if (partitions.length === 0 || bad !== undefined) {
      invalid(`partitions [${partitions.join(', ')}] are not accepted: give one or more whole numbers of parts from 1 to 100, e.g. [1, 2, 4, 8]`, { partitions });
    }
    if (new Set(partitions).size !== partitions.length) invalid(`partitions [${partitions.join(', ')}] name a count twice`, { partitions });
    const perGpu = partitions.reduce((a, b) => a + b, 0);
    if (perGpu > LIMITS.devicesPerSliceWithCounters) {
      invalid(`partitions [${partitions.join(', ')}] make ${perGpu} devices per GPU: the API allows at most ${LIMITS.devicesPerSliceWithCounters} in a slice where devices consume counters`, { partitions });
    }
    const sharedCounters = settings.sharedCounters ?? true;
    if (!sharedCounters && partitions.length !== 1) {
      invalid(`partitions [${partitions.join(', ')}] overlap without shared counters: give one partition count (e.g. [4]) or turn sharedCounters on (needs the DRAPartitionableDevices feature gate)`, { partitions });
    }
    return { kind: 'fixed', partitions: [...partitions].sort((a, b) => a - b), memoryStepBytes, sharedCounters };
  }
  return invalid(`slice layout '${settings.layout}' is not known: accepted are ${SLICE_LAYOUTS.join(', ')}`, { layout: settings.layout });
}

/** What the slices describe: the node's GPUs and the driver-wide facts beside them. */
export interface SliceInventory {
  readonly gpus: readonly Gpu[];
  readonly driver: DriverFacts;
}

export interface SliceInput {
  readonly nodeName: string;
  readonly inventory: SliceInventory;
  readonly layout: LayoutConfig;
  /** The pool generation every slice carries (the publisher bumps it on every change). */
  readonly generation: number;
  readonly driverName?: string;
}

/** The name of a node's `index`-th slice of this driver: deterministic, so a create is idempotent. */
export function sliceName(nodeName: string, index: number, driverName: string = DRIVER_NAME): string {
  return `${nodeName}-${driverName}-${index}`;
}

/** One GPU's share of a slice: its devices and (fixed layout) its counter set. */
interface GpuGroup {
  readonly devices: V1Device[];
  readonly counterSets: V1CounterSet[];
}

function roundDown(value: number, step: number): number {
  return Math.floor(value / step) * step;
}

/**
 * A device as the pool publishes it: its name, its GPU and the capacities its slice carries
 * (memory bytes and cores exactly as `capacity.memory`/`capacity.cores` say). The kubelet
 * plugin's catalog (prepare.ts) is built from these too, so what it prepares is what was
 * published, by construction.
 */
export interface PublishedDevice {
  readonly name: string;
  readonly gpu: Gpu;
  readonly memoryBytes: number;
  /** Hundredths of the GPU's compute (100 = all of it). */
  readonly cores: number;
  /** Consumable layout: many claims share the device (`allowMultipleAllocations`), each consuming part of it. */
  readonly shared: boolean;
}

function consumableDevices(gpu: Gpu, layout: ConsumableLayout): PublishedDevice[] {
  const step = layout.memoryStepBytes;
  // The API wants min + step <= capacity; min is one step, so a GPU needs two.
  if (gpu.memoryTotalBytes < 2 * step) {
    invalid(`GPU ${gpu.index} (${gpu.uuid}) has ${gpu.memoryTotalBytes} bytes: less than two memory steps of ${step}; choose a smaller memoryStepBytes`, { gpu: gpu.uuid, memoryStepBytes: step });
  }
  return [{ name: gpuDeviceName(gpu.index), gpu, memoryBytes: gpu.memoryTotalBytes, cores: WHOLE_GPU_CORES, shared: true }];
}

function fixedDevices(gpu: Gpu, layout: FixedLayout): PublishedDevice[] {
  const devices: PublishedDevice[] = [];
  for (const parts of layout.partitions) {
    // Rounded down: parts never add up to more than the GPU, whatever the division leaves.
    const memoryBytes = parts === 1 ? gpu.memoryTotalBytes : roundDown(gpu.memoryTotalBytes / parts, layout.memoryStepBytes);
    const cores = Math.floor(WHOLE_GPU_CORES / parts);
    if (memoryBytes <= 0) {
      invalid(`GPU ${gpu.index} (${gpu.uuid}) cut in ${parts} leaves less than one memory step of ${layout.memoryStepBytes} bytes per part; use fewer parts or a smaller memoryStepBytes`, { gpu: gpu.uuid, parts });
    }
    for (let part = 0; part < parts; part += 1) devices.push({ name: partitionDeviceName(gpu.index, parts, part), gpu, memoryBytes, cores, shared: false });
  }
  return devices;
}

/**
 * The devices `layout` makes of these GPUs, in GPU order (every GPU given, healthy or not:
 * buildResourceSlices gives only the healthy ones). A GsError for an inventory or layout that
 * cannot be published (an index twice, a GPU too small for the layout's steps).
 */
export function publishedDevices(gpus: readonly Gpu[], layout: LayoutConfig): PublishedDevice[] {
  checkInventory(gpus);
  return [...gpus].sort((a, b) => a.index - b.index).flatMap((gpu) => gpuDevices(gpu, layout));
}

/** One GPU's share of publishedDevices. */
function gpuDevices(gpu: Gpu, layout: LayoutConfig): PublishedDevice[] {
  return layout.kind === 'consumable' ? consumableDevices(gpu, layout) : fixedDevices(gpu, layout);
}

function consumableDevice(device: PublishedDevice, attributes: V1Device['attributes'], layout: ConsumableLayout): V1Device {
  const step = layout.memoryStepBytes;
  const grantable = roundDown(device.memoryBytes, step);
  return {
    name: device.name,
    attributes,
    allowMultipleAllocations: true,
    capacity: {
      // default = everything: a claim that names no amount (e.g. one for the whole-GPU class)
      // gets the GPU to itself rather than a token share it never asked for.
      [CAPACITY.memory]: {
        value: quantity(device.memoryBytes),
        requestPolicy: { _default: quantity(grantable), validRange: { min: quantity(step), step: quantity(step), max: quantity(grantable) } },
      },
      [CAPACITY.cores]: {
        value: quantity(device.cores),
        requestPolicy: {
          _default: quantity(device.cores),
          validRange: { min: quantity(layout.coresStep), step: quantity(layout.coresStep), max: quantity(device.cores) },
        },
      },
    },
  };
}

/** The fixed layout's counter set of a GPU (its memory and cores, which its partitions consume). */
function counterSetName(gpu: Gpu): string {
  return `gpu-${gpu.index}`;
}

type Amounts = Record<string, { value: string }>;

function fixedDevice(device: PublishedDevice, attributes: V1Device['attributes'], amounts: Amounts, counterSet: string | null): V1Device {
  return {
    name: device.name,
    attributes,
    capacity: amounts,
    ...(counterSet === null ? {} : { consumesCounters: [{ counterSet, counters: amounts }] }),
  };
}

/** One GPU's published devices with its attributes, and (fixed layout, shared counters) its counter set. */
function gpuGroup(gpu: Gpu, driver: DriverFacts, layout: LayoutConfig): GpuGroup {
  const attributes = gpuAttributes(gpu, driver);
  const published = gpuDevices(gpu, layout);
  if (layout.kind === 'consumable') return { devices: published.map((d) => consumableDevice(d, attributes, layout)), counterSets: [] };
  const counterSet = layout.sharedCounters ? counterSetName(gpu) : null;
  // The parts of one count come one after another with the same amounts: one object (one
  // quantity formatting) for them all.
  let last: { memoryBytes: number; cores: number; amounts: Amounts } | null = null;
  const devices = published.map((d) => {
    if (last === null || last.memoryBytes !== d.memoryBytes || last.cores !== d.cores) {
      last = { memoryBytes: d.memoryBytes, cores: d.cores, amounts: { [CAPACITY.memory]: { value: quantity(d.memoryBytes) }, [CAPACITY.cores]: { value: quantity(d.cores) } } };
    }
    return fixedDevice(d, attributes, last.amounts, counterSet);
  });
  if (counterSet === null) return { devices, counterSets: [] };
  const counters = { [CAPACITY.memory]: { value: quantity(gpu.memoryTotalBytes) }, [CAPACITY.cores]: { value: quantity(WHOLE_GPU_CORES) } };
  return { devices, counterSets: [{ name: counterSet, counters }] };
}

/** Items packed in order into as few bins as `fits` allows (a bin never starts empty-handed). */
function pack<T>(items: readonly T[], fits: (bin: readonly T[], next: T) => boolean): T[][] {
  const bins: T[][] = [];
  let current: T[] = [];
  for (const item of items) {
    if (current.length > 0 && !fits(current, item)) {
      bins.push(current);
      current = [];
    }
    current.push(item);
  }
  if (current.length > 0) bins.push(current);
  return bins;
}

/** One slice's content: devices or counter sets (the API takes them in separate slices). */
type SliceContent = { readonly devices: V1Device[] } | { readonly sharedCounters: V1CounterSet[] };

/**
 * Counter sets first (8 to a slice), then devices, whole GPUs to a slice, at most 128 devices
 * (64 where they consume counters).
 */
function sliceContents(groups: readonly GpuGroup[]): SliceContent[] {
  const sets = groups.flatMap((g) => g.counterSets);
  const maxDevices = sets.length > 0 ? LIMITS.devicesPerSliceWithCounters : LIMITS.devicesPerSlice;
  const counted = (bin: readonly GpuGroup[]) => bin.reduce((n, g) => n + g.devices.length, 0);
  const counterSlices = pack(sets, (bin) => bin.length < LIMITS.counterSetsPerSlice).map((sharedCounters) => ({ sharedCounters }));
  const deviceSlices = pack(groups, (bin, next) => counted(bin) + next.devices.length <= maxDevices).map((bin) => ({ devices: bin.flatMap((g) => g.devices) }));
  return [...counterSlices, ...deviceSlices];
}

function checkInventory(gpus: readonly Gpu[]): void {
  const seen = new Map<string, number>();
  const indexes = new Set<number>();
  for (const gpu of gpus) {
    const earlier = seen.get(gpu.uuid);
    if (earlier !== undefined) {
      invalid(`GPU inventory lists UUID ${gpu.uuid} twice (GPUs ${earlier} and ${gpu.index}): every GPU must have its own UUID`, { uuid: gpu.uuid });
    }
    if (indexes.has(gpu.index)) invalid(`GPU inventory lists index ${gpu.index} twice: indexes name devices and must be unique`, { index: gpu.index });
    seen.set(gpu.uuid, gpu.index);
    indexes.add(gpu.index);
  }
}

/**
 * The node's ResourceSlices: one pool named after the node, split into as many slices as the
 * API's limits need, every one carrying `generation` and the pool's slice count. A GPU that is
 * not healthy is left out (its devices leave the pool, so nothing new is allocated on it);
 * claims already allocated on it keep their allocation. No GPU, no slice.
 */
export function buildResourceSlices(input: SliceInput): V1ResourceSlice[] {
  const driverName = input.driverName ?? DRIVER_NAME;
  const { gpus, driver } = input.inventory;
  checkInventory(gpus);
  if (!Number.isSafeInteger(input.generation) || input.generation < 0) invalid(`pool generation ${input.generation} must be a whole number >= 0`, { generation: input.generation });
  const healthy = [...gpus].filter((g) => g.health === 'ok').sort((a, b) => a.index - b.index);
  const layout = input.layout;
  // Per GPU, the devices publishedDevices(healthy, layout) lists (the inventory is checked above).
  const groups = healthy.map((gpu) => gpuGroup(gpu, driver, layout));
  const contents = sliceContents(groups);
  const slices = contents.map((content, index): V1ResourceSlice => ({
    apiVersion: 'resource.k8s.io/v1',
    kind: 'ResourceSlice',
    metadata: { name: sliceName(input.nodeName, index, driverName) },
    spec: {
      driver: driverName,
      nodeName: input.nodeName,
      pool: { name: input.nodeName, generation: input.generation, resourceSliceCount: contents.length },
      ...content,
    },
  }));
  checkPoolLimits(slices);
  return slices;
}
