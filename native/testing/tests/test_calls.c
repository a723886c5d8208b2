/*
 * test_calls.c: one call of each exported function with valid arguments (test_calls.h).
 */
#include "test_calls.h"

nvmlReturn_t test_call(fake_fn_t fn, const test_call_args_t *a)
{
    char text[NVML_DEVICE_NAME_V2_BUFFER_SIZE];
    unsigned int u1 = 0, u2 = 0;
    int i1 = 0, i2 = 0;
    unsigned long long ull = 0;
    nvmlDevice_t handle = NULL;
    nvmlPciInfo_t pci;
    nvmlMemory_t memory;
    nvmlMemory_v2_t memory2 = {.version = nvmlMemory_v2};
    nvmlUtilization_t utilization;
    nvmlDeviceAttributes_t attributes;
    nvmlGpuTopologyLevel_t level;
    nvmlEnableState_t state;
    nvmlProcessInfo_t processes[FAKE_MAX_PROCESSES];
    unsigned int process_count = FAKE_MAX_PROCESSES;
    nvmlDevice_t d = a->device;

    switch (fn) {
    case FAKE_FN_nvmlInit_v2: return nv.nvmlInit_v2();
    case FAKE_FN_nvmlInitWithFlags: return nv.nvmlInitWithFlags(0);
    case FAKE_FN_nvmlShutdown: return nv.nvmlShutdown();
    case FAKE_FN_nvmlErrorString: return nv.nvmlErrorString(NVML_SUCCESS) ? NVML_SUCCESS : NVML_ERROR_UNKNOWN;
    case FAKE_FN_nvmlSystemGetDriverVersion: return nv.nvmlSystemGetDriverVersion(text, sizeof text);
    case FAKE_FN_nvmlSystemGetNVMLVersion: return nv.nvmlSystemGetNVMLVersion(text, sizeof text);
    case FAKE_FN_nvmlSystemGetCudaDriverVersion_v2: return nv.nvmlSystemGetCudaDriverVersion_v2(&i1);
    case FAKE_FN_nvmlDeviceGetCount_v2: return nv.nvmlDeviceGetCount_v2(&u1);
    case FAKE_FN_nvmlDeviceGetHandleByIndex_v2: return nv.nvmlDeviceGetHandleByIndex_v2(a->index, &handle);
    case FAKE_FN_nvmlDeviceGetHandleByUUID: return nv.nvmlDeviceGetHandleByUUID(a->uuid, &handle);
    case FAKE_FN_nvmlDeviceGetIndex: return nv.nvmlDeviceGetIndex(d, &u1);
    case FAKE_FN_nvmlDeviceGetUUID: return nv.nvmlDeviceGetUUID(d, text, sizeof text);
    case FAKE_FN_nvmlDeviceGetName: return nv.nvmlDeviceGetName(d, text, sizeof text);
    case FAKE_FN_nvmlDeviceGetSerial: return nv.nvmlDeviceGetSerial(d, text, sizeof text);
    case FAKE_FN_nvmlDeviceGetPciInfo_v3: return nv.nvmlDeviceGetPciInfo_v3(d, &pci);
    case FAKE_FN_nvmlDeviceGetNumaNodeId: return nv.nvmlDeviceGetNumaNodeId(d, &u1);
    case FAKE_FN_nvmlDeviceGetCudaComputeCapability: return nv.nvmlDeviceGetCudaComputeCapability(d, &i1, &i2);
    case FAKE_FN_nvmlDeviceGetAttributes_v2: return nv.nvmlDeviceGetAttributes_v2(d, &attributes);
    case FAKE_FN_nvmlDeviceGetMemoryInfo: return nv.nvmlDeviceGetMemoryInfo(d, &memory);
    case FAKE_FN_nvmlDeviceGetMemoryInfo_v2: return nv.nvmlDeviceGetMemoryInfo_v2(d, &memory2);
    case FAKE_FN_nvmlDeviceGetUtilizationRates: return nv.nvmlDeviceGetUtilizationRates(d, &utilization);
    case FAKE_FN_nvmlDeviceGetTemperature: return nv.nvmlDeviceGetTemperature(d, NVML_TEMPERATURE_GPU, &u1);
    case FAKE_FN_nvmlDeviceGetPowerUsage: return nv.nvmlDeviceGetPowerUsage(d, &u1);
    case FAKE_FN_nvmlDeviceGetEnforcedPowerLimit: return nv.nvmlDeviceGetEnforcedPowerLimit(d, &u1);
    case FAKE_FN_nvmlDeviceGetClockInfo: return nv.nvmlDeviceGetClockInfo(d, NVML_CLOCK_SM, &u1);
    case FAKE_FN_nvmlDeviceGetMaxClockInfo: return nv.nvmlDeviceGetMaxClockInfo(d, NVML_CLOCK_MEM, &u1);
    case FAKE_FN_nvmlDeviceGetTotalEccErrors:
        return nv.nvmlDeviceGetTotalEccErrors(d, NVML_MEMORY_ERROR_TYPE_CORRECTED, NVML_VOLATILE_ECC, &ull);
    case FAKE_FN_nvmlDeviceGetCurrentClocksEventReasons: return nv.nvmlDeviceGetCurrentClocksEventReasons(d, &ull);
    case FAKE_FN_nvmlDeviceGetCurrentClocksThrottleReasons:
        return nv.nvmlDeviceGetCurrentClocksThrottleReasons(d, &ull);
    case FAKE_FN_nvmlDeviceGetTotalEnergyConsumption: return nv.nvmlDeviceGetTotalEnergyConsumption(d, &ull);
    case FAKE_FN_nvmlDeviceGetPcieReplayCounter: return nv.nvmlDeviceGetPcieReplayCounter(d, &u1);
    case FAKE_FN_nvmlDeviceGetMigMode: return nv.nvmlDeviceGetMigMode(d, &u1, &u2);
    case FAKE_FN_nvmlDeviceGetMaxMigDeviceCount: return nv.nvmlDeviceGetMaxMigDeviceCount(d, &u1);
    case FAKE_FN_nvmlDeviceGetMigDeviceHandleByIndex: return nv.nvmlDeviceGetMigDeviceHandleByIndex(d, 0, &handle);
    case FAKE_FN_nvmlDeviceIsMigDeviceHandle: return nv.nvmlDeviceIsMigDeviceHandle(d, &u1);
    case FAKE_FN_nvmlDeviceGetGpuInstanceId: return nv.nvmlDeviceGetGpuInstanceId(d, &u1);
    case FAKE_FN_nvmlDeviceGetComputeInstanceId: return nv.nvmlDeviceGetComputeInstanceId(d, &u1);
    case FAKE_FN_nvmlDeviceGetDeviceHandleFromMigDeviceHandle:
        return nv.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(d, &handle);
    case FAKE_FN_nvmlDeviceGetComputeRunningProcesses_v3:
        return nv.nvmlDeviceGetComputeRunningProcesses_v3(d, &process_count, processes);
    case FAKE_FN_nvmlDeviceGetTopologyCommonAncestor:
        return nv.nvmlDeviceGetTopologyCommonAncestor(d, a->other, &level);
    case FAKE_FN_nvmlDeviceGetNvLinkState: return nv.nvmlDeviceGetNvLinkState(d, 0, &state);
    case FAKE_FN_nvmlDeviceGetNvLinkRemotePciInfo_v2: return nv.nvmlDeviceGetNvLinkRemotePciInfo_v2(d, 0, &pci);
    case FAKE_FN_COUNT: break;
    }
    return NVML_ERROR_FUNCTION_NOT_FOUND;
}

bool test_takes_device(fake_fn_t fn)
{
    return fake_fn_scope(fn) == FAKE_SCOPE_DEVICE && fn != FAKE_FN_nvmlDeviceGetHandleByIndex_v2 &&
           fn != FAKE_FN_nvmlDeviceGetHandleByUUID;
}
