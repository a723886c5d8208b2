/*
 * fake_cuda_device.c: cuInit, versions, error strings and device queries.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_cuda_state.h"

FAKE_EXPORT CUresult cuInit(unsigned int Flags)
{
    fake_cuda_state_t *st = fake_state();
    fake_lock();
    if (Flags != 0)
        return fake_leave(CUDA_ERROR_INVALID_VALUE);
    if (st->initialized)
        return fake_leave(CUDA_SUCCESS);
    char err[512];
    if (!fake_cuda_config_load(&st->config, err, sizeof err)) {
        (void)fprintf(stderr, "fake libcuda: %s\n", err);
        return fake_leave(CUDA_ERROR_UNKNOWN);
    }
    for (unsigned int i = 0; i < st->config.error_count; i++)
        if (strcmp(st->config.errors[i].fn, "cuInit") == 0)
            return fake_leave((CUresult)st->config.errors[i].code);
    unsigned int visible[FAKE_CUDA_MAX_DEVICES];
    st->device_count = fake_cuda_visible(&st->config, getenv("CUDA_VISIBLE_DEVICES"), visible);
    if (st->device_count == 0)
        return fake_leave(CUDA_ERROR_NO_DEVICE);
    for (unsigned int i = 0; i < st->device_count; i++) {
        fake_device_t *d = &st->devices[i];
        memset(d, 0, sizeof *d);
        d->cfg = st->config.devices[visible[i]];
        d->physical = visible[i];
        d->primary.device = (int)i;
        d->primary.primary = true;
        d->primary.sm_count = d->cfg.sm_count;
        d->default_pool = d->current_pool = fake_pool_new((int)i, true);
        if (!d->default_pool)
            return fake_leave(CUDA_ERROR_OUT_OF_MEMORY);
    }
    st->checkpoint_state = CU_PROCESS_STATE_RUNNING;
    fake_busy_open();
    fake_shared_memory_open();
    fake_checkpoint_agent_start();
    st->initialized = true;
    return fake_leave(CUDA_SUCCESS);
}

FAKE_EXPORT CUresult cuDriverGetVersion(int *driverVersion)
{
    /* Works before cuInit, as the real one does; the configured version needs the config. */
    if (!driverVersion)
        return CUDA_ERROR_INVALID_VALUE;
    fake_lock();
    *driverVersion = fake_state()->initialized ? fake_state()->config.driver_version : GS_CUDA_API_VERSION;
    return fake_leave(CUDA_SUCCESS);
}

/* ---- error strings ------------------------------------------------------------------ */
typedef struct result_name {
    CUresult code;
    const char *name;
} result_name_t;

#define RESULT_ROW(n, v) {n, #n},
static const result_name_t result_names[] = {GS_CUDA_RESULT_LIST(RESULT_ROW)};
#undef RESULT_ROW

static const char *result_name(CUresult error)
{
    for (size_t i = 0; i < sizeof result_names / sizeof result_names[0]; i++)
        if (result_names[i].code == error)
            return result_names[i].name;
    return NULL;
}

FAKE_EXPORT CUresult cuGetErrorName(CUresult error, const char **pStr)
{
    if (!pStr)
        return CUDA_ERROR_INVALID_VALUE;
    *pStr = result_name(error);
    return *pStr ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

FAKE_EXPORT CUresult cuGetErrorString(CUresult error, const char **pStr)
{
    if (!pStr)
        return CUDA_ERROR_INVALID_VALUE;
    /* The real strings are prose; tests only need something stable and distinct. */
    switch (error) {
    case CUDA_SUCCESS: *pStr = "no error"; break;
    case CUDA_ERROR_INVALID_VALUE: *pStr = "invalid argument"; break;
    case CUDA_ERROR_OUT_OF_MEMORY: *pStr = "out of memory"; break;
    case CUDA_ERROR_NOT_INITIALIZED: *pStr = "initialization error"; break;
    case CUDA_ERROR_INVALID_CONTEXT: *pStr = "invalid device context"; break;
    case CUDA_ERROR_INVALID_DEVICE: *pStr = "invalid device ordinal"; break;
    case CUDA_ERROR_NO_DEVICE: *pStr = "no CUDA-capable device is detected"; break;
    case CUDA_ERROR_INVALID_HANDLE: *pStr = "invalid resource handle"; break;
    case CUDA_ERROR_NOT_READY: *pStr = "device not ready"; break;
    case CUDA_ERROR_NOT_FOUND: *pStr = "named symbol not found"; break;
    default: *pStr = result_name(error); break;
    }
    return *pStr ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

/* ---- devices ------------------------------------------------------------------------ */
FAKE_EXPORT CUresult cuDeviceGetCount(int *count)
{
    CUresult r = fake_enter("cuDeviceGetCount");
    if (r == CUDA_SUCCESS && !count)
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS)
        *count = (int)fake_state()->device_count;
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuDeviceGet(CUdevice *device, int ordinal)
{
    CUresult r = fake_enter("cuDeviceGet");
    if (r == CUDA_SUCCESS && !device)
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && !fake_device_valid(ordinal))
        r = CUDA_ERROR_INVALID_DEVICE;
    if (r == CUDA_SUCCESS)
        *device = ordinal;
    return fake_leave(r);
}

/* Common prologue of the per-device queries. */
static CUresult device_gate(const char *fn, bool args_ok, CUdevice dev)
{
    CUresult r = fake_enter(fn);
    if (r == CUDA_SUCCESS && !args_ok)
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && !fake_device_valid(dev))
        r = CUDA_ERROR_INVALID_DEVICE;
    return r;
}

FAKE_EXPORT CUresult cuDeviceGetName(char *name, int len, CUdevice dev)
{
    CUresult r = device_gate("cuDeviceGetName", name && len > 0, dev);
    if (r == CUDA_SUCCESS)
        (void)snprintf(name, (size_t)len, "%s", fake_state()->devices[dev].cfg.name);
    return fake_leave(r);
}

void fake_uuid_bytes(const char *text, unsigned char out[16])
{
    const char *s = strncmp(text, "GPU-", 4) == 0 ? text + 4 : text;
    memset(out, 0, 16);
    for (int i = 0; i < 16 && *s;) {
        unsigned int byte;
        if (*s == '-') {
            s++;
            continue;
        }
        if (sscanf(s, "%2x", &byte) != 1)
            break;
        out[i++] = (unsigned char)byte;
        s += 2;
    }
}

static CUresult get_uuid(const char *fn, CUuuid *uuid, CUdevice dev)
{
    CUresult r = device_gate(fn, uuid != NULL, dev);
    if (r == CUDA_SUCCESS) {
        unsigned char b[16];
        fake_uuid_bytes(fake_state()->devices[dev].cfg.uuid, b);
        _Static_assert(sizeof uuid->bytes == sizeof b, "CUuuid holds 16 bytes");
        memcpy(uuid->bytes, b, sizeof b);
    }
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuDeviceGetUuid(CUuuid *uuid, CUdevice dev)
{
    return get_uuid("cuDeviceGetUuid", uuid, dev);
}

FAKE_EXPORT CUresult cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice dev)
{
    return get_uuid("cuDeviceGetUuid_v2", uuid, dev);
}

FAKE_EXPORT CUresult cuDeviceGetPCIBusId(char *pciBusId, int len, CUdevice dev)
{
    CUresult r = device_gate("cuDeviceGetPCIBusId", pciBusId && len > 0, dev);
    if (r == CUDA_SUCCESS) {
        const fake_cuda_device_config_t *c = &fake_state()->devices[dev].cfg;
        (void)snprintf(pciBusId, (size_t)len, "%04x:%02x:%02x.0", c->pci_domain, c->pci_bus, c->pci_device);
    }
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev)
{
    CUresult r = device_gate("cuDeviceTotalMem_v2", bytes != NULL, dev);
    if (r == CUDA_SUCCESS)
        *bytes = (size_t)fake_state()->devices[dev].cfg.total_bytes;
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuDeviceTotalMem(unsigned int *bytes, CUdevice dev)
{
    CUresult r = device_gate("cuDeviceTotalMem", bytes != NULL, dev);
    if (r == CUDA_SUCCESS) {
        /* The 32-bit ABI saturates rather than wraps. */
        unsigned long long t = fake_state()->devices[dev].cfg.total_bytes;
        *bytes = t > 0xffffffffULL ? 0xffffffffU : (unsigned int)t;
    }
    return fake_leave(r);
}

static int attribute_value(const fake_cuda_device_config_t *c, CUdevice_attribute a, bool *known)
{
    *known = true;
    switch (a) {
    case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK: return 1024;
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X: return 1024;
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Y: return 1024;
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_Z: return 64;
    case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X: return 2147483647;
    case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Y: return 65535;
    case CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_Z: return 65535;
    case CU_DEVICE_ATTRIBUTE_WARP_SIZE: return 32;
    case CU_DEVICE_ATTRIBUTE_MAX_PITCH: return 2147483647;
    case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: return (int)c->sm_count;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: return (int)c->cc_major;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: return (int)c->cc_minor;
    case CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID: return (int)c->pci_domain;
    case CU_DEVICE_ATTRIBUTE_PCI_BUS_ID: return (int)c->pci_bus;
    case CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID: return (int)c->pci_device;
    case CU_DEVICE_ATTRIBUTE_TEXTURE_PITCH_ALIGNMENT: return 32;
    case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR: return 2048;
    case CU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS:
    case CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING:
    case CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY:
    case CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS:
    case CU_DEVICE_ATTRIBUTE_COOPERATIVE_LAUNCH:
    case CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY:
    case CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED:
    case CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED:
    case CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED:
        return 1;
    case CU_DEVICE_ATTRIBUTE_MEMPOOL_SUPPORTED_HANDLE_TYPES: return CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
    case CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT: return 2;
    /* An H100's memory and SM limits, those fake_cuda_function.c's kernels are sized by: what
     * cuBLAS reads at its start to choose kernels (0 would leave it none). */
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK: return 48 * 1024;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: return 227 * 1024;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_MULTIPROCESSOR: return 228 * 1024;
    case CU_DEVICE_ATTRIBUTE_RESERVED_SHARED_MEMORY_PER_BLOCK: return 1024;
    case CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK:
    case CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_MULTIPROCESSOR: return 65536;
    case CU_DEVICE_ATTRIBUTE_MAX_BLOCKS_PER_MULTIPROCESSOR: return 32;
    case CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY: return 64 * 1024;
    case CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE: return 50 * 1024 * 1024;
    case CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH: return 5120;
    case CU_DEVICE_ATTRIBUTE_CLOCK_RATE: return 1980000;
    case CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE: return 2619000;
    default:
        /* Known to CUDA 13 but not modelled: 0, like an unsupported feature. */
        *known = a > 0 && a <= CU_DEVICE_ATTRIBUTE_ONLY_PARTIAL_HOST_NATIVE_ATOMIC_SUPPORTED;
        return 0;
    }
}

FAKE_EXPORT CUresult cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev)
{
    CUresult r = device_gate("cuDeviceGetAttribute", pi != NULL, dev);
    if (r == CUDA_SUCCESS) {
        bool known;
        int v = attribute_value(&fake_state()->devices[dev].cfg, attrib, &known);
        if (known)
            *pi = v;
        else
            r = CUDA_ERROR_INVALID_VALUE;
    }
    return fake_leave(r);
}
