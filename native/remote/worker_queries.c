/*
 * worker_queries.c: the worker's answers to what frameworks ask about streams, contexts,
 * pointers and module globals (docs/remote.md "Queries"): every handle and address checked
 * against the session's table first, then the driver asked through the entry points found at
 * prepare. Where the driver lacks one, the answer is what the worker itself knows for certain
 * (a stream's flags and priority as it created it, its context and device, the session's own
 * ids), else CUDA_ERROR_NOT_SUPPORTED: never a guess.
 */
#include "worker.h"
#include "gs_cuda_procs_extra.h"

#include <string.h>

typedef CUresult (*pfn_capture_info)(CUstream, CUstreamCaptureStatus *, cuuint64_t *, void **, const void ***, size_t *);
typedef CUresult (*pfn_stream_int)(CUstream, int *);
typedef CUresult (*pfn_stream_uint)(CUstream, unsigned *);
typedef CUresult (*pfn_stream_u64)(CUstream, unsigned long long *);
typedef CUresult (*pfn_get_limit)(size_t *, int);
typedef CUresult (*pfn_set_limit)(int, size_t);
typedef CUresult (*pfn_get_int)(int *);
typedef CUresult (*pfn_set_int)(int);
typedef CUresult (*pfn_get_uint)(unsigned *);
typedef CUresult (*pfn_ctx_uint)(CUcontext, unsigned *);
typedef CUresult (*pfn_ctx_u64)(CUcontext, unsigned long long *);
typedef CUresult (*pfn_record_flags)(CUevent, CUstream, unsigned);
typedef CUresult (*pfn_module_global)(CUdeviceptr *, size_t *, CUmodule, const char *);
typedef CUresult (*pfn_library_global)(CUdeviceptr *, size_t *, void *, const char *);

/* Names and the CUDA version asked (the signature above each pfn is that version's). */
static const struct {
    const char *name;
    int version;
} optional_names[GSR_OPT_COUNT] = {
    [GSR_OPT_STREAM_CAPTURE_INFO] = {"cuStreamGetCaptureInfo", 12000}, /* _v2 */
    [GSR_OPT_STREAM_PRIORITY] = {"cuStreamGetPriority", 12000},
    [GSR_OPT_STREAM_FLAGS] = {"cuStreamGetFlags", 12000},
    [GSR_OPT_STREAM_ID] = {"cuStreamGetId", 12000},
    [GSR_OPT_CTX_GET_LIMIT] = {"cuCtxGetLimit", 12000},
    [GSR_OPT_CTX_SET_LIMIT] = {"cuCtxSetLimit", 12000},
    [GSR_OPT_CTX_GET_CACHE_CONFIG] = {"cuCtxGetCacheConfig", 12000},
    [GSR_OPT_CTX_SET_CACHE_CONFIG] = {"cuCtxSetCacheConfig", 12000},
    [GSR_OPT_CTX_FLAGS] = {"cuCtxGetFlags", 12000},
    [GSR_OPT_CTX_API_VERSION] = {"cuCtxGetApiVersion", 12000},
    [GSR_OPT_CTX_ID] = {"cuCtxGetId", 12000},
    [GSR_OPT_EVENT_RECORD_FLAGS] = {"cuEventRecordWithFlags", 12000},
    [GSR_OPT_MODULE_GLOBAL] = {"cuModuleGetGlobal", 12000}, /* _v2 */
    [GSR_OPT_OCCUPANCY_DYNAMIC_SMEM] = {"cuOccupancyAvailableDynamicSMemPerBlock", 12000},
    [GSR_OPT_OCCUPANCY_MAX_ACTIVE_CLUSTERS] = {"cuOccupancyMaxActiveClusters", 12000},
    [GSR_OPT_OCCUPANCY_MAX_CLUSTER_SIZE] = {"cuOccupancyMaxPotentialClusterSize", 12000},
    [GSR_OPT_LAUNCH_KERNEL_EX] = {"cuLaunchKernelEx", 12000},
    [GSR_OPT_TENSOR_MAP_ENCODE_TILED] = {"cuTensorMapEncodeTiled", 12000},
    [GSR_OPT_TENSOR_MAP_REPLACE_ADDRESS] = {"cuTensorMapReplaceAddress", 12000},
    [GSR_OPT_LIBRARY_LOAD_DATA] = {"cuLibraryLoadData", 12000},
    [GSR_OPT_LIBRARY_UNLOAD] = {"cuLibraryUnload", 12000},
    [GSR_OPT_LIBRARY_GET_KERNEL] = {"cuLibraryGetKernel", 12000},
    [GSR_OPT_KERNEL_GET_FUNCTION] = {"cuKernelGetFunction", 12000},
    [GSR_OPT_LIBRARY_GET_GLOBAL] = {"cuLibraryGetGlobal", 12000},
};

void gsr_queries_prepare(gsr_session *s) {
    for (int i = 0; i < GSR_OPT_COUNT; i++) {
        void *p = NULL;
        if (cuGetProcAddress_v2(optional_names[i].name, &p, optional_names[i].version, 0, NULL) != CUDA_SUCCESS) p = NULL;
        s->optional[i] = p;
    }
}

/* The driver's special streams (legacy, per-thread, NULL) belong to the current context. */
static int is_special_stream(uint64_t id) {
    return id == 0 || id == (uintptr_t)CU_STREAM_LEGACY || id == (uintptr_t)CU_STREAM_PER_THREAD;
}

static CUresult context_device(gsr_session *s, uint64_t ctx, uint64_t *device) {
    gsr_obj *c = gsr_table_find(&s->table, ctx, GSR_KIND_CONTEXT);
    if (!c) return CUDA_ERROR_INVALID_CONTEXT;
    *device = (uint64_t)(int64_t)c->device;
    return CUDA_SUCCESS;
}

static CUresult stream_get(gsr_session *s, const gsr_args *a, gsr_args *out) {
    CUstream stream;
    CUresult rc = gsr_find_stream(s, a->v[0], &stream);
    if (rc != CUDA_SUCCESS) return rc;
    gsr_obj *o = is_special_stream(a->v[0]) ? NULL : gsr_table_find(&s->table, a->v[0], GSR_KIND_STREAM);
    uint64_t ctx = o ? o->ctx : s->current_ctx;
    void *const *opt = s->optional;
    out->nv = 2;
    switch (a->v[1]) {
    case GSR_STREAM_CAPTURE: {
        CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_NONE;
        cuuint64_t capture = 0;
        void *graph = NULL;
        const void **deps = NULL;
        size_t ndeps = 0;
        rc = opt[GSR_OPT_STREAM_CAPTURE_INFO] ? ((pfn_capture_info)opt[GSR_OPT_STREAM_CAPTURE_INFO])(stream, &status, &capture, &graph, &deps, &ndeps)
                                              : cuStreamIsCapturing(stream, &status);
        out->v[0] = (uint64_t)status;
        out->v[1] = capture;
        return rc;
    }
    case GSR_STREAM_PRIORITY: {
        int priority = o ? o->priority : 0; /* as created: the driver's own answer when it has one */
        if (opt[GSR_OPT_STREAM_PRIORITY]) rc = ((pfn_stream_int)opt[GSR_OPT_STREAM_PRIORITY])(stream, &priority);
        out->v[0] = (uint64_t)(int64_t)priority;
        return rc;
    }
    case GSR_STREAM_FLAGS: {
        unsigned flags = o ? o->flags : 0;
        if (opt[GSR_OPT_STREAM_FLAGS]) rc = ((pfn_stream_uint)opt[GSR_OPT_STREAM_FLAGS])(stream, &flags);
        out->v[0] = flags;
        return rc;
    }
    case GSR_STREAM_ID: {
        unsigned long long id = 0;
        if (opt[GSR_OPT_STREAM_ID]) {
            rc = ((pfn_stream_u64)opt[GSR_OPT_STREAM_ID])(stream, &id);
        } else if (o) {
            id = o->id; /* unique among the session's streams, which are all this process has */
        } else {
            return CUDA_ERROR_NOT_SUPPORTED;
        }
        out->v[0] = id;
        return rc;
    }
    case GSR_STREAM_CTX:
        if (!ctx || ctx == UINT64_MAX) return CUDA_ERROR_INVALID_CONTEXT;
        out->v[0] = ctx;
        return CUDA_SUCCESS;
    case GSR_STREAM_DEVICE:
        return context_device(s, ctx, &out->v[0]);
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
}

/* CTX_GET / CTX_SET: the current context (made current from the request's header). */
static CUresult ctx_get(gsr_session *s, const gsr_args *a, gsr_args *out) {
    void *const *opt = s->optional;
    gsr_obj *c = gsr_table_find(&s->table, s->current_ctx, GSR_KIND_CONTEXT);
    if (!c) return CUDA_ERROR_INVALID_CONTEXT;
    CUresult rc = CUDA_ERROR_NOT_SUPPORTED;
    size_t limit = 0;
    int config = 0;
    unsigned flags = 0;
    unsigned long long id = 0;
    out->nv = 1;
    switch (a->v[0]) {
    case GSR_CTX_LIMIT:
        if (opt[GSR_OPT_CTX_GET_LIMIT]) rc = ((pfn_get_limit)opt[GSR_OPT_CTX_GET_LIMIT])(&limit, (int)a->v[1]);
        out->v[0] = limit;
        return rc;
    case GSR_CTX_CACHE_CONFIG:
        if (opt[GSR_OPT_CTX_GET_CACHE_CONFIG]) rc = ((pfn_get_int)opt[GSR_OPT_CTX_GET_CACHE_CONFIG])(&config);
        out->v[0] = (uint64_t)(int64_t)config;
        return rc;
    case GSR_CTX_FLAGS:
        if (opt[GSR_OPT_CTX_FLAGS]) rc = ((pfn_get_uint)opt[GSR_OPT_CTX_FLAGS])(&flags);
        out->v[0] = flags;
        return rc;
    case GSR_CTX_API_VERSION:
        if (opt[GSR_OPT_CTX_API_VERSION]) rc = ((pfn_ctx_uint)opt[GSR_OPT_CTX_API_VERSION])(c->handle, &flags);
        out->v[0] = flags;
        return rc;
    case GSR_CTX_ID:
        id = c->id; /* unique among the session's contexts: the answer where the driver has none */
        rc = opt[GSR_OPT_CTX_ID] ? ((pfn_ctx_u64)opt[GSR_OPT_CTX_ID])(c->handle, &id) : CUDA_SUCCESS;
        out->v[0] = id;
        return rc;
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
}

static CUresult ctx_set(gsr_session *s, const gsr_args *a) {
    void *const *opt = s->optional;
    if (!gsr_table_find(&s->table, s->current_ctx, GSR_KIND_CONTEXT)) return CUDA_ERROR_INVALID_CONTEXT;
    switch (a->v[0]) {
    case GSR_CTX_LIMIT:
        return opt[GSR_OPT_CTX_SET_LIMIT] ? ((pfn_set_limit)opt[GSR_OPT_CTX_SET_LIMIT])((int)a->v[1], (size_t)a->v[2])
                                          : CUDA_ERROR_NOT_SUPPORTED;
    case GSR_CTX_CACHE_CONFIG:
        return opt[GSR_OPT_CTX_SET_CACHE_CONFIG] ? ((pfn_set_int)opt[GSR_OPT_CTX_SET_CACHE_CONFIG])((int)a->v[2]) : CUDA_ERROR_NOT_SUPPORTED;
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
}

static CUresult event_record_flags(gsr_session *s, const gsr_args *a) {
    gsr_obj *e = gsr_table_find(&s->table, a->v[0], GSR_KIND_EVENT);
    CUstream stream;
    if (!e) return CUDA_ERROR_INVALID_HANDLE;
    CUresult rc = gsr_find_stream(s, a->v[1], &stream);
    if (rc != CUDA_SUCCESS) return rc;
    if (a->v[2] == 0) return cuEventRecord(e->handle, stream); /* the same call, by CUDA's definition */
    void *p = s->optional[GSR_OPT_EVENT_RECORD_FLAGS];
    return p ? ((pfn_record_flags)p)(e->handle, stream, (unsigned)a->v[2]) : CUDA_ERROR_NOT_SUPPORTED;
}

/* The session's allocation holding ptr (a cuMemAlloc or a module global): its context, range,
 * device. Anything else is not a device pointer of this session: CUDA_ERROR_INVALID_VALUE. */
static CUresult pointer_get(gsr_session *s, uint64_t ptr, gsr_args *out) {
    const gsr_table *t = &s->table;
    size_t lo = 0, hi = t->nallocs;
    while (lo < hi) { /* the first allocation with base > ptr */
        size_t mid = lo + (hi - lo) / 2;
        if (t->allocs[mid].base <= ptr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0) return CUDA_ERROR_INVALID_VALUE;
    const gsr_alloc *al = &t->allocs[lo - 1];
    if (ptr - al->base >= al->size) return CUDA_ERROR_INVALID_VALUE;
    uint64_t device = 0;
    CUresult rc = context_device(s, al->ctx, &device);
    if (rc != CUDA_SUCCESS) return CUDA_ERROR_INVALID_VALUE;
    out->nv = 4;
    out->v[0] = al->ctx;
    out->v[1] = al->base;
    out->v[2] = al->size;
    out->v[3] = device;
    return CUDA_SUCCESS;
}

/* A module's (or a library's) global: its address and size, entered in the session's ranges
 * (owned by the module or library) so copies to and from it pass the bounds check. A library's
 * global is its copy in the current context. */
static CUresult module_global(gsr_session *s, const gsr_args *a, gsr_args *out) {
    char name[GSR_MAX_NAME + 1];
    int library = GSR_ID_KIND(a->v[0]) == GSR_KIND_LIBRARY;
    gsr_obj *m = gsr_table_find(&s->table, a->v[0], library ? GSR_KIND_LIBRARY : GSR_KIND_MODULE);
    if (!m) return CUDA_ERROR_INVALID_HANDLE;
    /* A library's global is its copy in a context: none current, none to give (and its range
     * would outlive whatever context the driver picked). */
    if (library && (s->current_ctx == 0 || s->current_ctx == UINT64_MAX)) return CUDA_ERROR_INVALID_CONTEXT;
    if (a->blob_len[0] == 0 || a->blob_len[0] > GSR_MAX_NAME || memchr(a->blob[0], 0, a->blob_len[0])) return CUDA_ERROR_INVALID_VALUE;
    memcpy(name, a->blob[0], a->blob_len[0]);
    name[a->blob_len[0]] = 0;
    void *p = s->optional[library ? GSR_OPT_LIBRARY_GET_GLOBAL : GSR_OPT_MODULE_GLOBAL];
    if (!p) return CUDA_ERROR_NOT_SUPPORTED;
    CUdeviceptr dptr = 0;
    size_t bytes = 0;
    uint64_t module = m->id, ctx = library ? s->current_ctx : m->ctx;
    CUresult rc = library ? ((pfn_library_global)p)(&dptr, &bytes, m->handle, name) : ((pfn_module_global)p)(&dptr, &bytes, m->handle, name);
    if (rc != CUDA_SUCCESS) return rc;
    long at = gsr_table_alloc_at(&s->table, dptr);
    if (at < 0 && bytes > 0) {
        if (gsr_table_add_alloc(&s->table, dptr, bytes, ctx) != 0) return CUDA_ERROR_OUT_OF_MEMORY;
        at = gsr_table_alloc_at(&s->table, dptr);
        s->table.allocs[at].module = module;
    } else if (at >= 0 && s->table.allocs[at].module != module) {
        return CUDA_ERROR_UNKNOWN; /* the driver named an address the session already holds otherwise */
    }
    out->nv = 2;
    out->v[0] = dptr;
    out->v[1] = bytes;
    return CUDA_SUCCESS;
}

CUresult gsr_handle_query(gsr_session *s, unsigned op, const gsr_args *a, gsr_args *out) {
    memset(out, 0, sizeof *out);
    switch (op) {
    case GSR_OP_STREAM_GET:
        return stream_get(s, a, out);
    case GSR_OP_CTX_GET:
        return ctx_get(s, a, out);
    case GSR_OP_CTX_SET:
        return ctx_set(s, a);
    case GSR_OP_EVENT_RECORD_FLAGS:
        return event_record_flags(s, a);
    case GSR_OP_POINTER_GET:
        return pointer_get(s, a->v[0], out);
    case GSR_OP_MODULE_GET_GLOBAL:
        return module_global(s, a, out);
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
}

/* ---- ops 100-149: cuBLAS's needs (docs/remote.md "cuBLAS") ------------------------------ */
typedef CUresult (*pfn_dynamic_smem)(size_t *, CUfunction, int, int);
typedef CUresult (*pfn_clusters)(int *, CUfunction, const CUlaunchConfig *);
typedef CUresult (*pfn_launch_ex)(const CUlaunchConfig *, CUfunction, void **, void **);

/* A launch configuration from its GSR_LAUNCH_* bytes (proto.h): its stream found in the
 * session's table, every attribute one the client forwards (the client refuses the others;
 * a forged one is refused here too, as are a short blob and too many attributes). */
static CUresult decode_launch_config(gsr_session *s, const uint8_t *b, size_t len, CUlaunchConfig *c, CUlaunchAttribute *attrs) {
    uint32_t head[8];
    uint64_t stream_id;
    if (len < GSR_LAUNCH_HEAD_BYTES) return CUDA_ERROR_INVALID_VALUE;
    memcpy(head, b, sizeof head);
    memcpy(&stream_id, b + sizeof head, sizeof stream_id);
    if (head[7] > GSR_MAX_LAUNCH_ATTRS || len != GSR_LAUNCH_HEAD_BYTES + (size_t)head[7] * GSR_LAUNCH_ATTR_BYTES) return CUDA_ERROR_INVALID_VALUE;
    memset(c, 0, sizeof *c);
    c->gridDimX = head[0], c->gridDimY = head[1], c->gridDimZ = head[2];
    c->blockDimX = head[3], c->blockDimY = head[4], c->blockDimZ = head[5];
    c->sharedMemBytes = head[6];
    CUresult rc = gsr_find_stream(s, stream_id, &c->hStream);
    if (rc != CUDA_SUCCESS) return rc;
    for (uint32_t i = 0; i < head[7]; i++) {
        const uint8_t *at = b + GSR_LAUNCH_HEAD_BYTES + (size_t)i * GSR_LAUNCH_ATTR_BYTES;
        uint32_t id;
        memcpy(&id, at, sizeof id);
        if (id > CU_LAUNCH_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT || id == CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_EVENT ||
            id == CU_LAUNCH_ATTRIBUTE_LAUNCH_COMPLETION_EVENT || id == CU_LAUNCH_ATTRIBUTE_DEVICE_UPDATABLE_KERNEL_NODE)
            return CUDA_ERROR_NOT_SUPPORTED;
        memset(&attrs[i], 0, sizeof attrs[i]);
        attrs[i].id = (CUlaunchAttributeID)id;
        memcpy(&attrs[i].value, at + 8, sizeof attrs[i].value);
    }
    c->attrs = head[7] ? attrs : NULL;
    c->numAttrs = head[7];
    return CUDA_SUCCESS;
}

typedef CUresult (*pfn_tensor_map_encode)(CUtensorMap *, int, cuuint32_t, void *, const cuuint64_t *, const cuuint64_t *, const cuuint32_t *,
                                          const cuuint32_t *, int, int, int, int);
typedef CUresult (*pfn_tensor_map_replace)(CUtensorMap *, void *);

/* A TMA descriptor, encoded or re-addressed by the driver (its format is the driver's); the
 * reply's blob is this static map, sent before the next request is read. */
static CUresult tensor_map(gsr_session *s, unsigned op, const gsr_args *a, gsr_args *out) {
    static CUtensorMap map;
    memset(&map, 0, sizeof map);
    if (op == GSR_OP_TENSOR_MAP_REPLACE_ADDRESS) {
        void *p = s->optional[GSR_OPT_TENSOR_MAP_REPLACE_ADDRESS];
        if (!p) return CUDA_ERROR_NOT_SUPPORTED;
        if (a->blob_len[0] != sizeof map) return CUDA_ERROR_INVALID_VALUE;
        memcpy(&map, a->blob[0], sizeof map);
        CUresult rc = ((pfn_tensor_map_replace)p)(&map, (void *)(uintptr_t)a->v[0]);
        if (rc != CUDA_SUCCESS) return rc;
    } else {
        void *p = s->optional[GSR_OPT_TENSOR_MAP_ENCODE_TILED];
        if (!p) return CUDA_ERROR_NOT_SUPPORTED;
        if (a->blob_len[0] != GSR_TENSOR_MAP_ARGS_BYTES) return CUDA_ERROR_INVALID_VALUE;
        const uint8_t *b = a->blob[0];
        uint32_t head[6], box[5], elem[5];
        uint64_t address, dim[5], strides[4];
        memcpy(head, b, sizeof head);
        memcpy(&address, b + 24, 8);
        memcpy(dim, b + 32, sizeof dim);
        memcpy(strides, b + 72, sizeof strides);
        memcpy(box, b + 104, sizeof box);
        memcpy(elem, b + 124, sizeof elem);
        if (head[1] == 0 || head[1] > 5) return CUDA_ERROR_INVALID_VALUE;
        CUresult rc = ((pfn_tensor_map_encode)p)(&map, (int)head[0], head[1], (void *)(uintptr_t)address, dim, strides, box, elem,
                                                 (int)head[2], (int)head[3], (int)head[4], (int)head[5]);
        if (rc != CUDA_SUCCESS) return rc;
    }
    out->nblob = 1;
    out->blob[0] = (const uint8_t *)&map;
    out->blob_len[0] = sizeof map;
    return CUDA_SUCCESS;
}

CUresult gsr_handle_cublas_op(gsr_session *s, unsigned op, const gsr_args *a, gsr_args *out) {
    static uint64_t params[32768 / 8]; /* 8-aligned, as a kernel's parameters are */
    CUlaunchAttribute attrs[GSR_MAX_LAUNCH_ATTRS];
    CUlaunchConfig config;
    memset(out, 0, sizeof *out);
    if (op == GSR_OP_TENSOR_MAP_ENCODE_TILED || op == GSR_OP_TENSOR_MAP_REPLACE_ADDRESS) return tensor_map(s, op, a, out);
    CUfunction fn = NULL;
    CUresult rc = gsr_function_of(s, op == GSR_OP_OCCUPANCY_CLUSTERS ? a->v[1] : a->v[0], &fn);
    if (rc != CUDA_SUCCESS) return rc;
    switch (op) {
    case GSR_OP_OCCUPANCY_DYNAMIC_SMEM: {
        void *p = s->optional[GSR_OPT_OCCUPANCY_DYNAMIC_SMEM];
        size_t bytes = 0;
        if (!p) return CUDA_ERROR_NOT_SUPPORTED;
        rc = ((pfn_dynamic_smem)p)(&bytes, fn, (int)(int64_t)a->v[1], (int)(int64_t)a->v[2]);
        if (rc != CUDA_SUCCESS) return rc;
        out->nv = 1;
        out->v[0] = bytes;
        return CUDA_SUCCESS;
    }
    case GSR_OP_OCCUPANCY_CLUSTERS: {
        if (a->v[0] != GSR_CLUSTERS_MAX_ACTIVE && a->v[0] != GSR_CLUSTERS_MAX_SIZE) return CUDA_ERROR_INVALID_VALUE;
        void *p = s->optional[a->v[0] == GSR_CLUSTERS_MAX_ACTIVE ? GSR_OPT_OCCUPANCY_MAX_ACTIVE_CLUSTERS : GSR_OPT_OCCUPANCY_MAX_CLUSTER_SIZE];
        int value = 0;
        if (!p) return CUDA_ERROR_NOT_SUPPORTED;
        rc = decode_launch_config(s, a->blob[0], a->blob_len[0], &config, attrs);
        if (rc == CUDA_SUCCESS) rc = ((pfn_clusters)p)(&value, fn, &config);
        if (rc != CUDA_SUCCESS) return rc;
        out->nv = 1;
        out->v[0] = (uint64_t)(int64_t)value;
        return CUDA_SUCCESS;
    }
    case GSR_OP_LAUNCH_KERNEL_EX: {
        void *p = s->optional[GSR_OPT_LAUNCH_KERNEL_EX];
        size_t size = a->blob_len[1];
        if (!p) return CUDA_ERROR_NOT_SUPPORTED;
        if (size > sizeof params) return CUDA_ERROR_INVALID_VALUE;
        rc = decode_launch_config(s, a->blob[0], a->blob_len[0], &config, attrs);
        if (rc != CUDA_SUCCESS) return rc;
        if (size) memcpy(params, a->blob[1], size);
        void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, params, CU_LAUNCH_PARAM_BUFFER_SIZE, &size, CU_LAUNCH_PARAM_END};
        return ((pfn_launch_ex)p)(&config, fn, NULL, size ? extra : NULL);
    }
    default:
        return CUDA_ERROR_INVALID_VALUE;
    }
}
