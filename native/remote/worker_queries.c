/*
 * worker_queries.c: the worker's answers to what frameworks ask about streams, contexts,
 * pointers and module globals (docs/remote.md "Queries"): every handle and address checked
 * against the session's table first, then the driver asked through the entry points found at
 * prepare. Where the driver lacks one, the answer is what the worker itself knows for certain
 * (a stream's flags and priority as it created it, its context and device, the session's own
 * ids), else CUDA_ERROR_NOT_SUPPORTED: never a guess.
 */
#include "worker.h"

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

/* A module's global: its address and size, entered in the session's ranges (owned by the
 * module) so copies to and from it pass the bounds check. */
static CUresult module_global(gsr_session *s, const gsr_args *a, gsr_args *out) {
    char name[GSR_MAX_NAME + 1];
    gsr_obj *m = gsr_table_find(&s->table, a->v[0], GSR_KIND_MODULE);
    if (!m) return CUDA_ERROR_INVALID_HANDLE;
    if (a->blob_len[0] == 0 || a->blob_len[0] > GSR_MAX_NAME || memchr(a->blob[0], 0, a->blob_len[0])) return CUDA_ERROR_INVALID_VALUE;
    memcpy(name, a->blob[0], a->blob_len[0]);
    name[a->blob_len[0]] = 0;
    void *p = s->optional[GSR_OPT_MODULE_GLOBAL];
    if (!p) return CUDA_ERROR_NOT_SUPPORTED;
    CUdeviceptr dptr = 0;
    size_t bytes = 0;
    uint64_t module = m->id, ctx = m->ctx;
    CUresult rc = ((pfn_module_global)p)(&dptr, &bytes, m->handle, name);
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
