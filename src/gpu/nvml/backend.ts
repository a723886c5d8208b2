import { readFileSync } from 'node:fs';
import {
  ErrorCodes, GsError, modelName,
  type Gpu, type GpuLink, type GpuProcess, type GpuSystem, type MigDevice, type MigMode, type TopologyLevel,
} from '../../domain/index.js';
import type { GpuBackend } from '../backend.js';
import {
  CLOCK_EVENT_REASONS, NO_INSTANCE_ID, NVML, NVML_CLOCK_MEM, NVML_CLOCK_SM, NVML_DEVICE_NAME_V2_BUFFER_SIZE,
  NVML_DEVICE_UUID_V2_BUFFER_SIZE, NVML_MEMORY_ERROR_TYPE_CORRECTED, NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_NVLINK_MAX_LINKS,
  NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE, NVML_TEMPERATURE_GPU, NVML_VOLATILE_ECC, TOPOLOGY_LEVELS, UNAVAILABLE_CODES, VALUE_NOT_AVAILABLE_U64,
} from './codes.js';
import { XidWatch } from './xid.js';
import { cString, memoryV2Version, NvmlLibrary, processInfoLayout, toBigInt, type NvmlDevice, type NvmlFunction } from './library.js';

/** How many times to re-ask for the process list when processes start between the size query and the fill. */
const PROCESS_LIST_ATTEMPTS = 5;

export interface NvmlBackendOptions {
  /** Path or soname of libnvidia-ml; default `GPUSHARE_NVML_PATH`, else `libnvidia-ml.so.1`. */
  readonly path?: string;
  /** Reads /sys for the NUMA node where the driver does not say; replaced in tests. */
  readonly readSysfs?: (path: string) => string | null;
}

/**
 * Real GPUs through NVML. A field the GPU or driver cannot report is null; a GPU that fell off
 * the bus is listed with health `lost` rather than failing the whole reading. Critical XID
 * errors are watched through an event set polled at each reading (xid.ts).
 */
export class NvmlBackend implements GpuBackend {
  readonly kind = 'nvml' as const;
  readonly description: string;
  private readonly nvml: NvmlLibrary;
  private readonly readSysfs: (path: string) => string | null;
  private readonly xid: XidWatch;
  private closed = false;

  constructor(options: NvmlBackendOptions = {}) {
    this.nvml = NvmlLibrary.open(options.path ?? process.env['GPUSHARE_NVML_PATH'] ?? 'libnvidia-ml.so.1');
    this.readSysfs = options.readSysfs ?? readSysfsFile;
    this.xid = new XidWatch(this.nvml, (rc, fn) => this.check(rc, fn));
    const sys = this.system();
    this.description = `NVML ${sys.nvmlVersion ?? '?'} (driver ${sys.driverVersion ?? '?'}, CUDA ${sys.cudaDriverVersion ?? '?'}) from ${this.nvml.path}`;
  }

  system(): GpuSystem {
    this.assertOpen();
    const cuda = this.outInt('nvmlSystemGetCudaDriverVersion_v2');
    return {
      backend: 'nvml',
      driverVersion: this.outString('nvmlSystemGetDriverVersion', NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE),
      nvmlVersion: this.outString('nvmlSystemGetNVMLVersion', NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE),
      cudaDriverVersion: cuda === null ? null : `${Math.floor(cuda / 1000)}.${Math.floor((cuda % 1000) / 10)}`,
    };
  }

  gpus(): Gpu[] {
    this.assertOpen();
    const count = [0];
    this.check(this.nvml.call('nvmlDeviceGetCount_v2', count), 'nvmlDeviceGetCount_v2');
    const handles: Array<NvmlDevice | null> = [];
    for (let i = 0; i < count[0]!; i += 1) {
      const out: unknown[] = [null];
      const rc = this.nvml.call('nvmlDeviceGetHandleByIndex_v2', i, out);
      if (rc === NVML.SUCCESS) handles.push(out[0]);
      else if (rc === NVML.GPU_IS_LOST || UNAVAILABLE_CODES.has(rc)) handles.push(null);
      else this.check(rc, `nvmlDeviceGetHandleByIndex_v2(${i})`);
    }
    const busIds = handles.map((h) => (h === null ? null : this.pciInfo(h)?.busId ?? null));
    const uuids = handles.map((h) => (h === null ? LOST : this.deviceString(h, 'nvmlDeviceGetUUID', NVML_DEVICE_UUID_V2_BUFFER_SIZE)));
    this.xid.poll(handles.flatMap((handle, i) => {
      const uuid = uuids[i];
      return handle === null || typeof uuid !== 'string' ? [] : [{ handle, uuid }];
    }));
    return handles.map((h, index) => (h === null ? lostGpu(index) : this.readGpu(h, index, uuids[index] ?? null, handles, busIds)));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.xid.close();
    this.nvml.close();
  }

  private assertOpen(): void {
    if (this.closed) throw new GsError(ErrorCodes.internal, 'NVML backend used after close()');
  }

  private readGpu(dev: NvmlDevice, index: number, uuid: string | null | typeof LOST, handles: Array<NvmlDevice | null>, busIds: Array<string | null>): Gpu {
    if (uuid === LOST) return lostGpu(index, busIds[index] ?? null);
    const name = this.deviceString(dev, 'nvmlDeviceGetName', NVML_DEVICE_NAME_V2_BUFFER_SIZE);
    const memory = this.memory(dev);
    const util = this.out(dev, 'nvmlDeviceGetUtilizationRates', {}) as { gpu: number; memory: number } | null;
    const cc = this.computeCapability(dev);
    const mig = this.migMode(dev);
    const pciBusId = busIds[index] ?? null;
    const nameText = name === LOST || name === null ? 'unknown' : name;
    return {
      index,
      uuid: uuid ?? `unknown-${index}`,
      name: nameText,
      model: modelName(nameText, memory?.total ?? 0),
      health: 'ok',
      memoryTotalBytes: memory?.total ?? 0,
      memoryUsedBytes: memory?.used ?? 0,
      memoryFreeBytes: memory?.free ?? 0,
      memoryReservedBytes: memory?.reserved ?? null,
      utilizationGpu: util === null ? null : util.gpu / 100,
      utilizationMemory: util === null ? null : util.memory / 100,
      temperatureC: this.outUint(dev, 'nvmlDeviceGetTemperature', NVML_TEMPERATURE_GPU),
      powerDrawWatts: milliToUnit(this.outUint(dev, 'nvmlDeviceGetPowerUsage')),
      powerLimitWatts: milliToUnit(this.outUint(dev, 'nvmlDeviceGetEnforcedPowerLimit')),
      clockSmMHz: this.outUint(dev, 'nvmlDeviceGetClockInfo', NVML_CLOCK_SM),
      clockMemoryMHz: this.outUint(dev, 'nvmlDeviceGetClockInfo', NVML_CLOCK_MEM),
      maxClockSmMHz: this.outUint(dev, 'nvmlDeviceGetMaxClockInfo', NVML_CLOCK_SM),
      maxClockMemoryMHz: this.outUint(dev, 'nvmlDeviceGetMaxClockInfo', NVML_CLOCK_MEM),
      pciBusId,
      numaNode: this.numaNode(dev, pciBusId),
      computeCapability: cc,
      multiprocessorCount: this.attributes(dev)?.multiprocessorCount ?? null,
      migMode: mig,
      migDevices: mig === 'enabled' ? this.migDevices(dev) : [],
      processes: this.processes(dev),
      eccErrors: this.ecc(dev),
      clockEventReasons: this.clockEventReasons(dev),
      energyJoules: milliToUnit(numOrNull(this.outU64(dev, 'nvmlDeviceGetTotalEnergyConsumption'))),
      pcieReplays: this.outUint(dev, 'nvmlDeviceGetPcieReplayCounter'),
      ...this.xid.of(uuid ?? `unknown-${index}`),
      topology: this.links(dev, index, handles, busIds),
    };
  }

  private memory(dev: NvmlDevice): { total: number; free: number; used: number; reserved: number | null } | null {
    const v2 = { version: memoryV2Version(), total: 0, reserved: 0, free: 0, used: 0 };
    const rc = this.nvml.call('nvmlDeviceGetMemoryInfo_v2', dev, v2);
    if (rc === NVML.SUCCESS) {
      return { total: num(v2.total), free: num(v2.free), used: num(v2.used), reserved: num(v2.reserved) };
    }
    const v1 = this.out(dev, 'nvmlDeviceGetMemoryInfo', {}) as { total: unknown; free: unknown; used: unknown } | null;
    return v1 === null ? null : { total: num(v1.total), free: num(v1.free), used: num(v1.used), reserved: null };
  }

  private computeCapability(dev: NvmlDevice): string | null {
    const major = [0];
    const minor = [0];
    const rc = this.nvml.call('nvmlDeviceGetCudaComputeCapability', dev, major, minor);
    return this.tolerate(rc, 'nvmlDeviceGetCudaComputeCapability') ? `${major[0]}.${minor[0]}` : null;
  }

  private migMode(dev: NvmlDevice): MigMode {
    const current = [0];
    const pending = [0];
    const rc = this.nvml.call('nvmlDeviceGetMigMode', dev, current, pending);
    if (!this.tolerate(rc, 'nvmlDeviceGetMigMode')) return 'unsupported';
    return current[0] === 1 ? 'enabled' : 'disabled';
  }

  private migDevices(dev: NvmlDevice): MigDevice[] {
    const max = this.outUint(dev, 'nvmlDeviceGetMaxMigDeviceCount') ?? 0;
    const devices: MigDevice[] = [];
    for (let i = 0; i < max; i += 1) {
      const out: unknown[] = [null];
      const rc = this.nvml.call('nvmlDeviceGetMigDeviceHandleByIndex', dev, i, out);
      if (rc === NVML.NOT_FOUND || rc === NVML.INVALID_ARGUMENT) continue;
      if (!this.tolerate(rc, 'nvmlDeviceGetMigDeviceHandleByIndex')) continue;
      const mig = out[0];
      const name = this.deviceText(mig, 'nvmlDeviceGetName', NVML_DEVICE_NAME_V2_BUFFER_SIZE) ?? 'unknown';
      const memory = this.memory(mig);
      devices.push({
        index: i,
        uuid: this.deviceText(mig, 'nvmlDeviceGetUUID', NVML_DEVICE_UUID_V2_BUFFER_SIZE) ?? `unknown-mig-${i}`,
        name,
        profile: /MIG\s+(\S+)\s*$/.exec(name)?.[1] ?? null,
        gpuInstanceId: this.outUint(mig, 'nvmlDeviceGetGpuInstanceId') ?? -1,
        computeInstanceId: this.outUint(mig, 'nvmlDeviceGetComputeInstanceId') ?? -1,
        memoryTotalBytes: memory?.total ?? 0,
        memoryUsedBytes: memory?.used ?? 0,
        multiprocessorCount: this.attributes(mig)?.multiprocessorCount ?? null,
      });
    }
    return devices;
  }

  /**
   * The compute process list, retried when it grows between NVML's size answer and our fill:
   * NVML answers INSUFFICIENT_SIZE with the new count, and we ask again with room to spare.
   */
  private processes(dev: NvmlDevice): GpuProcess[] {
    const layout = processInfoLayout();
    let capacity = 0;
    for (let attempt = 0; attempt < PROCESS_LIST_ATTEMPTS; attempt += 1) {
      const count = [capacity];
      const buf = Buffer.alloc(Math.max(1, capacity) * layout.size);
      const rc = this.nvml.call('nvmlDeviceGetComputeRunningProcesses_v3', dev, count, capacity === 0 ? null : buf);
      if (rc === NVML.INSUFFICIENT_SIZE) {
        capacity = count[0]! + 4;
        continue;
      }
      if (!this.tolerate(rc, 'nvmlDeviceGetComputeRunningProcesses_v3')) return [];
      const list: GpuProcess[] = [];
      for (let i = 0; i < count[0]!; i += 1) {
        const base = i * layout.size;
        const mem = buf.readBigUInt64LE(base + layout.usedGpuMemory);
        const gi = buf.readUInt32LE(base + layout.gpuInstanceId);
        const ci = buf.readUInt32LE(base + layout.computeInstanceId);
        list.push({
          pid: buf.readUInt32LE(base + layout.pid),
          memoryBytes: mem === VALUE_NOT_AVAILABLE_U64 ? null : Number(mem),
          gpuInstanceId: gi === NO_INSTANCE_ID ? null : gi,
          computeInstanceId: ci === NO_INSTANCE_ID ? null : ci,
        });
      }
      return list;
    }
    throw new GsError(ErrorCodes.nvmlCall, `the process list of a GPU kept growing over ${PROCESS_LIST_ATTEMPTS} attempts to read it`);
  }

  private ecc(dev: NvmlDevice): { corrected: number; uncorrected: number } | null {
    const corrected = this.outU64(dev, 'nvmlDeviceGetTotalEccErrors', NVML_MEMORY_ERROR_TYPE_CORRECTED, NVML_VOLATILE_ECC);
    const uncorrected = this.outU64(dev, 'nvmlDeviceGetTotalEccErrors', NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_VOLATILE_ECC);
    return corrected === null || uncorrected === null ? null : { corrected: Number(corrected), uncorrected: Number(uncorrected) };
  }

  private clockEventReasons(dev: NvmlDevice): string[] | null {
    // Drivers from r535 call it "clocks event reasons"; older ones only export the throttle name.
    const fn: NvmlFunction = this.nvml.has('nvmlDeviceGetCurrentClocksEventReasons') ? 'nvmlDeviceGetCurrentClocksEventReasons' : 'nvmlDeviceGetCurrentClocksThrottleReasons';
    const mask = this.outU64(dev, fn);
    return mask === null ? null : CLOCK_EVENT_REASONS.filter(([bit]) => (mask & bit) !== 0n).map(([, name]) => name);
  }

  private numaNode(dev: NvmlDevice, busId: string | null): number | null {
    const node = this.outUint(dev, 'nvmlDeviceGetNumaNodeId');
    if (node !== null) return node;
    if (busId === null) return null;
    // Older drivers: the kernel knows. sysfs names the device by a 4-digit domain, lowercase.
    const text = this.readSysfs(`/sys/bus/pci/devices/${sysfsPciName(busId)}/numa_node`);
    const n = text === null ? NaN : Number(text.trim());
    return Number.isInteger(n) && n >= 0 ? n : null;
  }

  private pciInfo(dev: NvmlDevice): { busId: string } | null {
    const info = this.out(dev, 'nvmlDeviceGetPciInfo_v3', {}) as { busId: string } | null;
    return info === null ? null : { busId: info.busId };
  }

  private attributes(dev: NvmlDevice): { multiprocessorCount: number } | null {
    return this.out(dev, 'nvmlDeviceGetAttributes_v2', {}) as { multiprocessorCount: number } | null;
  }

  /** PCIe path level to every other GPU, upgraded to NV when NVLinks join them (directly or through NVSwitches). */
  private links(dev: NvmlDevice, index: number, handles: Array<NvmlDevice | null>, busIds: Array<string | null>): GpuLink[] {
    const nvlinks = this.nvlinkPeers(dev, busIds);
    const links: GpuLink[] = [];
    handles.forEach((other, j) => {
      if (j === index || other === null) return;
      const level = [0];
      const rc = this.nvml.call('nvmlDeviceGetTopologyCommonAncestor', dev, other, level);
      const pcie: TopologyLevel = this.tolerate(rc, 'nvmlDeviceGetTopologyCommonAncestor') ? TOPOLOGY_LEVELS.get(level[0]!) ?? 'SYS' : 'SYS';
      const direct = nvlinks.direct.get(j) ?? 0;
      const switched = nvlinks.switched > 0 ? Math.min(nvlinks.switched, this.nvlinkPeers(other, busIds).switched) : 0;
      const count = direct + switched;
      links.push({ gpu: j, level: count > 0 ? 'NV' : pcie, nvlinks: count });
    });
    return links;
  }

  private nvlinkPeers(dev: NvmlDevice, busIds: Array<string | null>): { direct: Map<number, number>; switched: number } {
    const direct = new Map<number, number>();
    let switched = 0;
    for (let link = 0; link < NVML_NVLINK_MAX_LINKS; link += 1) {
      const active = [0];
      if (this.nvml.call('nvmlDeviceGetNvLinkState', dev, link, active) !== NVML.SUCCESS || active[0] !== 1) continue;
      const remote = {} as { busId?: string };
      if (this.nvml.call('nvmlDeviceGetNvLinkRemotePciInfo_v2', dev, link, remote) !== NVML.SUCCESS) continue;
      const peer = busIds.findIndex((b) => b !== null && remote.busId !== undefined && samePciDevice(b, remote.busId));
      if (peer >= 0) direct.set(peer, (direct.get(peer) ?? 0) + 1);
      else switched += 1;
    }
    return { direct, switched };
  }

  // --- small typed wrappers over out-parameter calls ------------------------------------

  /** Calls `fn(dev, ...args, out)` where the out-parameter is a struct; null when unavailable. */
  private out(dev: NvmlDevice, fn: NvmlFunction, target: object): object | null {
    return this.tolerate(this.nvml.call(fn, dev, target), fn) ? target : null;
  }

  private outUint(dev: NvmlDevice, fn: NvmlFunction, ...args: unknown[]): number | null {
    const out = [0];
    return this.tolerate(this.nvml.call(fn, dev, ...args, out), fn) ? out[0]! : null;
  }

  private outU64(dev: NvmlDevice, fn: NvmlFunction, ...args: unknown[]): bigint | null {
    const out: unknown[] = [0];
    return this.tolerate(this.nvml.call(fn, dev, ...args, out), fn) ? toBigInt(out[0]) : null;
  }

  private outInt(fn: NvmlFunction): number | null {
    const out = [0];
    return this.tolerate(this.nvml.call(fn, out), fn) ? out[0]! : null;
  }

  private outString(fn: NvmlFunction, size: number): string | null {
    const buf = Buffer.alloc(size);
    return this.tolerate(this.nvml.call(fn, buf, size), fn) ? cString(buf) : null;
  }

  /** A device string, or LOST when the GPU fell off the bus. */
  private deviceString(dev: NvmlDevice, fn: NvmlFunction, size: number): string | null | typeof LOST {
    const buf = Buffer.alloc(size);
    const rc = this.nvml.call(fn, dev, buf, size);
    if (rc === NVML.GPU_IS_LOST) return LOST;
    return this.tolerate(rc, fn) ? cString(buf) : null;
  }

  private deviceText(dev: NvmlDevice, fn: NvmlFunction, size: number): string | null {
    const text = this.deviceString(dev, fn, size);
    return text === LOST ? null : text;
  }

  /** True on success; false when the value is simply not available here; throws on real failures. */
  private tolerate(rc: number, fn: string): boolean {
    if (rc === NVML.SUCCESS) return true;
    if (UNAVAILABLE_CODES.has(rc) || rc === NVML.GPU_IS_LOST) return false;
    return this.check(rc, fn);
  }

  private check(rc: number, fn: string): true {
    if (rc === NVML.SUCCESS) return true;
    const code = rc === NVML.GPU_IS_LOST ? ErrorCodes.gpuLost : ErrorCodes.nvmlCall;
    throw new GsError(code, `${fn} failed: ${this.nvml.errorString(rc)} (NVML error ${rc})`, { details: { function: fn, nvmlReturn: rc } });
  }
}

const LOST = Symbol('gpu lost');

/** What we can say of a GPU NVML lost: its index, perhaps where it sat, and that it needs attention. */
function lostGpu(index: number, pciBusId: string | null = null): Gpu {
  return {
    index, uuid: `unknown-${index}`, name: 'unknown (GPU is lost)', model: 'unknown', health: 'lost',
    memoryTotalBytes: 0, memoryUsedBytes: 0, memoryFreeBytes: 0, memoryReservedBytes: null,
    utilizationGpu: null, utilizationMemory: null, temperatureC: null, powerDrawWatts: null, powerLimitWatts: null,
    clockSmMHz: null, clockMemoryMHz: null, maxClockSmMHz: null, maxClockMemoryMHz: null, pciBusId, numaNode: null,
    computeCapability: null, multiprocessorCount: null, migMode: 'unsupported', migDevices: [], processes: [],
    eccErrors: null, clockEventReasons: null, energyJoules: null, pcieReplays: null, xidErrors: null, lastXid: null, topology: [],
  };
}

function num(v: unknown): number {
  return Number(toBigInt(v));
}

function numOrNull(v: bigint | null): number | null {
  return v === null ? null : Number(v);
}

function milliToUnit(v: number | null): number | null {
  return v === null ? null : v / 1000;
}

/** `00000000:19:00.0` -> `0000:19:00.0` (sysfs uses a 4-digit domain and lowercase hex). */
export function sysfsPciName(busId: string): string {
  const [domain = '0', ...rest] = busId.toLowerCase().split(':');
  return [domain.slice(-4).padStart(4, '0'), ...rest].join(':');
}

function samePciDevice(a: string, b: string): boolean {
  return sysfsPciName(a) === sysfsPciName(b);
}

function readSysfsFile(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}
