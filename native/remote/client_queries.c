/*
 * client_queries.c: what CuPy and PyTorch ask of the driver after their start (docs/remote.md
 * "Queries"): streams' capture state (PyTorch's caching allocator asks at every allocation),
 * priority, flags, id, context and device; the current context's limits, cache preference,
 * flags, API version and id; events recorded with flags; pointers' attributes; module and
 * library globals; functions' and kernels' names. Forwarded to the worker (STREAM_GET,
 * CTX_GET/SET, EVENT_RECORD_FLAGS, POINTER_GET, MODULE_GET_GLOBAL), or answered here where the
 * client already knows (names). The _ptsz forms name the per-thread default stream for NULL.
 */
#include "client.h"
#include "client_served.h"

#include <string.h>

/* ---- streams ------------------------------------------------------------------------ */
static CUresult stream_get(CUstream stream, unsigned what, gsr_args *out) {
    if (!gsr_current_ctx()) return CUDA_ERROR_INVALID_CONTEXT;
    return gsr_call(GSR_OP_STREAM_GET, &(gsr_args){.v = {(uintptr_t)stream, what}, .nv = 2}, out);
}

static CUstream per_thread(CUstream s) { return s ? s : CU_STREAM_PER_THREAD; }

/* The capture state, asked of the worker's driver: never capturing, as the client serves no
 * cuStreamBeginCapture, but the driver says so (a stream of another context is refused there). */
static CUresult capture_info(CUstream stream, CUstreamCaptureStatus *status, cuuint64_t *id) {
    if (!status) return CUDA_ERROR_INVALID_VALUE;
    gsr_args out;
    CUresult rc = stream_get(stream, GSR_STREAM_CAPTURE, &out);
    if (rc != CUDA_SUCCESS) return rc;
    *status = (CUstreamCaptureStatus)out.v[0];
    if (id) *id = out.v[1];
    return CUDA_SUCCESS;
}

GSR_EXPORT CUresult cuStreamIsCapturing(CUstream hStream, CUstreamCaptureStatus *captureStatus) {
    return capture_info(hStream, captureStatus, NULL);
}
GSR_EXPORT CUresult cuStreamIsCapturing_ptsz(CUstream hStream, CUstreamCaptureStatus *captureStatus) {
    return capture_info(per_thread(hStream), captureStatus, NULL);
}
GSR_EXPORT CUresult cuStreamGetCaptureInfo(CUstream hStream, CUstreamCaptureStatus *captureStatus, cuuint64_t *id) {
    return capture_info(hStream, captureStatus, id);
}
GSR_EXPORT CUresult cuStreamGetCaptureInfo_ptsz(CUstream hStream, CUstreamCaptureStatus *captureStatus, cuuint64_t *id) {
    return capture_info(per_thread(hStream), captureStatus, id);
}

/* _v2/_v3: the capture's graph and dependencies too; none while not capturing. */
static CUresult capture_info_full(CUstream stream, CUstreamCaptureStatus *status, cuuint64_t *id, void **graph, const void ***deps,
                                  const void **edges, size_t *ndeps) {
    CUresult rc = capture_info(stream, status, id);
    if (rc != CUDA_SUCCESS) return rc;
    if (*status != CU_STREAM_CAPTURE_STATUS_NONE) return CUDA_ERROR_NOT_SUPPORTED; /* graphs are not forwarded */
    if (graph) *graph = NULL;
    if (deps) *deps = NULL;
    if (edges) *edges = NULL;
    if (ndeps) *ndeps = 0;
    return CUDA_SUCCESS;
}

GSR_EXPORT CUresult cuStreamGetCaptureInfo_v2(CUstream hStream, CUstreamCaptureStatus *captureStatus, cuuint64_t *id, void **graph,
                                              const void ***deps, size_t *numDeps) {
    return capture_info_full(hStream, captureStatus, id, graph, deps, NULL, numDeps);
}
GSR_EXPORT CUresult cuStreamGetCaptureInfo_v2_ptsz(CUstream hStream, CUstreamCaptureStatus *captureStatus, cuuint64_t *id, void **graph,
                                                   const void ***deps, size_t *numDeps) {
    return capture_info_full(per_thread(hStream), captureStatus, id, graph, deps, NULL, numDeps);
}
GSR_EXPORT CUresult cuStreamGetCaptureInfo_v3(CUstream hStream, CUstreamCaptureStatus *captureStatus, cuuint64_t *id, void **graph,
                                              const void ***deps, const void **edgeData, size_t *numDeps) {
    return capture_info_full(hStream, captureStatus, id, graph, deps, edgeData, numDeps);
}
GSR_EXPORT CUresult cuStreamGetCaptureInfo_v3_ptsz(CUstream hStream, CUstreamCaptureStatus *captureStatus, cuuint64_t *id, void **graph,
                                                   const void ***deps, const void **edgeData, size_t *numDeps) {
    return capture_info_full(per_thread(hStream), captureStatus, id, graph, deps, edgeData, numDeps);
}

/* One value of a stream into *value (size bytes, little-endian host). */
static CUresult stream_value(CUstream stream, unsigned what, void *value, size_t size) {
    if (!value) return CUDA_ERROR_INVALID_VALUE;
    gsr_args out;
    CUresult rc = stream_get(stream, what, &out);
    if (rc != CUDA_SUCCESS) return rc;
    if (size == sizeof(int)) {
        unsigned v = (unsigned)out.v[0];
        memcpy(value, &v, sizeof v);
    } else {
        memcpy(value, &out.v[0], sizeof out.v[0]);
    }
    return CUDA_SUCCESS;
}

GSR_EXPORT CUresult cuStreamGetPriority(CUstream hStream, int *priority) { return stream_value(hStream, GSR_STREAM_PRIORITY, priority, sizeof *priority); }
GSR_EXPORT CUresult cuStreamGetPriority_ptsz(CUstream hStream, int *priority) {
    return stream_value(per_thread(hStream), GSR_STREAM_PRIORITY, priority, sizeof *priority);
}
GSR_EXPORT CUresult cuStreamGetFlags(CUstream hStream, unsigned int *flags) { return stream_value(hStream, GSR_STREAM_FLAGS, flags, sizeof *flags); }
GSR_EXPORT CUresult cuStreamGetFlags_ptsz(CUstream hStream, unsigned int *flags) {
    return stream_value(per_thread(hStream), GSR_STREAM_FLAGS, flags, sizeof *flags);
}
GSR_EXPORT CUresult cuStreamGetId(CUstream hStream, unsigned long long *streamId) {
    return stream_value(hStream, GSR_STREAM_ID, streamId, sizeof *streamId);
}
GSR_EXPORT CUresult cuStreamGetId_ptsz(CUstream hStream, unsigned long long *streamId) {
    return stream_value(per_thread(hStream), GSR_STREAM_ID, streamId, sizeof *streamId);
}
GSR_EXPORT CUresult cuStreamGetDevice(CUstream hStream, CUdevice *device) { return stream_value(hStream, GSR_STREAM_DEVICE, device, sizeof *device); }
GSR_EXPORT CUresult cuStreamGetDevice_ptsz(CUstream hStream, CUdevice *device) {
    return stream_value(per_thread(hStream), GSR_STREAM_DEVICE, device, sizeof *device);
}

/* A context handle is the session's context id (client_api.c). */
GSR_EXPORT CUresult cuStreamGetCtx(CUstream hStream, CUcontext *pctx) {
    uint64_t id = 0;
    CUresult rc = pctx ? stream_value(hStream, GSR_STREAM_CTX, &id, sizeof id) : CUDA_ERROR_INVALID_VALUE;
    if (rc == CUDA_SUCCESS) *pctx = (CUcontext)(uintptr_t)id;
    return rc;
}
GSR_EXPORT CUresult cuStreamGetCtx_ptsz(CUstream hStream, CUcontext *pctx) { return cuStreamGetCtx(per_thread(hStream), pctx); }
/* CUDA 12.5: the green context too; the client serves none. */
GSR_EXPORT CUresult cuStreamGetCtx_v2(CUstream hStream, CUcontext *pctx, void **pGreenCtx) {
    CUresult rc = cuStreamGetCtx(hStream, pctx);
    if (rc == CUDA_SUCCESS && pGreenCtx) *pGreenCtx = NULL;
    return rc;
}
GSR_EXPORT CUresult cuStreamGetCtx_v2_ptsz(CUstream hStream, CUcontext *pctx, void **pGreenCtx) {
    return cuStreamGetCtx_v2(per_thread(hStream), pctx, pGreenCtx);
}

/* ---- the current context ------------------------------------------------------------- */
static CUresult ctx_get(unsigned what, uint64_t arg, uint64_t *value) {
    if (!gsr_current_ctx()) return CUDA_ERROR_INVALID_CONTEXT;
    gsr_args out;
    CUresult rc = gsr_call(GSR_OP_CTX_GET, &(gsr_args){.v = {what, arg}, .nv = 2}, &out);
    if (rc == CUDA_SUCCESS) *value = out.v[0];
    return rc;
}

static CUresult ctx_set(unsigned what, uint64_t arg, uint64_t value) {
    if (!gsr_current_ctx()) return CUDA_ERROR_INVALID_CONTEXT;
    return gsr_call(GSR_OP_CTX_SET, &(gsr_args){.v = {what, arg, value}, .nv = 3}, NULL);
}

GSR_EXPORT CUresult cuCtxGetLimit(size_t *pvalue, int limit) {
    uint64_t v = 0;
    CUresult rc = pvalue ? ctx_get(GSR_CTX_LIMIT, (uint64_t)(int64_t)limit, &v) : CUDA_ERROR_INVALID_VALUE;
    if (rc == CUDA_SUCCESS) *pvalue = (size_t)v;
    return rc;
}
GSR_EXPORT CUresult cuCtxSetLimit(int limit, size_t value) { return ctx_set(GSR_CTX_LIMIT, (uint64_t)(int64_t)limit, value); }

GSR_EXPORT CUresult cuCtxGetCacheConfig(int *pconfig) {
    uint64_t v = 0;
    CUresult rc = pconfig ? ctx_get(GSR_CTX_CACHE_CONFIG, 0, &v) : CUDA_ERROR_INVALID_VALUE;
    if (rc == CUDA_SUCCESS) *pconfig = (int)v;
    return rc;
}
GSR_EXPORT CUresult cuCtxSetCacheConfig(int config) { return ctx_set(GSR_CTX_CACHE_CONFIG, 0, (uint64_t)(int64_t)config); }

GSR_EXPORT CUresult cuCtxGetFlags(unsigned int *flags) {
    uint64_t v = 0;
    CUresult rc = flags ? ctx_get(GSR_CTX_FLAGS, 0, &v) : CUDA_ERROR_INVALID_VALUE;
    if (rc == CUDA_SUCCESS) *flags = (unsigned)v;
    return rc;
}

/* About `ctx` (NULL: the current one): asked with ctx pushed, as the request header names the
 * calling thread's current context. */
static CUresult ctx_get_of(CUcontext ctx, unsigned what, uint64_t *value) {
    if (!ctx) return ctx_get(what, 0, value);
    CUresult rc = cuCtxPushCurrent_v2(ctx);
    if (rc != CUDA_SUCCESS) return rc;
    rc = ctx_get(what, 0, value);
    (void)cuCtxPopCurrent_v2(NULL);
    return rc;
}

GSR_EXPORT CUresult cuCtxGetApiVersion(CUcontext ctx, unsigned int *version) {
    uint64_t v = 0;
    CUresult rc = version ? ctx_get_of(ctx, GSR_CTX_API_VERSION, &v) : CUDA_ERROR_INVALID_VALUE;
    if (rc == CUDA_SUCCESS) *version = (unsigned)v;
    return rc;
}

GSR_EXPORT CUresult cuCtxGetId(CUcontext ctx, unsigned long long *ctxId) {
    uint64_t v = 0;
    CUresult rc = ctxId ? ctx_get_of(ctx, GSR_CTX_ID, &v) : CUDA_ERROR_INVALID_VALUE;
    if (rc == CUDA_SUCCESS) *ctxId = v;
    return rc;
}

/* ---- events ------------------------------------------------------------------------- */
/* Returns nothing: sent with the next synchronous call, as cuEventRecord is. */
GSR_EXPORT CUresult cuEventRecordWithFlags(CUevent hEvent, CUstream hStream, unsigned int flags) {
    if (!gsr_current_ctx()) return CUDA_ERROR_INVALID_CONTEXT;
    return gsr_post(GSR_OP_EVENT_RECORD_FLAGS, &(gsr_args){.v = {(uintptr_t)hEvent, (uintptr_t)hStream, flags}, .nv = 3});
}
GSR_EXPORT CUresult cuEventRecordWithFlags_ptsz(CUevent hEvent, CUstream hStream, unsigned int flags) {
    return cuEventRecordWithFlags(hEvent, per_thread(hStream), flags);
}

/* ---- pointers ------------------------------------------------------------------------ */
enum {
    ATTR_CONTEXT = 1,
    ATTR_MEMORY_TYPE = 2,
    ATTR_DEVICE_POINTER = 3,
    ATTR_HOST_POINTER = 4,
    ATTR_SYNC_MEMOPS = 6,
    ATTR_BUFFER_ID = 7,
    ATTR_IS_MANAGED = 8,
    ATTR_DEVICE_ORDINAL = 9,
    ATTR_IS_LEGACY_CUDA_IPC_CAPABLE = 10,
    ATTR_RANGE_START_ADDR = 11,
    ATTR_RANGE_SIZE = 12,
    ATTR_MAPPED = 13,
};
#define MEMORYTYPE_HOST 1u
#define MEMORYTYPE_DEVICE 2u

/* What a pointer is: a device pointer of this session (the worker says), page-locked host
 * memory of this process (cuMemHostAlloc, cuMemHostRegister: the client's registry), or
 * neither (known 0). */
typedef struct pointer_info {
    int known;
    unsigned type; /* MEMORYTYPE_* when known */
    uint64_t ptr, ctx, base, size;
    int device;
} pointer_info;

static CUresult pointer_info_of(CUdeviceptr ptr, pointer_info *info) {
    memset(info, 0, sizeof *info);
    info->ptr = ptr;
    if (gsr_host_range_holds(ptr, &info->base, &info->size)) {
        /* Pinned for the session's device (one a session), in the current context. */
        info->known = 1;
        info->type = MEMORYTYPE_HOST;
        info->ctx = gsr_current_ctx();
        return CUDA_SUCCESS;
    }
    CUresult rc = gsr_connect_once();
    if (rc != CUDA_SUCCESS) return rc;
    gsr_args out;
    rc = gsr_call(GSR_OP_POINTER_GET, &(gsr_args){.v = {ptr}, .nv = 1}, &out);
    if (rc == CUDA_ERROR_INVALID_VALUE) return CUDA_SUCCESS; /* not the session's: host memory */
    if (rc != CUDA_SUCCESS) return rc;
    info->known = 1;
    info->type = MEMORYTYPE_DEVICE;
    info->ctx = out.v[0];
    info->base = out.v[1];
    info->size = out.v[2];
    info->device = (int)out.v[3];
    return CUDA_SUCCESS;
}

static void put_value(void *data, const void *v, size_t n) { memcpy(data, v, n); }

/* One attribute into data. For memory the session does not hold, CUDA's answer for
 * unregistered host memory: an error alone (`alone`, cuPointerGetAttribute), NULL values with
 * success in a list (cuPointerGetAttributes). Device memory has no host pointer here, and
 * page-locked host memory no device pointer (the GPU is on another machine). */
static CUresult pointer_attribute(const pointer_info *in, int attribute, void *data, int alone) {
    if (!data) return CUDA_ERROR_INVALID_VALUE;
    if (!in->known && alone) return CUDA_ERROR_INVALID_VALUE;
    uint64_t u64;
    size_t size;
    unsigned u32;
    int i32;
    void *ptr;
    int host = in->known && in->type == MEMORYTYPE_HOST, device = in->known && in->type == MEMORYTYPE_DEVICE;
    switch (attribute) {
    case ATTR_CONTEXT:
    case ATTR_RANGE_START_ADDR:
        ptr = (void *)(uintptr_t)(!in->known ? 0 : attribute == ATTR_CONTEXT ? in->ctx : in->base);
        put_value(data, &ptr, sizeof ptr);
        return CUDA_SUCCESS;
    case ATTR_DEVICE_POINTER:
    case ATTR_HOST_POINTER:
        if ((attribute == ATTR_DEVICE_POINTER ? !device : !host) && alone) return CUDA_ERROR_INVALID_VALUE;
        ptr = (void *)(uintptr_t)((attribute == ATTR_DEVICE_POINTER ? device : host) ? in->ptr : 0);
        put_value(data, &ptr, sizeof ptr);
        return CUDA_SUCCESS;
    case ATTR_MEMORY_TYPE:
        u32 = in->known ? in->type : 0;
        put_value(data, &u32, sizeof u32);
        return CUDA_SUCCESS;
    case ATTR_BUFFER_ID: /* the allocation's base: unique among the session's live allocations */
        u64 = in->known ? in->base : 0;
        put_value(data, &u64, sizeof u64);
        return CUDA_SUCCESS;
    case ATTR_RANGE_SIZE:
        size = in->known ? (size_t)in->size : 0;
        put_value(data, &size, sizeof size);
        return CUDA_SUCCESS;
    case ATTR_DEVICE_ORDINAL:
        i32 = in->known ? in->device : -2; /* -2: not a device pointer, as the runtime reports it */
        put_value(data, &i32, sizeof i32);
        return CUDA_SUCCESS;
    case ATTR_IS_MANAGED:
    case ATTR_SYNC_MEMOPS:
    case ATTR_IS_LEGACY_CUDA_IPC_CAPABLE: /* cuIpc* is not served */
    case ATTR_MAPPED:
        u32 = attribute == ATTR_MAPPED && device;
        put_value(data, &u32, sizeof u32);
        return CUDA_SUCCESS;
    default:
        return CUDA_ERROR_NOT_SUPPORTED;
    }
}

GSR_EXPORT CUresult cuPointerGetAttribute(void *data, int attribute, CUdeviceptr ptr) {
    if (!data) return CUDA_ERROR_INVALID_VALUE;
    pointer_info info;
    CUresult rc = pointer_info_of(ptr, &info);
    return rc != CUDA_SUCCESS ? rc : pointer_attribute(&info, attribute, data, 1);
}

GSR_EXPORT CUresult cuPointerGetAttributes(unsigned int numAttributes, int *attributes, void **data, CUdeviceptr ptr) {
    if (!attributes || !data) return CUDA_ERROR_INVALID_VALUE;
    pointer_info info;
    CUresult rc = pointer_info_of(ptr, &info);
    for (unsigned i = 0; i < numAttributes && rc == CUDA_SUCCESS; i++) rc = pointer_attribute(&info, attributes[i], data[i], 0);
    return rc;
}

/* ---- module and library globals, function and kernel names ------------------------ */
GSR_EXPORT CUresult cuModuleGetGlobal_v2(CUdeviceptr *dptr, size_t *bytes, CUmodule hmod, const char *name) {
    if (!name) return CUDA_ERROR_INVALID_VALUE;
    size_t n = strnlen(name, GSR_MAX_NAME + 1);
    if (n == 0 || n > GSR_MAX_NAME) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = gsr_connect_once();
    if (rc != CUDA_SUCCESS) return rc;
    gsr_args out;
    rc = gsr_call(GSR_OP_MODULE_GET_GLOBAL,
                  &(gsr_args){.v = {(uintptr_t)hmod}, .nv = 1, .blob = {(const uint8_t *)name}, .blob_len = {n}, .nblob = 1}, &out);
    if (rc != CUDA_SUCCESS) return rc;
    gsr_device_global_add(out.v[0], out.v[1], (uint64_t)(uintptr_t)hmod);
    if (dptr) *dptr = (CUdeviceptr)out.v[0];
    if (bytes) *bytes = (size_t)out.v[1];
    return CUDA_SUCCESS;
}

/* The name the function was found by (kept in the client's record). */
GSR_EXPORT CUresult cuFuncGetName(const char **name, CUfunction hfunc) {
    const gsr_function *f = (const gsr_function *)hfunc;
    if (!name) return CUDA_ERROR_INVALID_VALUE;
    if (!f || f->magic != GSR_FUNC_MAGIC) return CUDA_ERROR_INVALID_HANDLE;
    *name = f->name;
    return CUDA_SUCCESS;
}

GSR_EXPORT CUresult cuKernelGetName(const char **name, CUkernel hfunc) { return cuFuncGetName(name, (CUfunction)hfunc); }
