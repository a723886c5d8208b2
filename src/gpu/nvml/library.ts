import koffi from 'koffi';
import { ErrorCodes, GsError } from '../../domain/index.js';
import { NVML } from './codes.js';

/** Opaque device handle as koffi hands it back. */
export type NvmlDevice = unknown;

/**
 * Struct layouts as nvml.h defines them. They are registered with koffi once per process
 * (koffi's type names are global), the first time a library is opened.
 */
function defineTypes() {
  return {
    device: koffi.pointer('nvmlDevice_t', koffi.opaque()),
    eventSet: koffi.pointer('nvmlEventSet_t', koffi.opaque()),
    eventData: koffi.struct('nvmlEventData_t', { device: 'nvmlDevice_t', eventType: 'uint64_t', eventData: 'uint64_t', gpuInstanceId: 'uint32_t', computeInstanceId: 'uint32_t' }),
    memory: koffi.struct('nvmlMemory_t', { total: 'uint64_t', free: 'uint64_t', used: 'uint64_t' }),
    memoryV2: koffi.struct('nvmlMemory_v2_t', { version: 'uint32_t', total: 'uint64_t', reserved: 'uint64_t', free: 'uint64_t', used: 'uint64_t' }),
    utilization: koffi.struct('nvmlUtilization_t', { gpu: 'uint32_t', memory: 'uint32_t' }),
    pciInfo: koffi.struct('nvmlPciInfo_t', {
      busIdLegacy: koffi.array('char', 16, 'String'),
      domain: 'uint32_t', bus: 'uint32_t', device: 'uint32_t', pciDeviceId: 'uint32_t', pciSubSystemId: 'uint32_t',
      busId: koffi.array('char', 32, 'String'),
    }),
    processInfo: koffi.struct('nvmlProcessInfo_t', { pid: 'uint32_t', usedGpuMemory: 'uint64_t', gpuInstanceId: 'uint32_t', computeInstanceId: 'uint32_t' }),
    attributes: koffi.struct('nvmlDeviceAttributes_t', {
      multiprocessorCount: 'uint32_t', sharedCopyEngineCount: 'uint32_t', sharedDecoderCount: 'uint32_t', sharedEncoderCount: 'uint32_t',
      sharedJpegCount: 'uint32_t', sharedOfaCount: 'uint32_t', gpuInstanceSliceCount: 'uint32_t', computeInstanceSliceCount: 'uint32_t',
      memorySizeMB: 'uint64_t',
    }),
  };
}
let types: ReturnType<typeof defineTypes> | undefined;

/** NVML_STRUCT_VERSION(Memory, 2): the struct's size in the low bits, its version in the top byte. */
export function memoryV2Version(): number {
  types ??= defineTypes();
  return (koffi.sizeof(types.memoryV2) | (2 << 24)) >>> 0;
}

export function processInfoLayout(): { size: number; pid: number; usedGpuMemory: number; gpuInstanceId: number; computeInstanceId: number } {
  types ??= defineTypes();
  const t = types.processInfo;
  return {
    size: koffi.sizeof(t),
    pid: koffi.offsetof(t, 'pid'),
    usedGpuMemory: koffi.offsetof(t, 'usedGpuMemory'),
    gpuInstanceId: koffi.offsetof(t, 'gpuInstanceId'),
    computeInstanceId: koffi.offsetof(t, 'computeInstanceId'),
  };
}

/**
 * Prototypes of every NVML entry point we call. Versioned names (`_v2`, `_v3`) are the ones
 * the real header maps the plain names to, so we get the same ABI a C program would.
 */
const PROTOTYPES = {
  nvmlInit_v2: 'int nvmlInit_v2()',
  nvmlShutdown: 'int nvmlShutdown()',
  nvmlErrorString: 'const char *nvmlErrorString(int result)',
  nvmlSystemGetDriverVersion: 'int nvmlSystemGetDriverVersion(_Out_ uint8_t *version, unsigned int length)',
  nvmlSystemGetNVMLVersion: 'int nvmlSystemGetNVMLVersion(_Out_ uint8_t *version, unsigned int length)',
  nvmlSystemGetCudaDriverVersion_v2: 'int nvmlSystemGetCudaDriverVersion_v2(_Out_ int *version)',
  nvmlDeviceGetCount_v2: 'int nvmlDeviceGetCount_v2(_Out_ unsigned int *count)',
  nvmlDeviceGetHandleByIndex_v2: 'int nvmlDeviceGetHandleByIndex_v2(unsigned int index, _Out_ nvmlDevice_t *device)',
  nvmlDeviceGetUUID: 'int nvmlDeviceGetUUID(nvmlDevice_t device, _Out_ uint8_t *uuid, unsigned int length)',
  nvmlDeviceGetName: 'int nvmlDeviceGetName(nvmlDevice_t device, _Out_ uint8_t *name, unsigned int length)',
  nvmlDeviceGetMemoryInfo: 'int nvmlDeviceGetMemoryInfo(nvmlDevice_t device, _Out_ nvmlMemory_t *memory)',
  nvmlDeviceGetMemoryInfo_v2: 'int nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, _Inout_ nvmlMemory_v2_t *memory)',
  nvmlDeviceGetUtilizationRates: 'int nvmlDeviceGetUtilizationRates(nvmlDevice_t device, _Out_ nvmlUtilization_t *utilization)',
  nvmlDeviceGetTemperature: 'int nvmlDeviceGetTemperature(nvmlDevice_t device, int sensorType, _Out_ unsigned int *temp)',
  nvmlDeviceGetPowerUsage: 'int nvmlDeviceGetPowerUsage(nvmlDevice_t device, _Out_ unsigned int *power)',
  nvmlDeviceGetEnforcedPowerLimit: 'int nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device, _Out_ unsigned int *limit)',
  nvmlDeviceGetClockInfo: 'int nvmlDeviceGetClockInfo(nvmlDevice_t device, int type, _Out_ unsigned int *clock)',
  nvmlDeviceGetMaxClockInfo: 'int nvmlDeviceGetMaxClockInfo(nvmlDevice_t device, int type, _Out_ unsigned int *clock)',
  nvmlDeviceGetPciInfo_v3: 'int nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, _Out_ nvmlPciInfo_t *pci)',
  nvmlDeviceGetNumaNodeId: 'int nvmlDeviceGetNumaNodeId(nvmlDevice_t device, _Out_ unsigned int *node)',
  nvmlDeviceGetCudaComputeCapability: 'int nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, _Out_ int *major, _Out_ int *minor)',
  nvmlDeviceGetAttributes_v2: 'int nvmlDeviceGetAttributes_v2(nvmlDevice_t device, _Out_ nvmlDeviceAttributes_t *attributes)',
  nvmlDeviceGetMigMode: 'int nvmlDeviceGetMigMode(nvmlDevice_t device, _Out_ unsigned int *currentMode, _Out_ unsigned int *pendingMode)',
  nvmlDeviceGetMaxMigDeviceCount: 'int nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, _Out_ unsigned int *count)',
  nvmlDeviceGetMigDeviceHandleByIndex: 'int nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device, unsigned int index, _Out_ nvmlDevice_t *migDevice)',
  nvmlDeviceGetGpuInstanceId: 'int nvmlDeviceGetGpuInstanceId(nvmlDevice_t device, _Out_ unsigned int *id)',
  nvmlDeviceGetComputeInstanceId: 'int nvmlDeviceGetComputeInstanceId(nvmlDevice_t device, _Out_ unsigned int *id)',
  nvmlDeviceGetComputeRunningProcesses_v3: 'int nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, _Inout_ unsigned int *infoCount, _Out_ uint8_t *infos)',
  nvmlDeviceGetTotalEccErrors: 'int nvmlDeviceGetTotalEccErrors(nvmlDevice_t device, int errorType, int counterType, _Out_ uint64_t *eccCounts)',
  nvmlDeviceGetCurrentClocksEventReasons: 'int nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t device, _Out_ uint64_t *reasons)',
  nvmlDeviceGetCurrentClocksThrottleReasons: 'int nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t device, _Out_ uint64_t *reasons)',
  nvmlDeviceGetTopologyCommonAncestor: 'int nvmlDeviceGetTopologyCommonAncestor(nvmlDevice_t device1, nvmlDevice_t device2, _Out_ int *pathInfo)',
  nvmlDeviceGetNvLinkState: 'int nvmlDeviceGetNvLinkState(nvmlDevice_t device, unsigned int link, _Out_ int *isActive)',
  nvmlDeviceGetNvLinkRemotePciInfo_v2: 'int nvmlDeviceGetNvLinkRemotePciInfo_v2(nvmlDevice_t device, unsigned int link, _Out_ nvmlPciInfo_t *pci)',
  nvmlDeviceGetTotalEnergyConsumption: 'int nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t device, _Out_ uint64_t *energy)',
  nvmlDeviceGetPcieReplayCounter: 'int nvmlDeviceGetPcieReplayCounter(nvmlDevice_t device, _Out_ unsigned int *value)',
  nvmlEventSetCreate: 'int nvmlEventSetCreate(_Out_ nvmlEventSet_t *set)',
  nvmlEventSetFree: 'int nvmlEventSetFree(nvmlEventSet_t set)',
  nvmlDeviceGetSupportedEventTypes: 'int nvmlDeviceGetSupportedEventTypes(nvmlDevice_t device, _Out_ uint64_t *eventTypes)',
  nvmlDeviceRegisterEvents: 'int nvmlDeviceRegisterEvents(nvmlDevice_t device, uint64_t eventTypes, nvmlEventSet_t set)',
  nvmlEventSetWait_v2: 'int nvmlEventSetWait_v2(nvmlEventSet_t set, _Out_ nvmlEventData_t *data, unsigned int timeoutms)',
} as const;

export type NvmlFunction = keyof typeof PROTOTYPES;
type Callable = (...args: unknown[]) => unknown;

/**
 * libnvidia-ml.so.1, loaded on first use. Entry points are bound lazily, so a driver too old
 * for one function still serves the others: a missing one answers NVML_ERROR_FUNCTION_NOT_FOUND.
 */
export class NvmlLibrary {
  private readonly bound = new Map<NvmlFunction, Callable | null>();
  private initialised = false;

  private constructor(
    private readonly lib: koffi.IKoffiLib,
    readonly path: string,
  ) {}

  /** Loads and initialises NVML, or throws GS_ERR_NVML_UNAVAILABLE saying exactly why not. */
  static open(path = 'libnvidia-ml.so.1'): NvmlLibrary {
    types ??= defineTypes();
    let lib: koffi.IKoffiLib;
    try {
      lib = koffi.load(path);
    } catch (cause) {
      throw new GsError(ErrorCodes.nvmlUnavailable, `cannot load NVML from ${path}: ${(cause as Error).message}`, { cause, details: { path } });
    }
    const nvml = new NvmlLibrary(lib, path);
    const rc = nvml.call('nvmlInit_v2');
    if (rc !== NVML.SUCCESS) {
      const reason = nvml.errorString(rc);
      lib.unload();
      const hint = rc === NVML.DRIVER_NOT_LOADED ? ' (is the NVIDIA kernel driver installed and loaded?)' : '';
      throw new GsError(ErrorCodes.nvmlUnavailable, `NVML at ${path} failed to initialise: ${reason}${hint}`, { details: { path, nvmlReturn: rc } });
    }
    nvml.initialised = true;
    return nvml;
  }

  /** Calls an NVML entry point and returns its nvmlReturn_t. */
  call(name: NvmlFunction, ...args: unknown[]): number {
    const fn = this.bind(name);
    return fn === null ? NVML.FUNCTION_NOT_FOUND : (fn(...args) as number);
  }

  /** Whether the loaded library exports `name` (older drivers lack newer entry points). */
  has(name: NvmlFunction): boolean {
    return this.bind(name) !== null;
  }

  errorString(rc: number): string {
    const fn = this.bind('nvmlErrorString');
    const text = fn === null ? null : (fn(rc) as string | null);
    return text ?? `NVML error ${rc}`;
  }

  close(): void {
    if (this.initialised) this.call('nvmlShutdown');
    this.initialised = false;
    this.lib.unload();
  }

  private bind(name: NvmlFunction): Callable | null {
    if (!this.bound.has(name)) {
      let fn: Callable | null = null;
      try {
        fn = this.lib.func(PROTOTYPES[name]) as Callable;
      } catch {
        fn = null;
      }
      this.bound.set(name, fn);
    }
    return this.bound.get(name) ?? null;
  }
}

/** Reads a NUL-terminated C string out of a buffer NVML filled. */
export function cString(buf: Buffer): string {
  const end = buf.indexOf(0);
  return buf.toString('utf8', 0, end === -1 ? buf.length : end);
}

/** koffi gives 64-bit integers as number or bigint depending on size; we want exact numbers. */
export function toBigInt(value: unknown): bigint {
  return typeof value === 'bigint' ? value : BigInt(value as number);
}
