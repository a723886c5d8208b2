/*
 * client_api.c: the CUDA driver entry points the remote client forwards (docs/remote.md
 * "Client library"). Kept on this side: the per-thread context stack, immutable device
 * answers (cached on first use), functions' parameter layouts, error names. Over the
 * ~400-line guide because it is the one list of forwarded entry points, each a few lines.
 */
#define _DEFAULT_SOURCE
#include "client.h"
#include "cuda_extra.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEVICES 64
#define MAX_ATTRIBUTES 256
#define CTX_STACK_DEPTH 32

/* ---- the calling thread's context stack (ids; the driver keeps one per thread too) ---- */
static _Thread_local uint64_t ctx_stack[CTX_STACK_DEPTH];
static _Thread_local int ctx_depth;

uint64_t gsr_current_ctx(void) { return ctx_depth ? ctx_stack[ctx_depth - 1] : 0; }

static void set_current(uint64_t id) {
    if (id == 0) {
        if (ctx_depth) ctx_depth--;
    } else if (ctx_depth) {
        ctx_stack[ctx_depth - 1] = id;
    } else {
        ctx_stack[ctx_depth++] = id;
    }
}

static CUcontext ctx_handle(uint64_t id) { return (CUcontext)(uintptr_t)id; }
static uint64_t ctx_id(CUcontext c) { return (uint64_t)(uintptr_t)c; }

/* ---- immutable answers, cached (process-wide, filled once per item) ------------------ */
static struct {
    pthread_mutex_t lock;
    int initialized;
    int count; /* -1: not asked yet */
    int driver_version;
    struct {
        int have_name, have_uuid, have_total, have_pci;
        char name[256], pci[64];
        CUuuid uuid;
        size_t total;
        unsigned char have_attr[MAX_ATTRIBUTES];
        int attr[MAX_ATTRIBUTES];
    } dev[MAX_DEVICES];
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER, .count = -1};

static CUresult need_init(void) { return __atomic_load_n(&cache.initialized, __ATOMIC_ACQUIRE) ? CUDA_SUCCESS : CUDA_ERROR_NOT_INITIALIZED; }

static CUresult device_count(int *count) {
    pthread_mutex_lock(&cache.lock);
    CUresult rc = CUDA_SUCCESS;
    if (cache.count < 0) {
        gsr_args out;
        rc = gsr_call(GSR_OP_DEVICE_GET_COUNT, &(gsr_args){0}, &out);
        if (rc == CUDA_SUCCESS) cache.count = (int)out.v[0] > MAX_DEVICES ? MAX_DEVICES : (int)out.v[0];
    }
    if (rc == CUDA_SUCCESS) *count = cache.count;
    pthread_mutex_unlock(&cache.lock);
    return rc;
}

static CUresult check_device(CUdevice dev) {
    int n = 0;
    CUresult rc = device_count(&n);
    if (rc != CUDA_SUCCESS) return rc;
    return (dev < 0 || dev >= n) ? CUDA_ERROR_INVALID_DEVICE : CUDA_SUCCESS;
}

GSR_EXPORT CUresult cuInit(unsigned int Flags) {
    if (Flags != 0) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = gsr_connect_once();
    if (rc != CUDA_SUCCESS) return rc;
    gsr_args out;
    rc = gsr_call(GSR_OP_DRIVER_GET_VERSION, &(gsr_args){0}, &out);
    if (rc != CUDA_SUCCESS) return rc;
    cache.driver_version = (int)out.v[0];
    __atomic_store_n(&cache.initialized, 1, __ATOMIC_RELEASE);
    return CUDA_SUCCESS;
}

GSR_EXPORT CUresult cuDriverGetVersion(int *driverVersion) {
    if (!driverVersion) return CUDA_ERROR_INVALID_VALUE;
    if (!__atomic_load_n(&cache.initialized, __ATOMIC_ACQUIRE)) {
        /* Allowed before cuInit, as the driver allows it: ask the worker. */
        gsr_args out;
        CUresult rc = gsr_call(GSR_OP_DRIVER_GET_VERSION, &(gsr_args){0}, &out);
        if (rc != CUDA_SUCCESS) return rc;
        *driverVersion = (int)out.v[0];
        return CUDA_SUCCESS;
    }
    *driverVersion = cache.driver_version;
    return CUDA_SUCCESS;
}

GSR_EXPORT CUresult cuDeviceGetCount(int *count) {
    if (!count) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = need_init();
    return rc != CUDA_SUCCESS ? rc : device_count(count);
}

GSR_EXPORT CUresult cuDeviceGet(CUdevice *device, int ordinal) {
    if (!device) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = need_init();
    if (rc == CUDA_SUCCESS) rc = check_device(ordinal);
    if (rc == CUDA_SUCCESS) *device = ordinal;
    return rc;
}

/* One immutable answer about a device: from the cache, else asked once and kept. */
static CUresult device_query(unsigned op, CUdevice dev, int attrib, gsr_args *out) {
    CUresult rc = need_init();
    if (rc == CUDA_SUCCESS) rc = check_device(dev);
    if (rc != CUDA_SUCCESS) return rc;
    gsr_args in = {.nv = 1};
    if (op == GSR_OP_DEVICE_GET_ATTRIBUTE) {
        in.v[0] = (uint64_t)(int64_t)attrib;
        in.v[1] = (uint64_t)(int64_t)dev;
        in.nv = 2;
    } else {
        in.v[0] = (uint64_t)(int64_t)dev;
    }
    return gsr_call(op, &in, out);
}

/* Whether the answer `op` asks for about dev is cached; lock held. */
static int *cached_flag(unsigned op, CUdevice dev) {
    switch (op) {
    case GSR_OP_DEVICE_GET_NAME:
        return &cache.dev[dev].have_name;
    case GSR_OP_DEVICE_GET_PCI_BUS_ID:
        return &cache.dev[dev].have_pci;
    case GSR_OP_DEVICE_GET_UUID:
        return &cache.dev[dev].have_uuid;
    default: /* GSR_OP_DEVICE_TOTAL_MEM */
        return &cache.dev[dev].have_total;
    }
}

static void copy_text(char *slot, size_t cap, const gsr_args *reply) {
    size_t n = reply->blob_len[0] < cap - 1 ? reply->blob_len[0] : cap - 1;
    memcpy(slot, reply->blob[0], n);
    slot[n] = 0;
}

/* An immutable answer about a device (name, PCI id, UUID, total memory): asked once, then
 * copied from the cache into out (len bytes: text is cut to len - 1 and NUL-ended). */
static CUresult cached(unsigned op, CUdevice dev, void *out, size_t len) {
    if (!out || len == 0) return CUDA_ERROR_INVALID_VALUE;
    if (dev < 0 || dev >= MAX_DEVICES) return CUDA_ERROR_INVALID_DEVICE;
    pthread_mutex_lock(&cache.lock);
    if (!*cached_flag(op, dev)) {
        pthread_mutex_unlock(&cache.lock);
        gsr_args reply;
        CUresult rc = device_query(op, dev, 0, &reply);
        if (rc != CUDA_SUCCESS) return rc;
        if (op == GSR_OP_DEVICE_GET_UUID && reply.blob_len[0] != sizeof cache.dev[dev].uuid.bytes) return CUDA_ERROR_UNKNOWN;
        pthread_mutex_lock(&cache.lock);
        if (op == GSR_OP_DEVICE_GET_NAME) copy_text(cache.dev[dev].name, sizeof cache.dev[dev].name, &reply);
        if (op == GSR_OP_DEVICE_GET_PCI_BUS_ID) copy_text(cache.dev[dev].pci, sizeof cache.dev[dev].pci, &reply);
        if (op == GSR_OP_DEVICE_GET_UUID) memcpy(cache.dev[dev].uuid.bytes, reply.blob[0], sizeof cache.dev[dev].uuid.bytes);
        if (op == GSR_OP_DEVICE_TOTAL_MEM) cache.dev[dev].total = (size_t)reply.v[0];
        *cached_flag(op, dev) = 1;
    }
    if (op == GSR_OP_DEVICE_GET_NAME || op == GSR_OP_DEVICE_GET_PCI_BUS_ID) {
        strncpy(out, op == GSR_OP_DEVICE_GET_NAME ? cache.dev[dev].name : cache.dev[dev].pci, len - 1);
        ((char *)out)[len - 1] = 0;
    } else if (op == GSR_OP_DEVICE_GET_UUID) {
        memcpy(out, &cache.dev[dev].uuid, sizeof cache.dev[dev].uuid);
    } else {
        memcpy(out, &cache.dev[dev].total, sizeof cache.dev[dev].total);
    }
    pthread_mutex_unlock(&cache.lock);
    return CUDA_SUCCESS;
}

GSR_EXPORT CUresult cuDeviceGetName(char *name, int len, CUdevice dev) {
    return len <= 0 ? CUDA_ERROR_INVALID_VALUE : cached(GSR_OP_DEVICE_GET_NAME, dev, name, (size_t)len);
}
GSR_EXPORT CUresult cuDeviceGetPCIBusId(char *pciBusId, int len, CUdevice dev) {
    return len <= 0 ? CUDA_ERROR_INVALID_VALUE : cached(GSR_OP_DEVICE_GET_PCI_BUS_ID, dev, pciBusId, (size_t)len);
}
GSR_EXPORT CUresult cuDeviceGetUuid_v2(CUuuid *uuid, CUdevice dev) { return cached(GSR_OP_DEVICE_GET_UUID, dev, uuid, sizeof *uuid); }
GSR_EXPORT CUresult cuDeviceGetUuid(CUuuid *uuid, CUdevice dev) { return cuDeviceGetUuid_v2(uuid, dev); }
GSR_EXPORT CUresult cuDeviceTotalMem_v2(size_t *bytes, CUdevice dev) { return cached(GSR_OP_DEVICE_TOTAL_MEM, dev, bytes, sizeof *bytes); }

GSR_EXPORT CUresult cuDeviceGetAttribute(int *pi, CUdevice_attribute attrib, CUdevice dev) {
    if (!pi) return CUDA_ERROR_INVALID_VALUE;
    int a = (int)attrib;
    int cacheable = a >= 0 && a < MAX_ATTRIBUTES && dev >= 0 && dev < MAX_DEVICES;
    pthread_mutex_lock(&cache.lock);
    if (cacheable && cache.dev[dev].have_attr[a]) {
        *pi = cache.dev[dev].attr[a];
        pthread_mutex_unlock(&cache.lock);
        return CUDA_SUCCESS;
    }
    pthread_mutex_unlock(&cache.lock);
    gsr_args out;
    CUresult rc = device_query(GSR_OP_DEVICE_GET_ATTRIBUTE, dev, a, &out);
    if (rc != CUDA_SUCCESS) return rc;
    *pi = (int)out.v[0];
    if (cacheable) {
        pthread_mutex_lock(&cache.lock);
        cache.dev[dev].attr[a] = *pi;
        cache.dev[dev].have_attr[a] = 1;
        pthread_mutex_unlock(&cache.lock);
    }
    return CUDA_SUCCESS;
}

/* ---- contexts ----------------------------------------------------------------------- */
GSR_EXPORT CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev) {
    if (!pctx) return CUDA_ERROR_INVALID_VALUE;
    gsr_args out;
    CUresult rc = device_query(GSR_OP_PRIMARY_CTX_RETAIN, dev, 0, &out);
    if (rc == CUDA_SUCCESS) {
        *pctx = ctx_handle(out.v[0]);
        gsr_primary_retained(dev, 1);
    }
    return rc;
}

GSR_EXPORT CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev) {
    gsr_args out;
    CUresult rc = device_query(GSR_OP_PRIMARY_CTX_RELEASE, dev, 0, &out);
    if (rc == CUDA_SUCCESS) gsr_primary_retained(dev, -1);
    return rc;
}

GSR_EXPORT CUresult cuDevicePrimaryCtxRelease(CUdevice dev) { return cuDevicePrimaryCtxRelease_v2(dev); }

GSR_EXPORT CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev) {
    if (!pctx) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = need_init();
    if (rc == CUDA_SUCCESS) rc = check_device(dev);
    if (rc != CUDA_SUCCESS) return rc;
    gsr_args out;
    rc = gsr_call(GSR_OP_CTX_CREATE, &(gsr_args){.v = {flags, (uint64_t)(int64_t)dev}, .nv = 2}, &out);
    if (rc != CUDA_SUCCESS) return rc;
    *pctx = ctx_handle(out.v[0]);
    if (ctx_depth < CTX_STACK_DEPTH) ctx_stack[ctx_depth++] = out.v[0]; /* pushed, as the driver does */
    return CUDA_SUCCESS;
}

GSR_EXPORT CUresult cuCtxDestroy_v2(CUcontext ctx) {
    CUresult rc = need_init();
    if (rc != CUDA_SUCCESS) return rc;
    /* The runtime's per-context state goes first, while the context still exists: its
     * destructors may free what they kept in it, as the driver lets them. */
    if (ctx) gsr_context_storage_drop(ctx_id(ctx));
    rc = gsr_call(GSR_OP_CTX_DESTROY, &(gsr_args){.v = {ctx_id(ctx)}, .nv = 1}, NULL);
    if (rc == CUDA_SUCCESS) /* gone from this thread's stack too */
        for (int i = 0; i < ctx_depth; i++)
            if (ctx_stack[i] == ctx_id(ctx)) {
                memmove(&ctx_stack[i], &ctx_stack[i + 1], (size_t)(ctx_depth - i - 1) * sizeof ctx_stack[0]);
                ctx_depth--;
                i--;
            }
    return rc;
}

GSR_EXPORT CUresult cuCtxGetCurrent(CUcontext *pctx) {
    if (!pctx) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = need_init();
    if (rc == CUDA_SUCCESS) *pctx = ctx_handle(gsr_current_ctx());
    return rc;
}

GSR_EXPORT CUresult cuCtxSetCurrent(CUcontext ctx) {
    CUresult rc = need_init();
    if (rc == CUDA_SUCCESS) set_current(ctx_id(ctx)); /* checked by the worker at its first use */
    return rc;
}

GSR_EXPORT CUresult cuCtxPushCurrent_v2(CUcontext ctx) {
    CUresult rc = need_init();
    if (rc != CUDA_SUCCESS) return rc;
    if (!ctx) return CUDA_ERROR_INVALID_CONTEXT;
    if (ctx_depth == CTX_STACK_DEPTH) return CUDA_ERROR_OUT_OF_MEMORY;
    ctx_stack[ctx_depth++] = ctx_id(ctx);
    return CUDA_SUCCESS;
}

GSR_EXPORT CUresult cuCtxPopCurrent_v2(CUcontext *pctx) {
    CUresult rc = need_init();
    if (rc != CUDA_SUCCESS) return rc;
    if (!ctx_depth) return CUDA_ERROR_INVALID_CONTEXT;
    uint64_t top = ctx_stack[--ctx_depth];
    if (pctx) *pctx = ctx_handle(top);
    return CUDA_SUCCESS;
}

/* A call that runs in the current context: none is an error here, without a round trip. */
static CUresult ctx_call(unsigned op, const gsr_args *in, gsr_args *out) {
    CUresult rc = need_init();
    if (rc != CUDA_SUCCESS) return rc;
    if (!gsr_current_ctx()) return CUDA_ERROR_INVALID_CONTEXT;
    return gsr_call(op, in, out);
}

static CUresult plain_call(unsigned op, gsr_args *out) { return ctx_call(op, &(gsr_args){0}, out); }

GSR_EXPORT CUresult cuCtxSynchronize(void) { return plain_call(GSR_OP_CTX_SYNCHRONIZE, NULL); }

GSR_EXPORT CUresult cuCtxGetDevice(CUdevice *device) {
    if (!device) return CUDA_ERROR_INVALID_VALUE;
    gsr_args out;
    CUresult rc = plain_call(GSR_OP_CTX_GET_DEVICE, &out);
    if (rc == CUDA_SUCCESS) *device = (CUdevice)out.v[0];
    return rc;
}

/* ---- memory ------------------------------------------------------------------------- */
GSR_EXPORT CUresult cuMemGetInfo_v2(size_t *free_bytes, size_t *total) {
    if (!free_bytes || !total) return CUDA_ERROR_INVALID_VALUE;
    gsr_args out;
    CUresult rc = plain_call(GSR_OP_MEM_GET_INFO, &out);
    if (rc == CUDA_SUCCESS) {
        *free_bytes = (size_t)out.v[0];
        *total = (size_t)out.v[1];
    }
    return rc;
}

GSR_EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *dptr, size_t bytesize) {
    if (!dptr || bytesize == 0) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = need_init();
    if (rc != CUDA_SUCCESS) return rc;
    gsr_args out;
    rc = gsr_call(GSR_OP_MEM_ALLOC, &(gsr_args){.v = {bytesize}, .nv = 1}, &out);
    if (rc != CUDA_SUCCESS) return rc;
    *dptr = (CUdeviceptr)out.v[0];
    gsr_device_range_add(out.v[0], bytesize);
    return CUDA_SUCCESS;
}

GSR_EXPORT CUresult cuMemFree_v2(CUdeviceptr dptr) {
    CUresult rc = need_init();
    if (rc != CUDA_SUCCESS) return rc;
    if (dptr == 0) return CUDA_SUCCESS;
    rc = gsr_call(GSR_OP_MEM_FREE, &(gsr_args){.v = {dptr}, .nv = 1}, NULL);
    if (rc == CUDA_SUCCESS) gsr_device_range_remove(dptr);
    return rc;
}

static uint64_t stream_id(CUstream s) { return (uint64_t)(uintptr_t)s; }

static CUresult copy_htod(CUdeviceptr dst, const void *src, size_t n, CUstream stream, int async) {
    CUresult rc = need_init();
    if (rc != CUDA_SUCCESS) return rc;
    if (!src && n) return CUDA_ERROR_INVALID_VALUE;
    return gsr_send_htod(dst, src, n, stream_id(stream), async);
}

static CUresult copy_dtoh(void *dst, CUdeviceptr src, size_t n, CUstream stream, int async) {
    CUresult rc = need_init();
    if (rc != CUDA_SUCCESS) return rc;
    if (!dst && n) return CUDA_ERROR_INVALID_VALUE;
    return gsr_recv_dtoh(dst, src, n, stream_id(stream), async);
}

static CUresult copy_dtod(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream stream, int async) {
    CUresult rc = need_init();
    if (rc != CUDA_SUCCESS) return rc;
    return gsr_call(GSR_OP_MEMCPY_DTOD, &(gsr_args){.v = {dst, src, n, stream_id(stream), (uint64_t)async}, .nv = 5}, NULL);
}

GSR_EXPORT CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t n) { return copy_htod(dst, src, n, NULL, 0); }
GSR_EXPORT CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n) { return copy_dtoh(dst, src, n, NULL, 0); }
GSR_EXPORT CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n) { return copy_dtod(dst, src, n, NULL, 0); }
GSR_EXPORT CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t n, CUstream s) { return copy_htod(dst, src, n, s, 1); }
/* Into pageable memory the caller may read right after its next synchronize: the bytes are
 * delivered before this returns (CUDA allows an async copy to pageable memory to be synchronous). */
GSR_EXPORT CUresult cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t n, CUstream s) { return copy_dtoh(dst, src, n, s, 1); }
GSR_EXPORT CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) { return copy_dtod(dst, src, n, s, 1); }

static CUresult memset_d8(CUdeviceptr dst, unsigned char v, size_t n, CUstream stream, int async) {
    CUresult rc = need_init();
    if (rc != CUDA_SUCCESS) return rc;
    gsr_args in = {.v = {dst, v, n, stream_id(stream), (uint64_t)async}, .nv = 5};
    return async ? gsr_post(GSR_OP_MEMSET_D8, &in) : gsr_call(GSR_OP_MEMSET_D8, &in, NULL);
}

GSR_EXPORT CUresult cuMemsetD8_v2(CUdeviceptr dst, unsigned char uc, size_t n) { return memset_d8(dst, uc, n, NULL, 0); }
GSR_EXPORT CUresult cuMemsetD8Async(CUdeviceptr dst, unsigned char uc, size_t n, CUstream s) { return memset_d8(dst, uc, n, s, 1); }

/* ---- modules and launches ----------------------------------------------------------- */

/* How many bytes a module image spans: a fatbin or ELF by its headers, else NUL-terminated PTX.
 * `limit`: the bytes known to be there (a file's size: its headers are checked against it, and 0
 * is returned for an image that claims more), or UINT64_MAX for the program's memory, which the
 * driver trusts as far as the headers say. */
static uint64_t image_bytes(const void *image, uint64_t limit) {
    const uint8_t *p = image;
    uint32_t magic;
    if (limit < 4) return 0;
    memcpy(&magic, p, 4);
    if (magic == 0xBA55ED50u) { /* fatbin: u32 magic, u16 version, u16 header size, u64 fat size */
        uint16_t header;
        uint64_t fat;
        if (limit < 16) return 0;
        memcpy(&header, p + 6, 2);
        memcpy(&fat, p + 8, 8);
        return fat > limit || header + fat > limit ? 0 : header + fat;
    }
    if (limit >= 5 && p[0] == 0x7f && p[1] == 'E' && p[2] == 'L' && p[3] == 'F' && p[4] == 2) { /* ELF64 (cubin) */
        if (limit < 0x40) return 0;
        uint64_t shoff, phoff, end;
        uint16_t phentsize, phnum, shentsize, shnum;
        memcpy(&phoff, p + 0x20, 8);
        memcpy(&shoff, p + 0x28, 8);
        memcpy(&phentsize, p + 0x36, 2);
        memcpy(&phnum, p + 0x38, 2);
        memcpy(&shentsize, p + 0x3a, 2);
        memcpy(&shnum, p + 0x3c, 2);
        end = shoff + (uint64_t)shentsize * shnum;
        if (phoff + (uint64_t)phentsize * phnum > end) end = phoff + (uint64_t)phentsize * phnum;
        if (limit != UINT64_MAX && (shoff > limit || phoff > limit || end > limit)) return 0; /* headers past the file */
        for (uint16_t i = 0; i < shnum && shentsize >= 0x28; i++) {
            const uint8_t *sh = p + shoff + (uint64_t)i * shentsize;
            uint32_t type;
            uint64_t off, size;
            memcpy(&type, sh + 4, 4);
            memcpy(&off, sh + 0x18, 8);
            memcpy(&size, sh + 0x20, 8);
            if (type != 8 /* SHT_NOBITS */ && off + size > end) end = off + size;
            if (limit != UINT64_MAX && (off > limit || size > limit || end > limit)) return 0; /* a section past the file */
        }
        return end;
    }
    /* Text: its NUL within the limit (a file's bytes are followed by one, client_raw.c). */
    size_t n = strnlen(image, limit < GSR_MAX_MODULE_BYTES ? (size_t)limit + 1 : GSR_MAX_MODULE_BYTES);
    return limit != UINT64_MAX && n > limit ? 0 : n + 1;
}

/* Set once a function came with the worker driver's layout (cuFuncGetParamInfo): then
 * module images need not be read here (client_kparams.c). */
static int worker_reports_layouts;

GSR_EXPORT CUresult cuModuleLoadData(CUmodule *module, const void *image) {
    if (!module || !image) return CUDA_ERROR_INVALID_VALUE;
    uint64_t id = 0;
    CUresult rc = gsr_load_image(&id, image, 0);
    if (rc == CUDA_SUCCESS) *module = (CUmodule)(uintptr_t)id;
    return rc;
}

CUresult gsr_load_image(uint64_t *out_id, const void *image, int library) { return gsr_load_image_within(out_id, image, UINT64_MAX, library); }

CUresult gsr_load_image_within(uint64_t *out_id, const void *image, uint64_t limit, int library) {
    if (!out_id || !image) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = need_init();
    if (rc != CUDA_SUCCESS) return rc;
    uint32_t magic = 0;
    if (limit >= 4) memcpy(&magic, image, 4);
    int wrapped = -1;
    if (magic == 0x466243B1u && limit != UINT64_MAX) /* a wrapper holds a pointer: never in a file */
        return gsr_trace("cuModuleLoad (a fatbin wrapper in a file)", CUDA_ERROR_INVALID_IMAGE);
    if (magic == 0x466243B1u) { /* a fatbin wrapper {magic, version, data, filename}: the data */
        const void *const *data = (const void *const *)((const uint8_t *)image + 8);
        int32_t version;
        memcpy(&version, (const uint8_t *)image + 4, 4);
        wrapped = version;
        image = *data;
    }
    uint64_t bytes = image_bytes(image, limit), id = 0;
    if (bytes == 0 || bytes > GSR_MAX_MODULE_BYTES) return gsr_trace("cuModuleLoadData (image size)", CUDA_ERROR_INVALID_IMAGE);
    rc = gsr_send_module(image, bytes, library, &id);
    if (rc == CUDA_ERROR_NOT_SUPPORTED && library) return rc; /* no libraries there: the caller sends a module */
    if (rc != CUDA_SUCCESS) {
        /* The clue to an image the worker's driver refuses that a local one takes (cuBLAS on
         * an H100: CUDA_ERROR_NO_BINARY_FOR_GPU): what was sent, and what lies past it. */
        if (gsr_log_level() >= 1) {
            char what[2048];
            gsr_describe_image(what, sizeof what, image, bytes);
            if (wrapped >= 0)
                fprintf(stderr, "gpushare remote: module image refused (%d), from a fatbin wrapper of version %d: %s\n", (int)rc, wrapped, what);
            else
                fprintf(stderr, "gpushare remote: module image refused (%d): %s\n", (int)rc, what);
        }
        const char *dump = getenv("GPUSHARE_REMOTE_DUMP");
        if (dump && *dump) gsr_dump_image(dump, image, bytes);
        return rc;
    }
    *out_id = id;
    /* The image may be gone after this call: its layouts are read now, unless the worker's
     * driver is known to report them. */
    if (!__atomic_load_n(&worker_reports_layouts, __ATOMIC_RELAXED)) gsr_kparams_learn(id, image, bytes);
    return CUDA_SUCCESS;
}

GSR_EXPORT CUresult cuModuleUnload(CUmodule hmod) {
    CUresult rc = need_init();
    if (rc == CUDA_SUCCESS) rc = gsr_call(GSR_OP_MODULE_UNLOAD, &(gsr_args){.v = {(uintptr_t)hmod}, .nv = 1}, NULL);
    if (rc == CUDA_SUCCESS) gsr_kparams_forget((uintptr_t)hmod), gsr_device_globals_forget((uintptr_t)hmod);
    return rc;
}

GSR_EXPORT CUresult cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod, const char *name) {
    if (!hfunc || !name) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = need_init();
    if (rc != CUDA_SUCCESS) return rc;
    size_t n = strnlen(name, GSR_MAX_NAME + 1);
    if (n == 0 || n > GSR_MAX_NAME) return CUDA_ERROR_INVALID_VALUE;
    gsr_args out;
    rc = gsr_call(GSR_OP_MODULE_GET_FUNCTION,
                  &(gsr_args){.v = {(uintptr_t)hmod}, .nv = 1, .blob = {(const uint8_t *)name}, .blob_len = {n}, .nblob = 1}, &out);
    if (rc != CUDA_SUCCESS) return rc;
    uint32_t nparams = (uint32_t)(out.blob_len[0] / 8), layout[2 * GSR_MAX_PARAMS];
    if (out.blob_len[0] % 8 || nparams > GSR_MAX_PARAMS) return CUDA_ERROR_UNKNOWN;
    int has_layout = out.v[1] != 0;
    for (uint32_t i = 0; i < 2 * nparams; i++) {
        const uint8_t *b = out.blob[0] + 4 * i;
        layout[i] = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    }
    if (has_layout)
        __atomic_store_n(&worker_reports_layouts, 1, __ATOMIC_RELAXED);
    else
        has_layout = gsr_kparams_find((uintptr_t)hmod, name, layout, &nparams); /* read from the image */
    size_t layout_bytes = (size_t)nparams * 2 * sizeof(uint32_t);
    gsr_function *f = malloc(sizeof *f + layout_bytes + n + 1);
    if (!f) return CUDA_ERROR_OUT_OF_MEMORY;
    f->magic = GSR_FUNC_MAGIC;
    f->name = memcpy((char *)f->layout + layout_bytes, name, n + 1);
    f->id = out.v[0];
    f->module = (uintptr_t)hmod;
    f->has_layout = has_layout;
    f->nparams = nparams;
    memcpy(f->layout, layout, (size_t)nparams * 2 * sizeof(uint32_t));
    *hfunc = (CUfunction)f; /* kept for the process's life, as the driver keeps functions */
    return CUDA_SUCCESS;
}

static int logged_no_layout;

CUresult gsr_pack_params(CUfunction f, void **kernelParams, void **extra, uint8_t packed[GSR_PACKED_PARAM_BYTES], const uint8_t **out,
                         size_t *out_size) {
    CUresult rc = need_init();
    if (rc != CUDA_SUCCESS) return rc;
    const gsr_function *fn = (const gsr_function *)f;
    if (!fn || fn->magic != GSR_FUNC_MAGIC) return CUDA_ERROR_INVALID_HANDLE;
    const uint8_t *params = NULL;
    size_t size = 0;
    if (extra) { /* CU_LAUNCH_PARAM_BUFFER_POINTER / _SIZE pairs, ended by CU_LAUNCH_PARAM_END */
        for (size_t i = 0; extra[i] != CU_LAUNCH_PARAM_END; i += 2) {
            if (extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER)
                params = extra[i + 1];
            else if (extra[i] == CU_LAUNCH_PARAM_BUFFER_SIZE)
                size = *(size_t *)extra[i + 1];
            else
                return CUDA_ERROR_INVALID_VALUE;
        }
        if (!params && size) return CUDA_ERROR_INVALID_VALUE;
    } else if (kernelParams && fn->nparams) {
        for (uint32_t i = 0; i < fn->nparams; i++) {
            uint32_t end = fn->layout[2 * i] + fn->layout[2 * i + 1];
            if (end > GSR_PACKED_PARAM_BYTES) return CUDA_ERROR_INVALID_VALUE;
            memcpy(packed + fn->layout[2 * i], kernelParams[i], fn->layout[2 * i + 1]);
            if (end > size) size = end;
        }
        params = packed;
    } else if (kernelParams && !fn->has_layout) {
        gsr_log_once("cuLaunchKernel with kernelParams needs the worker's cuFuncGetParamInfo (CUDA >= 12.4); use extra", &logged_no_layout);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    *out = params;
    *out_size = size;
    return CUDA_SUCCESS;
}

GSR_EXPORT CUresult cuLaunchKernel(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx,
                                   unsigned int by, unsigned int bz, unsigned int shared, CUstream hStream, void **kernelParams,
                                   void **extra) {
    uint8_t packed[GSR_PACKED_PARAM_BYTES];
    const uint8_t *params = NULL;
    size_t size = 0;
    CUresult rc = gsr_pack_params(f, kernelParams, extra, packed, &params, &size);
    if (rc != CUDA_SUCCESS) return rc;
    gsr_args in = {.v = {((const gsr_function *)f)->id, gx, gy, gz, bx, by, bz, shared, stream_id(hStream)}, .nv = 9,
                   .blob = {params}, .blob_len = {size}, .nblob = 1};
    return gsr_post(GSR_OP_LAUNCH_KERNEL, &in);
}

/* ---- streams and events ------------------------------------------------------------- */
static CUresult create_object(unsigned op, unsigned flags, void **out_handle) {
    if (!out_handle) return CUDA_ERROR_INVALID_VALUE;
    gsr_args out;
    CUresult rc = ctx_call(op, &(gsr_args){.v = {flags}, .nv = 1}, &out);
    if (rc == CUDA_SUCCESS) *out_handle = (void *)(uintptr_t)out.v[0];
    return rc;
}

static CUresult id_call(unsigned op, uint64_t id) { return ctx_call(op, &(gsr_args){.v = {id}, .nv = 1}, NULL); }

GSR_EXPORT CUresult cuStreamCreate(CUstream *phStream, unsigned int Flags) { return create_object(GSR_OP_STREAM_CREATE, Flags, (void **)phStream); }
GSR_EXPORT CUresult cuStreamDestroy_v2(CUstream s) { return s ? id_call(GSR_OP_STREAM_DESTROY, stream_id(s)) : CUDA_ERROR_INVALID_HANDLE; }
GSR_EXPORT CUresult cuStreamDestroy(CUstream s) { return cuStreamDestroy_v2(s); }
GSR_EXPORT CUresult cuStreamSynchronize(CUstream s) { return id_call(GSR_OP_STREAM_SYNCHRONIZE, stream_id(s)); }
GSR_EXPORT CUresult cuStreamQuery(CUstream s) { return id_call(GSR_OP_STREAM_QUERY, stream_id(s)); }

static uint64_t event_id(CUevent e) { return (uint64_t)(uintptr_t)e; }

GSR_EXPORT CUresult cuEventCreate(CUevent *phEvent, unsigned int Flags) { return create_object(GSR_OP_EVENT_CREATE, Flags, (void **)phEvent); }
GSR_EXPORT CUresult cuEventDestroy_v2(CUevent e) { return id_call(GSR_OP_EVENT_DESTROY, event_id(e)); }
GSR_EXPORT CUresult cuEventDestroy(CUevent e) { return cuEventDestroy_v2(e); }
GSR_EXPORT CUresult cuEventSynchronize(CUevent e) { return id_call(GSR_OP_EVENT_SYNCHRONIZE, event_id(e)); }
GSR_EXPORT CUresult cuEventQuery(CUevent e) { return id_call(GSR_OP_EVENT_QUERY, event_id(e)); }

GSR_EXPORT CUresult cuEventRecord(CUevent e, CUstream s) {
    CUresult rc = need_init();
    if (rc != CUDA_SUCCESS) return rc;
    if (!gsr_current_ctx()) return CUDA_ERROR_INVALID_CONTEXT;
    return gsr_post(GSR_OP_EVENT_RECORD, &(gsr_args){.v = {event_id(e), stream_id(s)}, .nv = 2});
}

GSR_EXPORT CUresult cuEventElapsedTime(float *pMilliseconds, CUevent start, CUevent end) {
    if (!pMilliseconds) return CUDA_ERROR_INVALID_VALUE;
    gsr_args out;
    CUresult rc = ctx_call(GSR_OP_EVENT_ELAPSED_TIME, &(gsr_args){.v = {event_id(start), event_id(end)}, .nv = 2}, &out);
    if (rc == CUDA_SUCCESS) {
        uint32_t bits = (uint32_t)out.v[0];
        memcpy(pMilliseconds, &bits, sizeof bits);
    }
    return rc;
}

GSR_EXPORT CUresult cuEventElapsedTime_v2(float *pMilliseconds, CUevent start, CUevent end) {
    return cuEventElapsedTime(pMilliseconds, start, end);
}
