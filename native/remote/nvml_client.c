/*
 * nvml_client.c: the remote client's libnvidia-ml.so.1 (docs/remote.md "NVML"): the NVML
 * calls PyTorch and CuPy make, answered from the session through the client libcuda.so.1
 * beside it (one connection per process: this library opens none of its own). Devices are
 * the session's devices; names, UUIDs, PCI ids and compute capability are the worker's
 * driver's answers; memory is the device's total as the worker's driver reports it
 * (libgpushare in the worker: the slice) and what this session holds. Every other NVML
 * entry point is absent, as in an older NVML: callers that dlsym it see it missing.
 */
#include "gs_cuda.h"
#include "gs_nvml.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define GSR_NVML_EXPORT __attribute__((visibility("default")))
#define MAX_DEVICES 64
#define CU_ATTR_CC_MAJOR 75
#define CU_ATTR_CC_MINOR 76

/* Exported by the client libcuda.so.1 (client_runtime.c). */
CUresult gsr_remote_session_memory(int dev, unsigned long long *total, unsigned long long *used);

/* Handles point into this array, so a forged one is recognised by its address. */
static struct nvml_device {
    int index;
} devices[MAX_DEVICES];

static struct {
    pthread_mutex_t lock;
    int inits; /* nvmlInit minus nvmlShutdown calls */
    int count;
} nvml = {.lock = PTHREAD_MUTEX_INITIALIZER};

static nvmlReturn_t from_cuda(CUresult rc) {
    switch (rc) {
    case CUDA_SUCCESS:
        return NVML_SUCCESS;
    case CUDA_ERROR_INVALID_VALUE:
        return NVML_ERROR_INVALID_ARGUMENT;
    case CUDA_ERROR_NO_DEVICE:
    case CUDA_ERROR_DEVICE_UNAVAILABLE:
        return NVML_ERROR_DRIVER_NOT_LOADED;
    case CUDA_ERROR_INVALID_DEVICE:
        return NVML_ERROR_NOT_FOUND;
    default:
        return NVML_ERROR_UNKNOWN;
    }
}

GSR_NVML_EXPORT nvmlReturn_t nvmlInitWithFlags(unsigned int flags) {
    (void)flags;
    CUresult rc = cuInit(0);
    int count = 0;
    if (rc == CUDA_SUCCESS) rc = cuDeviceGetCount(&count);
    if (rc != CUDA_SUCCESS) return from_cuda(rc);
    pthread_mutex_lock(&nvml.lock);
    nvml.count = count > MAX_DEVICES ? MAX_DEVICES : count;
    for (int i = 0; i < nvml.count; i++) devices[i].index = i;
    nvml.inits++;
    pthread_mutex_unlock(&nvml.lock);
    return NVML_SUCCESS;
}

GSR_NVML_EXPORT nvmlReturn_t nvmlInit_v2(void) { return nvmlInitWithFlags(0); }
GSR_NVML_EXPORT nvmlReturn_t nvmlInit(void) { return nvmlInitWithFlags(0); }

GSR_NVML_EXPORT nvmlReturn_t nvmlShutdown(void) {
    pthread_mutex_lock(&nvml.lock);
    nvmlReturn_t r = nvml.inits > 0 ? NVML_SUCCESS : NVML_ERROR_UNINITIALIZED;
    if (nvml.inits > 0) nvml.inits--;
    pthread_mutex_unlock(&nvml.lock);
    return r;
}

static int initialized(void) {
    pthread_mutex_lock(&nvml.lock);
    int on = nvml.inits > 0;
    pthread_mutex_unlock(&nvml.lock);
    return on;
}

GSR_NVML_EXPORT const char *nvmlErrorString(nvmlReturn_t result) {
    switch (result) {
    case NVML_SUCCESS:
        return "Success";
    case NVML_ERROR_UNINITIALIZED:
        return "Uninitialized";
    case NVML_ERROR_INVALID_ARGUMENT:
        return "Invalid Argument";
    case NVML_ERROR_NOT_SUPPORTED:
        return "Not Supported";
    case NVML_ERROR_NOT_FOUND:
        return "Not Found";
    case NVML_ERROR_INSUFFICIENT_SIZE:
        return "Insufficient Size";
    case NVML_ERROR_DRIVER_NOT_LOADED:
        return "Driver Not Loaded (the remote session is unreachable)";
    default:
        return "Unknown Error";
    }
}

/* The device a handle names, or NULL (not one of ours, or NVML not initialized). */
static const struct nvml_device *device_of(nvmlDevice_t handle) {
    const struct nvml_device *d = (const struct nvml_device *)handle;
    if (!initialized() || d < devices || d >= devices + nvml.count) return NULL;
    return d;
}

GSR_NVML_EXPORT nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *deviceCount) {
    if (!initialized()) return NVML_ERROR_UNINITIALIZED;
    if (!deviceCount) return NVML_ERROR_INVALID_ARGUMENT;
    *deviceCount = (unsigned)nvml.count;
    return NVML_SUCCESS;
}
GSR_NVML_EXPORT nvmlReturn_t nvmlDeviceGetCount(unsigned int *deviceCount) { return nvmlDeviceGetCount_v2(deviceCount); }

GSR_NVML_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
    if (!initialized()) return NVML_ERROR_UNINITIALIZED;
    if (!device || index >= (unsigned)nvml.count) return NVML_ERROR_INVALID_ARGUMENT;
    *device = (nvmlDevice_t)&devices[index];
    return NVML_SUCCESS;
}
GSR_NVML_EXPORT nvmlReturn_t nvmlDeviceGetHandleByIndex(unsigned int index, nvmlDevice_t *device) {
    return nvmlDeviceGetHandleByIndex_v2(index, device);
}

GSR_NVML_EXPORT nvmlReturn_t nvmlDeviceGetIndex(nvmlDevice_t device, unsigned int *index) {
    const struct nvml_device *d = device_of(device);
    if (!initialized()) return NVML_ERROR_UNINITIALIZED;
    if (!d || !index) return NVML_ERROR_INVALID_ARGUMENT;
    *index = (unsigned)d->index;
    return NVML_SUCCESS;
}

/* Copies text into a caller's buffer of `length` bytes: INSUFFICIENT_SIZE when it does not fit. */
static nvmlReturn_t put_text(char *out, unsigned int length, const char *text) {
    if (!out) return NVML_ERROR_INVALID_ARGUMENT;
    size_t n = strlen(text);
    if (n + 1 > length) return NVML_ERROR_INSUFFICIENT_SIZE;
    memcpy(out, text, n + 1);
    return NVML_SUCCESS;
}

GSR_NVML_EXPORT nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t device, char *name, unsigned int length) {
    const struct nvml_device *d = device_of(device);
    if (!initialized()) return NVML_ERROR_UNINITIALIZED;
    if (!d) return NVML_ERROR_INVALID_ARGUMENT;
    char text[NVML_DEVICE_NAME_V2_BUFFER_SIZE];
    CUresult rc = cuDeviceGetName(text, sizeof text, d->index);
    return rc != CUDA_SUCCESS ? from_cuda(rc) : put_text(name, length, text);
}

/* NVML's form of a device UUID: "GPU-" and the 16 bytes as 8-4-4-4-12 hex digits. */
static CUresult uuid_text(int index, char out[48]) {
    CUuuid u;
    CUresult rc = cuDeviceGetUuid_v2(&u, index);
    if (rc != CUDA_SUCCESS) return rc;
    const unsigned char *b = (const unsigned char *)u.bytes;
    snprintf(out, 48, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5],
             b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    return CUDA_SUCCESS;
}

GSR_NVML_EXPORT nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t device, char *uuid, unsigned int length) {
    const struct nvml_device *d = device_of(device);
    if (!initialized()) return NVML_ERROR_UNINITIALIZED;
    if (!d) return NVML_ERROR_INVALID_ARGUMENT;
    char text[48];
    CUresult rc = uuid_text(d->index, text);
    return rc != CUDA_SUCCESS ? from_cuda(rc) : put_text(uuid, length, text);
}

GSR_NVML_EXPORT nvmlReturn_t nvmlDeviceGetHandleByUUID(const char *uuid, nvmlDevice_t *device) {
    if (!initialized()) return NVML_ERROR_UNINITIALIZED;
    if (!uuid || !device) return NVML_ERROR_INVALID_ARGUMENT;
    for (int i = 0; i < nvml.count; i++) {
        char text[48];
        CUresult rc = uuid_text(i, text);
        if (rc != CUDA_SUCCESS) return from_cuda(rc);
        if (strcmp(text, uuid) == 0) {
            *device = (nvmlDevice_t)&devices[i];
            return NVML_SUCCESS;
        }
    }
    return NVML_ERROR_NOT_FOUND;
}

GSR_NVML_EXPORT nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char *pciBusId, nvmlDevice_t *device) {
    if (!initialized()) return NVML_ERROR_UNINITIALIZED;
    if (!pciBusId || !device) return NVML_ERROR_INVALID_ARGUMENT;
    for (int i = 0; i < nvml.count; i++) {
        char text[NVML_DEVICE_PCI_BUS_ID_BUFFER_SIZE];
        CUresult rc = cuDeviceGetPCIBusId(text, sizeof text, i);
        if (rc != CUDA_SUCCESS) return from_cuda(rc);
        if (strcasecmp(text, pciBusId) == 0) {
            *device = (nvmlDevice_t)&devices[i];
            return NVML_SUCCESS;
        }
    }
    return NVML_ERROR_NOT_FOUND;
}

GSR_NVML_EXPORT nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t device, int *major, int *minor) {
    const struct nvml_device *d = device_of(device);
    if (!initialized()) return NVML_ERROR_UNINITIALIZED;
    if (!d || !major || !minor) return NVML_ERROR_INVALID_ARGUMENT;
    CUresult rc = cuDeviceGetAttribute(major, (CUdevice_attribute)CU_ATTR_CC_MAJOR, d->index);
    if (rc == CUDA_SUCCESS) rc = cuDeviceGetAttribute(minor, (CUdevice_attribute)CU_ATTR_CC_MINOR, d->index);
    return from_cuda(rc);
}

static nvmlReturn_t memory(nvmlDevice_t device, unsigned long long *total, unsigned long long *used) {
    const struct nvml_device *d = device_of(device);
    if (!initialized()) return NVML_ERROR_UNINITIALIZED;
    if (!d) return NVML_ERROR_INVALID_ARGUMENT;
    return from_cuda(gsr_remote_session_memory(d->index, total, used));
}

GSR_NVML_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t device, nvmlMemory_t *m) {
    if (!m) return NVML_ERROR_INVALID_ARGUMENT;
    unsigned long long total = 0, used = 0;
    nvmlReturn_t r = memory(device, &total, &used);
    if (r != NVML_SUCCESS) return r;
    m->total = total;
    m->used = used > total ? total : used;
    m->free = total - m->used;
    return NVML_SUCCESS;
}

GSR_NVML_EXPORT nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t device, nvmlMemory_v2_t *m) {
    if (!m) return NVML_ERROR_INVALID_ARGUMENT;
    if (m->version != nvmlMemory_v2) return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
    nvmlMemory_t v1;
    nvmlReturn_t r = nvmlDeviceGetMemoryInfo(device, &v1);
    if (r != NVML_SUCCESS) return r;
    m->total = v1.total;
    m->reserved = 0;
    m->used = v1.used;
    m->free = v1.free;
    return NVML_SUCCESS;
}

GSR_NVML_EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *cudaDriverVersion) {
    if (!initialized()) return NVML_ERROR_UNINITIALIZED;
    if (!cudaDriverVersion) return NVML_ERROR_INVALID_ARGUMENT;
    return from_cuda(cuDriverGetVersion(cudaDriverVersion));
}
GSR_NVML_EXPORT nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *cudaDriverVersion) {
    return nvmlSystemGetCudaDriverVersion_v2(cudaDriverVersion);
}
