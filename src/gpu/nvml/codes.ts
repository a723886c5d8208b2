/** nvmlReturn_t values we act on (nvml.h). */
export const NVML = {
  SUCCESS: 0,
  UNINITIALIZED: 1,
  INVALID_ARGUMENT: 2,
  NOT_SUPPORTED: 3,
  NO_PERMISSION: 4,
  NOT_FOUND: 6,
  INSUFFICIENT_SIZE: 7,
  DRIVER_NOT_LOADED: 9,
  LIBRARY_NOT_FOUND: 12,
  FUNCTION_NOT_FOUND: 13,
  TIMEOUT: 10,
  GPU_IS_LOST: 15,
  ARGUMENT_VERSION_MISMATCH: 25,
  UNKNOWN: 999,
} as const;

/** Codes that mean "this GPU or driver cannot tell you that": the field is reported as null. */
export const UNAVAILABLE_CODES: ReadonlySet<number> = new Set([
  NVML.NOT_SUPPORTED,
  NVML.NO_PERMISSION,
  NVML.FUNCTION_NOT_FOUND,
  NVML.NOT_FOUND,
  NVML.ARGUMENT_VERSION_MISMATCH,
]);

/** NVML_VALUE_NOT_AVAILABLE for unsigned long long fields (e.g. a process's memory under MIG). */
export const VALUE_NOT_AVAILABLE_U64 = 0xffffffffffffffffn;
/** 0xFFFFFFFF in instance-id fields means "not in a MIG instance". */
export const NO_INSTANCE_ID = 0xffffffff;

/** nvmlGpuTopologyLevel_t -> nvidia-smi topo's names. */
export const TOPOLOGY_LEVELS: ReadonlyMap<number, 'SELF' | 'PIX' | 'PXB' | 'PHB' | 'NODE' | 'SYS'> = new Map([
  [0, 'SELF'],
  [10, 'PIX'],
  [20, 'PXB'],
  [30, 'PHB'],
  [40, 'NODE'],
  [50, 'SYS'],
]);

/** nvmlClocksEventReasons bits, named as nvidia-smi's clocks_event_reasons.* query fields. */
export const CLOCK_EVENT_REASONS: ReadonlyArray<readonly [bigint, string]> = [
  [0x1n, 'gpu_idle'],
  [0x2n, 'applications_clocks_setting'],
  [0x4n, 'sw_power_cap'],
  [0x8n, 'hw_slowdown'],
  [0x10n, 'sync_boost'],
  [0x20n, 'sw_thermal_slowdown'],
  [0x40n, 'hw_thermal_slowdown'],
  [0x80n, 'hw_power_brake_slowdown'],
  [0x100n, 'display_clock_setting'],
];

export const NVML_CLOCK_SM = 1;
export const NVML_CLOCK_MEM = 2;
export const NVML_TEMPERATURE_GPU = 0;
export const NVML_MEMORY_ERROR_TYPE_CORRECTED = 0;
export const NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1;
export const NVML_VOLATILE_ECC = 0;
export const NVML_NVLINK_MAX_LINKS = 18;
export const NVML_DEVICE_NAME_V2_BUFFER_SIZE = 96;
export const NVML_DEVICE_UUID_V2_BUFFER_SIZE = 96;
export const NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE = 80;
export const NVML_DEVICE_SERIAL_BUFFER_SIZE = 30;
/** nvmlEventTypeXidCriticalError: the event mask bit for XID errors. */
export const NVML_EVENT_TYPE_XID_CRITICAL_ERROR = 0x8n;
