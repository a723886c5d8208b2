/*
 * fake_nvml_mig.c: MIG mode and MIG device handle entry points.
 *
 * MIG devices exist only on a GPU with "migMode": 1. Their handles are distinct entries
 * of the state's MIG handle table, and the GPU's "lost" applies to them as well.
 */
#include <stddef.h>

#include "fake_nvml_state.h"

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t device, unsigned int *currentMode, unsigned int *pendingMode)
{
    fake_target_t t;
    fake_lock();
    nvmlReturn_t r = fake_device_gate(FAKE_FN_nvmlDeviceGetMigMode, device,
                                      currentMode != NULL && pendingMode != NULL, FAKE_GPU_HANDLES, &t);
    if (r == NVML_SUCCESS && !t.gpu->mig_supported)
        r = NVML_ERROR_NOT_SUPPORTED;
    if (r == NVML_SUCCESS) {
        *currentMode = t.gpu->mig_mode;
        *pendingMode = t.gpu->mig_pending_mode;
    }
    fake_unlock();
    return r;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t device, unsigned int *count)
{
    fake_target_t t;
    fake_lock();
    nvmlReturn_t r =
        fake_device_gate(FAKE_FN_nvmlDeviceGetMaxMigDeviceCount, device, count != NULL, FAKE_GPU_HANDLES, &t);
    if (r == NVML_SUCCESS)
        *count = t.gpu->max_mig_devices; /* 0 when MIG is unsupported or disabled, as NVML says */
    fake_unlock();
    return r;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t device, unsigned int index,
                                                            nvmlDevice_t *migDevice)
{
    fake_target_t t;
    fake_lock();
    nvmlReturn_t r = fake_device_gate(FAKE_FN_nvmlDeviceGetMigDeviceHandleByIndex, device, migDevice != NULL,
                                      FAKE_GPU_HANDLES, &t);
    if (r == NVML_SUCCESS && !t.gpu->mig_supported)
        r = NVML_ERROR_NOT_SUPPORTED;
    else if (r == NVML_SUCCESS && index >= t.gpu->max_mig_devices)
        r = NVML_ERROR_INVALID_ARGUMENT;
    else if (r == NVML_SUCCESS && index >= t.gpu->mig_count)
        r = NVML_ERROR_NOT_FOUND; /* a slot where no MIG device is configured */
    if (r == NVML_SUCCESS)
        *migDevice = fake_mig_handle(t.gpu_index, index);
    fake_unlock();
    return r;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceIsMigDeviceHandle(nvmlDevice_t device, unsigned int *isMigDevice)
{
    fake_target_t t;
    fake_lock();
    nvmlReturn_t r =
        fake_device_gate(FAKE_FN_nvmlDeviceIsMigDeviceHandle, device, isMigDevice != NULL, FAKE_ANY_HANDLE, &t);
    if (r == NVML_SUCCESS)
        *isMigDevice = t.mig != NULL;
    fake_unlock();
    return r;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetGpuInstanceId(nvmlDevice_t device, unsigned int *id)
{
    fake_target_t t;
    fake_lock();
    nvmlReturn_t r = fake_device_gate(FAKE_FN_nvmlDeviceGetGpuInstanceId, device, id != NULL, FAKE_MIG_HANDLES, &t);
    if (r == NVML_SUCCESS)
        *id = t.mig->gpu_instance_id;
    fake_unlock();
    return r;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetComputeInstanceId(nvmlDevice_t device, unsigned int *id)
{
    fake_target_t t;
    fake_lock();
    nvmlReturn_t r =
        fake_device_gate(FAKE_FN_nvmlDeviceGetComputeInstanceId, device, id != NULL, FAKE_MIG_HANDLES, &t);
    if (r == NVML_SUCCESS)
        *id = t.mig->compute_instance_id;
    fake_unlock();
    return r;
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetDeviceHandleFromMigDeviceHandle(nvmlDevice_t migDevice, nvmlDevice_t *device)
{
    fake_target_t t;
    fake_lock();
    nvmlReturn_t r = fake_device_gate(FAKE_FN_nvmlDeviceGetDeviceHandleFromMigDeviceHandle, migDevice,
                                      device != NULL, FAKE_ANY_HANDLE, &t);
    /* NVML documents a GPU handle here as an invalid argument, not as unsupported. */
    if (r == NVML_SUCCESS && !t.mig)
        r = NVML_ERROR_INVALID_ARGUMENT;
    if (r == NVML_SUCCESS)
        *device = fake_gpu_handle(t.gpu_index);
    fake_unlock();
    return r;
}
