/*
 * fake_nvml_device.c: device discovery, identity and telemetry entry points.
 *
 * MIG device handles serve nvmlDeviceGetUUID, GetName, GetMemoryInfo(_v2) and
 * GetAttributes_v2 here; every other query answers them NVML_ERROR_NOT_SUPPORTED.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_nvml_state.h"
#include "fake_nvml_util.h"

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *deviceCount)
{
    fake_lock();
    nvmlReturn_t r = fake_system_gate(FAKE_FN_nvmlDeviceGetCount_v2, deviceCount != NULL);
    if (r == NVML_SUCCESS)
        *deviceCount = fake_machine()->gpu_count;
    fake_unlock();
    return r;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device)
{
    fake_lock();
    nvmlReturn_t r = fake_system_gate(FAKE_FN_nvmlDeviceGetHandleByIndex_v2, device != NULL);
    const fake_machine_t *m = fake_machine();
    if (r == NVML_SUCCESS && index >= m->gpu_count)
        r = NVML_ERROR_INVALID_ARGUMENT;
    /* A lost GPU still yields a handle (the calls taking it fail); force this function's
     * error on the device to model NVML failing the lookup itself. */
    if (r == NVML_SUCCESS)
        r = (nvmlReturn_t)m->gpus[index].errors.code[FAKE_FN_nvmlDeviceGetHandleByIndex_v2];
    if (r == NVML_SUCCESS)
        *device = fake_gpu_handle(index);
    fake_unlock();
    return r;
}

/* Finds a GPU, or a MIG device (as NVML does since R470), by UUID. */
static bool find_uuid(const char *uuid, nvmlDevice_t *handle, fake_target_t *t)
{
    fake_machine_t *m = fake_machine();
    for (unsigned int g = 0; g < m->gpu_count; g++) {
        if (strcmp(m->gpus[g].uuid, uuid) == 0) {
            *handle = fake_gpu_handle(g);
            return fake_resolve(*handle, t);
        }
        for (unsigned int i = 0; i < m->gpus[g].mig_count; i++) {
            if (strcmp(m->gpus[g].mig[i].uuid, uuid) == 0) {
                *handle = fake_mig_handle(g, i);
                return fake_resolve(*handle, t);
            }
        }
    }
    return false;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device)
{
    nvmlDevice_t handle = NULL;
    fake_target_t t;
    fake_lock();
    nvmlReturn_t r = fake_system_gate(FAKE_FN_nvmlDeviceGetHandleByUUID, uuid != NULL && device != NULL);
    if (r == NVML_SUCCESS && !find_uuid(uuid, &handle, &t))
        r = NVML_ERROR_NOT_FOUND;
    if (r == NVML_SUCCESS)
        r = (nvmlReturn_t)fake_forced(&t, FAKE_FN_nvmlDeviceGetHandleByUUID);
    if (r == NVML_SUCCESS)
        *device = handle;
    fake_unlock();
    return r;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index)
{
    fake_target_t t;
    fake_lock();
    nvmlReturn_t r = fake_device_gate(FAKE_FN_nvmlDeviceGetIndex, device, index != NULL, FAKE_GPU_HANDLES, &t);
    if (r == NVML_SUCCESS)
        *index = t.gpu_index;
    fake_unlock();
    return r;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length)
{
    fake_target_t t;
    fake_lock();
    nvmlReturn_t r = fake_device_gate(FAKE_FN_nvmlDeviceGetUUID, device, uuid != NULL, FAKE_ANY_HANDLE, &t);
    if (r == NVML_SUCCESS)
        r = fake_copy_string(uuid, length, t.mig ? t.mig->uuid : t.gpu->uuid);
    fake_unlock();
    return r;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length)
{
    fake_target_t t;
    fake_lock();
    nvmlReturn_t r = fake_device_gate(FAKE_FN_nvmlDeviceGetName, device, name != NULL, FAKE_ANY_HANDLE, &t);
    if (r == NVML_SUCCESS)
        r = fake_copy_string(name, length, t.mig ? t.mig->name : t.gpu->name);
    fake_unlock();
    return r;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetSerial(nvmlDevice_t device, char *serial, unsigned int length)
{
    fake_target_t t;
    fake_lock();
    nvmlReturn_t r = fake_device_gate(FAKE_FN_nvmlDeviceGetSerial, device, serial != NULL, FAKE_GPU_HANDLES, &t);
    if (r == NVML_SUCCESS)
        r = fake_copy_string(serial, length, t.gpu->serial);
    fake_unlock();
    return r;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetPciInfo_v3(nvmlDevice_t device, nvmlPciInfo_t *pci)
{
    fake_target_t t;
    fake_lock();
    nvmlReturn_t r = fake_device_gate(FAKE_FN_nvmlDeviceGetPciInfo_v3, device, pci != NULL, FAKE_GPU_HANDLES, &t);
    if (r == NVML_SUCCESS)
        fake_fill_pci_info(pci, &t.gpu->pci, t.gpu->pci_device_id, t.gpu->pci_subsystem_id);
    fake_unlock();
    return r;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetNumaNodeId(nvmlDevice_t device, unsigned int *node)
{
    fake_target_t t;
    fake_lock();
    nvmlReturn_t r = fake_device_gate(FAKE_FN_nvmlDeviceGetNumaNodeId, device, node != NULL, FAKE_GPU_HANDLES, &t);
    if (r == NVML_SUCCESS && t.gpu->numa_node < 0)
        r = NVML_ERROR_NOT_SUPPORTED;
    if (r == NVML_SUCCESS)
        *node = (unsigned int)t.gpu->numa_node;
    fake_unlock();
    return r;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int *major, int *minor)
{
    fake_target_t t;
    fake_lock();
    nvmlReturn_t r = fake_device_gate(FAKE_FN_nvmlDeviceGetCudaComputeCapability, device,
                                      major != NULL && minor != NULL, FAKE_GPU_HANDLES, &t);
    if (r == NVML_SUCCESS) {
        *major = t.gpu->cc_major;
        *minor = t.gpu->cc_minor;
    }
    fake_unlock();
    return r;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetAttributes_v2(nvmlDevice_t device, nvmlDeviceAttributes_t *attributes)
{
    fake_target_t t;
    fake_lock();
    nvmlReturn_t r = fake_device_gate(FAKE_FN_nvmlDeviceGetAttributes_v2, device, attributes != NULL,
                                      FAKE_ANY_HANDLE, &t);
    if (r == NVML_SUCCESS)
        *attributes = t.mig ? t.mig->attributes : t.gpu->attributes;
    fake_unlock();
    return r;
}

static const fake_memory_t *memory_of(const fake_target_t *t)
{
    return t->mig ? &t->mig->memory : &t->gpu->memory;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *memory)
{
    fake_target_t t;
    fake_lock();
    nvmlReturn_t r = fake_device_gate(FAKE_FN_nvmlDeviceGetMemoryInfo, device, memory != NULL, FAKE_ANY_HANDLE, &t);
    if (r == NVML_SUCCESS) {
        const fake_memory_t *m = memory_of(&t);
        /* v1 has no "reserved": it is counted as used, so free is the same as in v2. */
        memory->total = m->total;
        memory->used = m->used + m->reserved;
        memory->free = m->total - m->used - m->reserved;
    }
    fake_unlock();
    return r;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *memory)
{
    fake_target_t t;
    fake_lock();
    nvmlReturn_t r =
        fake_device_gate(FAKE_FN_nvmlDeviceGetMemoryInfo_v2, device, memory != NULL, FAKE_ANY_HANDLE, &t);
    if (r == NVML_SUCCESS && memory->version != nvmlMemory_v2)
        r = NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    if (r == NVML_SUCCESS) {
        const fake_memory_t *m = memory_of(&t);
        memory->total = m->total;
        memory->reserved = m->reserved;
        memory->used = m->used;
        memory->free = m->total - m->used - m->reserved;
    }
    fake_unlock();
    return r;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t device, nvmlUtilization_t *utilization)
{
    fake_target_t t;
    fake_lock();
    nvmlReturn_t r = fake_device_gate(FAKE_FN_nvmlDeviceGetUtilizationRates, device, utilization != NULL,
                                      FAKE_GPU_HANDLES, &t);
    if (r == NVML_SUCCESS)
        *utilization = t.gpu->utilization;
    fake_unlock();
    return r;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t device, nvmlTemperatureSensors_t sensorType,
                                                  unsigned int *temp)
{
    fake_target_t t;
    fake_lock();
    nvmlReturn_t r = fake_device_gate(FAKE_FN_nvmlDeviceGetTemperature, device,
                                      temp != NULL && sensorType == NVML_TEMPERATURE_GPU, FAKE_GPU_HANDLES, &t);
    if (r == NVML_SUCCESS)
        *temp = t.gpu->temperature;
    fake_unlock();
    return r;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t device, unsigned int *power)
{
    fake_target_t t;
    fake_lock();
    nvmlReturn_t r = fake_device_gate(FAKE_FN_nvmlDeviceGetPowerUsage, device, power != NULL, FAKE_GPU_HANDLES, &t);
    if (r == NVML_SUCCESS)
        *power = t.gpu->power_usage;
    fake_unlock();
    return r;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t device, unsigned int *limit)
{
    fake_target_t t;
    fake_lock();
    nvmlReturn_t r =
        fake_device_gate(FAKE_FN_nvmlDeviceGetEnforcedPowerLimit, device, limit != NULL, FAKE_GPU_HANDLES, &t);
    if (r == NVML_SUCCESS)
        *limit = t.gpu->power_limit;
    fake_unlock();
    return r;
}

static bool valid_clock(nvmlClockType_t type)
{
    return (unsigned int)type <= NVML_CLOCK_VIDEO;
}

/* GPUSHARE_FAKE_NVML_CLOCK_FILE: the SM (and graphics) clock of every device, MHz, read from
 * that file at each call, so a test can move it while a program runs (as a power cap moves a
 * real GPU's); false when unset or not a number (the configuration's clock then). */
static bool clock_from_file(unsigned int *mhz)
{
    const char *path = getenv("GPUSHARE_FAKE_NVML_CLOCK_FILE");
    FILE *f = path != NULL && path[0] != '\0' ? fopen(path, "r") : NULL;
    if (f == NULL)
        return false;
    unsigned int v = 0;
    bool ok = fscanf(f, "%u", &v) == 1 && v > 0;
    fclose(f);
    if (ok)
        *mhz = v;
    return ok;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetClockInfo(nvmlDevice_t device, nvmlClockType_t type, unsigned int *clock)
{
    fake_target_t t;
    fake_lock();
    nvmlReturn_t r = fake_device_gate(FAKE_FN_nvmlDeviceGetClockInfo, device, clock != NULL && valid_clock(type),
                                      FAKE_GPU_HANDLES, &t);
    if (r == NVML_SUCCESS && ((type != NVML_CLOCK_SM && type != NVML_CLOCK_GRAPHICS) || !clock_from_file(clock)))
        *clock = t.gpu->clock[type];
    fake_unlock();
    return r;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetMaxClockInfo(nvmlDevice_t device, nvmlClockType_t type, unsigned int *clock)
{
    fake_target_t t;
    fake_lock();
    nvmlReturn_t r = fake_device_gate(FAKE_FN_nvmlDeviceGetMaxClockInfo, device,
                                      clock != NULL && valid_clock(type), FAKE_GPU_HANDLES, &t);
    if (r == NVML_SUCCESS)
        *clock = t.gpu->max_clock[type];
    fake_unlock();
    return r;
}

/* A counter the configuration may leave out: NOT_SUPPORTED then, as a GPU without it answers. */
static nvmlReturn_t opt_value(const fake_opt_u64_t *count, unsigned long long *out)
{
    if (!count->supported)
        return NVML_ERROR_NOT_SUPPORTED;
    *out = count->value;
    return NVML_SUCCESS;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetTotalEccErrors(nvmlDevice_t device, nvmlMemoryErrorType_t errorType,
                                                     nvmlEccCounterType_t counterType, unsigned long long *eccCounts)
{
    fake_target_t t;
    bool args_ok = eccCounts != NULL && (unsigned int)errorType <= NVML_MEMORY_ERROR_TYPE_UNCORRECTED &&
                   (unsigned int)counterType <= NVML_AGGREGATE_ECC;
    fake_lock();
    nvmlReturn_t r = fake_device_gate(FAKE_FN_nvmlDeviceGetTotalEccErrors, device, args_ok, FAKE_GPU_HANDLES, &t);
    /* One count serves both counter types: the fake has no reboots to tell them apart. */
    if (r == NVML_SUCCESS)
        r = opt_value(errorType == NVML_MEMORY_ERROR_TYPE_CORRECTED ? &t.gpu->ecc_corrected : &t.gpu->ecc_uncorrected,
                      eccCounts);
    fake_unlock();
    return r;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetTotalEnergyConsumption(nvmlDevice_t device, unsigned long long *energy)
{
    fake_target_t t;
    fake_lock();
    nvmlReturn_t r = fake_device_gate(FAKE_FN_nvmlDeviceGetTotalEnergyConsumption, device, energy != NULL,
                                      FAKE_GPU_HANDLES, &t);
    if (r == NVML_SUCCESS)
        r = opt_value(&t.gpu->total_energy, energy);
    fake_unlock();
    return r;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetPcieReplayCounter(nvmlDevice_t device, unsigned int *value)
{
    fake_target_t t;
    unsigned long long count = 0;
    fake_lock();
    nvmlReturn_t r = fake_device_gate(FAKE_FN_nvmlDeviceGetPcieReplayCounter, device, value != NULL,
                                      FAKE_GPU_HANDLES, &t);
    if (r == NVML_SUCCESS)
        r = opt_value(&t.gpu->pcie_replays, &count);
    if (r == NVML_SUCCESS)
        *value = (unsigned int)count;
    fake_unlock();
    return r;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t device,
                                                                unsigned long long *clocksEventReasons)
{
    fake_target_t t;
    fake_lock();
    nvmlReturn_t r = fake_device_gate(FAKE_FN_nvmlDeviceGetCurrentClocksEventReasons, device,
                                      clocksEventReasons != NULL, FAKE_GPU_HANDLES, &t);
    if (r == NVML_SUCCESS)
        *clocksEventReasons = t.gpu->clocks_event_reasons;
    fake_unlock();
    return r;
}

/* The pre-12.2 name of the same query; drivers keep both. */
FAKE_EXPORT nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t device,
                                                                   unsigned long long *clocksThrottleReasons)
{
    fake_target_t t;
    fake_lock();
    nvmlReturn_t r = fake_device_gate(FAKE_FN_nvmlDeviceGetCurrentClocksThrottleReasons, device,
                                      clocksThrottleReasons != NULL, FAKE_GPU_HANDLES, &t);
    if (r == NVML_SUCCESS)
        *clocksThrottleReasons = t.gpu->clocks_event_reasons;
    fake_unlock();
    return r;
}
