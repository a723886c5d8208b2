/*
 * fake_nvml.c: the fake libnvidia-ml.so.1 for CPU-only tests (contract: FAKE_NVML.md).
 * This file: library lifetime, error strings and system queries. Device queries are in
 * fake_nvml_device.c, MIG in fake_nvml_mig.c, processes in fake_nvml_process.c, topology
 * and NVLink in fake_nvml_topology.c; the shared state in fake_nvml_state.c.
 *
 * Only nvml* symbols are exported (fake_nvml.map and -fvisibility=hidden), and every
 * exported function is declared in gs_nvml_api.h, so its signature is NVIDIA's.
 */
#include <stddef.h>

#include "fake_nvml_state.h"
#include "fake_nvml_util.h"

/* The strings libnvidia-ml.so returns, taken from the R535 (535.261.03) and R550
 * (550.163.01) libraries; note they differ from the comments in nvml.h. */
static const char *const error_strings[] = {
    [NVML_SUCCESS] = "Success",
    [NVML_ERROR_UNINITIALIZED] = "Uninitialized",
    [NVML_ERROR_INVALID_ARGUMENT] = "Invalid Argument",
    [NVML_ERROR_NOT_SUPPORTED] = "Not Supported",
    [NVML_ERROR_NO_PERMISSION] = "Insufficient Permissions",
    [NVML_ERROR_ALREADY_INITIALIZED] = "Already Initialized",
    [NVML_ERROR_NOT_FOUND] = "Not Found",
    [NVML_ERROR_INSUFFICIENT_SIZE] = "Insufficient Size",
    [NVML_ERROR_INSUFFICIENT_POWER] = "Insufficient External Power",
    [NVML_ERROR_DRIVER_NOT_LOADED] = "Driver Not Loaded",
    [NVML_ERROR_TIMEOUT] = "Timeout",
    [NVML_ERROR_IRQ_ISSUE] = "Interrupt Request Issue",
    [NVML_ERROR_LIBRARY_NOT_FOUND] = "NVML Shared Library Not Found",
    [NVML_ERROR_FUNCTION_NOT_FOUND] = "Function Not Found",
    [NVML_ERROR_CORRUPTED_INFOROM] = "Corrupted infoROM",
    [NVML_ERROR_GPU_IS_LOST] = "GPU is lost",
    [NVML_ERROR_RESET_REQUIRED] = "GPU requires reset",
    [NVML_ERROR_OPERATING_SYSTEM] = "GPU access blocked by the operating system",
    [NVML_ERROR_LIB_RM_VERSION_MISMATCH] = "Driver/library version mismatch",
    [NVML_ERROR_IN_USE] = "In use by another client",
    [NVML_ERROR_MEMORY] = "Insufficient Memory",
    [NVML_ERROR_NO_DATA] = "No data",
    [NVML_ERROR_VGPU_ECC_NOT_SUPPORTED] = "vGPU ECC not supported",
    [NVML_ERROR_INSUFFICIENT_RESOURCES] = "Insufficient Resources",
    [NVML_ERROR_FREQ_NOT_SUPPORTED] = "Invalid Frequency",
    [NVML_ERROR_ARGUMENT_VERSION_MISMATCH] = "Argument version mismatch",
    [NVML_ERROR_DEPRECATED] = "Requested functionality has been deprecated",
    [NVML_ERROR_NOT_READY] = "System is not in ready state",
    [NVML_ERROR_GPU_NOT_FOUND] = "No supported GPUs were found",
    [NVML_ERROR_INVALID_STATE] = "Resource not in correct state to perform requested operation",
};

FAKE_EXPORT const char *nvmlErrorString(nvmlReturn_t result)
{
    unsigned int code = (unsigned int)result;
    if (code < sizeof error_strings / sizeof error_strings[0] && error_strings[code])
        return error_strings[code];
    return "Unknown Error"; /* NVML_ERROR_UNKNOWN and any code NVML does not know */
}

FAKE_EXPORT nvmlReturn_t nvmlInit_v2(void)
{
    fake_lock();
    nvmlReturn_t r = fake_acquire(FAKE_FN_nvmlInit_v2);
    fake_unlock();
    return r;
}

FAKE_EXPORT nvmlReturn_t nvmlInitWithFlags(unsigned int flags)
{
    /* NO_GPUS and NO_ATTACH change nothing here: the fake never fails for lack of GPUs
     * and has nothing to attach. Unknown bits are ignored, as NVML does. */
    (void)flags;
    fake_lock();
    nvmlReturn_t r = fake_acquire(FAKE_FN_nvmlInitWithFlags);
    fake_unlock();
    return r;
}

FAKE_EXPORT nvmlReturn_t nvmlShutdown(void)
{
    fake_lock();
    nvmlReturn_t r = fake_release();
    fake_unlock();
    return r;
}

FAKE_EXPORT nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length)
{
    fake_lock();
    nvmlReturn_t r = fake_system_gate(FAKE_FN_nvmlSystemGetDriverVersion, version != NULL);
    if (r == NVML_SUCCESS)
        r = fake_copy_string(version, length, fake_machine()->driver_version);
    fake_unlock();
    return r;
}

FAKE_EXPORT nvmlReturn_t nvmlSystemGetNVMLVersion(char *version, unsigned int length)
{
    fake_lock();
    nvmlReturn_t r = fake_system_gate(FAKE_FN_nvmlSystemGetNVMLVersion, version != NULL);
    if (r == NVML_SUCCESS)
        r = fake_copy_string(version, length, fake_machine()->nvml_version);
    fake_unlock();
    return r;
}

FAKE_EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *cudaDriverVersion)
{
    fake_lock();
    nvmlReturn_t r = fake_system_gate(FAKE_FN_nvmlSystemGetCudaDriverVersion_v2, cudaDriverVersion != NULL);
    if (r == NVML_SUCCESS)
        *cudaDriverVersion = fake_machine()->cuda_driver_version;
    fake_unlock();
    return r;
}
