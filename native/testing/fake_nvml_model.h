/*
 * fake_nvml_model.h: what a fake machine is made of (filled from JSON by fake_nvml_config.c,
 * served by the fake_nvml*.c entry points), and the one list of the functions it exports.
 */
#ifndef GS_FAKE_NVML_MODEL_H
#define GS_FAKE_NVML_MODEL_H

#include <stdbool.h>

#include "gs_nvml.h"

/* Capacities of the static tables. Real machines stay far below: 8 to 16 GPUs, at most 7
 * MIG devices per GPU. A configuration beyond them is rejected at nvmlInit. */
enum {
    FAKE_MAX_GPUS = 32,
    FAKE_MAX_MIG = 16,
    FAKE_MAX_PROCESSES = 256,
    FAKE_DEFAULT_MAX_MIG = 7 /* what an A100/H100 reports with MIG enabled */
};

/* Every NVML function the fake exports, once. SCOPE says where a forced error for it is
 * configured: SYSTEM in the top-level "errors", DEVICE in a device's (or MIG device's)
 * "errors", NONE where forcing makes no sense. */
#define FAKE_NVML_FUNCTIONS(X)                                   \
    X(nvmlInit_v2, SYSTEM)                                       \
    X(nvmlInitWithFlags, SYSTEM)                                 \
    X(nvmlShutdown, SYSTEM)                                      \
    X(nvmlErrorString, NONE)                                     \
    X(nvmlSystemGetDriverVersion, SYSTEM)                        \
    X(nvmlSystemGetNVMLVersion, SYSTEM)                          \
    X(nvmlSystemGetCudaDriverVersion_v2, SYSTEM)                 \
    X(nvmlDeviceGetCount_v2, SYSTEM)                             \
    X(nvmlDeviceGetHandleByIndex_v2, DEVICE)                     \
    X(nvmlDeviceGetHandleByUUID, DEVICE)                         \
    X(nvmlDeviceGetIndex, DEVICE)                                \
    X(nvmlDeviceGetUUID, DEVICE)                                 \
    X(nvmlDeviceGetName, DEVICE)                                 \
    X(nvmlDeviceGetSerial, DEVICE)                               \
    X(nvmlDeviceGetPciInfo_v3, DEVICE)                           \
    X(nvmlDeviceGetNumaNodeId, DEVICE)                           \
    X(nvmlDeviceGetCudaComputeCapability, DEVICE)                \
    X(nvmlDeviceGetAttributes_v2, DEVICE)                        \
    X(nvmlDeviceGetMemoryInfo, DEVICE)                           \
    X(nvmlDeviceGetMemoryInfo_v2, DEVICE)                        \
    X(nvmlDeviceGetUtilizationRates, DEVICE)                     \
    X(nvmlDeviceGetTemperature, DEVICE)                          \
    X(nvmlDeviceGetPowerUsage, DEVICE)                           \
    X(nvmlDeviceGetEnforcedPowerLimit, DEVICE)                   \
    X(nvmlDeviceGetClockInfo, DEVICE)                            \
    X(nvmlDeviceGetMaxClockInfo, DEVICE)                         \
    X(nvmlDeviceGetTotalEccErrors, DEVICE)                       \
    X(nvmlDeviceGetCurrentClocksEventReasons, DEVICE)            \
    X(nvmlDeviceGetCurrentClocksThrottleReasons, DEVICE)         \
    X(nvmlDeviceGetTotalEnergyConsumption, DEVICE)               \
    X(nvmlDeviceGetPcieReplayCounter, DEVICE)                    \
    X(nvmlDeviceGetMigMode, DEVICE)                              \
    X(nvmlDeviceGetMaxMigDeviceCount, DEVICE)                    \
    X(nvmlDeviceGetMigDeviceHandleByIndex, DEVICE)               \
    X(nvmlDeviceIsMigDeviceHandle, DEVICE)                       \
    X(nvmlDeviceGetGpuInstanceId, DEVICE)                        \
    X(nvmlDeviceGetComputeInstanceId, DEVICE)                    \
    X(nvmlDeviceGetDeviceHandleFromMigDeviceHandle, DEVICE)      \
    X(nvmlDeviceGetComputeRunningProcesses_v3, DEVICE)           \
    X(nvmlDeviceGetTopologyCommonAncestor, DEVICE)               \
    X(nvmlDeviceGetNvLinkState, DEVICE)                          \
    X(nvmlDeviceGetNvLinkRemotePciInfo_v2, DEVICE)

#define FAKE_FN_ENUMERATOR(name, scope) FAKE_FN_##name,
typedef enum fake_fn {
    FAKE_NVML_FUNCTIONS(FAKE_FN_ENUMERATOR)
    FAKE_FN_COUNT
} fake_fn_t;
#undef FAKE_FN_ENUMERATOR

typedef enum fake_scope {
    FAKE_SCOPE_NONE,
    FAKE_SCOPE_SYSTEM,
    FAKE_SCOPE_DEVICE
} fake_scope_t;

/* The fake_fn_t of an NVML function name, or -1. */
int fake_fn_lookup(const char *name);
const char *fake_fn_name(fake_fn_t fn);
fake_scope_t fake_fn_scope(fake_fn_t fn);

/* Return codes forced per function; 0 (NVML_SUCCESS) means "not forced". */
typedef struct fake_errors {
    int code[FAKE_FN_COUNT];
} fake_errors_t;

/* A value NVML may answer NOT_SUPPORTED for. */
typedef struct fake_opt_u64 {
    bool supported;
    unsigned long long value;
} fake_opt_u64_t;

typedef struct fake_memory {
    unsigned long long total;
    unsigned long long used;     /* allocated, reserved excluded (nvmlMemory_v2_t.used) */
    unsigned long long reserved; /* set aside by driver and firmware */
} fake_memory_t;

typedef struct fake_pci {
    unsigned int domain;
    unsigned int bus;
    unsigned int device;
    unsigned int function;
} fake_pci_t;

typedef struct fake_nvlink {
    unsigned int link;
    bool active;
    bool has_remote;
    fake_pci_t remote;
} fake_nvlink_t;

typedef struct fake_mig {
    char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
    char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE];
    unsigned int gpu_instance_id;
    unsigned int compute_instance_id;
    fake_memory_t memory;
    nvmlDeviceAttributes_t attributes; /* memorySizeMB derived from memory.total */
    fake_errors_t errors;
} fake_mig_t;

typedef struct fake_gpu {
    char uuid[NVML_DEVICE_UUID_V2_BUFFER_SIZE];
    char name[NVML_DEVICE_NAME_V2_BUFFER_SIZE];
    char serial[NVML_DEVICE_SERIAL_BUFFER_SIZE];
    fake_memory_t memory;
    nvmlUtilization_t utilization;
    unsigned int temperature;
    unsigned int power_usage;
    unsigned int power_limit;
    unsigned int clock[4];     /* indexed by nvmlClockType_t */
    unsigned int max_clock[4]; /* indexed by nvmlClockType_t */
    fake_pci_t pci;
    unsigned int pci_device_id;
    unsigned int pci_subsystem_id;
    int numa_node; /* -1: NOT_SUPPORTED */
    int cc_major;
    int cc_minor;
    nvmlDeviceAttributes_t attributes;
    bool mig_supported;
    unsigned int mig_mode;
    unsigned int mig_pending_mode;
    unsigned int max_mig_devices;
    unsigned int mig_count;
    fake_mig_t mig[FAKE_MAX_MIG];
    unsigned int process_count;
    nvmlProcessInfo_t processes[FAKE_MAX_PROCESSES];
    unsigned int processes_grow_by;
    fake_opt_u64_t ecc_corrected;
    fake_opt_u64_t ecc_uncorrected;
    fake_opt_u64_t total_energy; /* millijoules since the driver loaded */
    fake_opt_u64_t pcie_replays;
    unsigned long long clocks_event_reasons;
    nvmlGpuTopologyLevel_t topology[FAKE_MAX_GPUS]; /* to each device index */
    unsigned int topology_length;                   /* entries given by the configuration */
    unsigned int nvlink_count;
    fake_nvlink_t nvlinks[NVML_NVLINK_MAX_LINKS];
    bool lost;
    fake_errors_t errors;
    /* Run-time state of processesGrowBy: a size query arms it, the next fill fires it. */
    bool grow_armed;
    bool grown;
} fake_gpu_t;

typedef struct fake_machine {
    bool driver_loaded;
    char driver_version[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE];
    char nvml_version[NVML_SYSTEM_NVML_VERSION_BUFFER_SIZE];
    int cuda_driver_version;
    fake_errors_t errors; /* SYSTEM-scope functions */
    unsigned int gpu_count;
    fake_gpu_t gpus[FAKE_MAX_GPUS];
} fake_machine_t;

#endif /* GS_FAKE_NVML_MODEL_H */
