/*
 * worker_calls.c: the worker's request handlers (docs/remote.md "Calls"): decode by the op's
 * schema, check every handle and device range against the session's own table, call the
 * driver, reply. Over the ~400-line guide because it is the one table of what each op does;
 * each handler is a few lines.
 */
#define _DEFAULT_SOURCE
#include "net.h"
#include "worker.h"

#include <stdlib.h>
#include <string.h>

#define GSR_MAX_PARAM_BYTES 32768u

/* Where a handler puts its reply before it is sent. */
typedef struct reply {
    CUresult status;
    gsr_args out;
} reply;

static int ends_session(gsr_session *s) {
    s->broken = 1;
    return -1;
}

static void set_ok(reply *r) { r->status = CUDA_SUCCESS; }

static void put_u64(reply *r, uint64_t v) { r->out.v[r->out.nv++] = v; }

static void put_blob(reply *r, const void *p, size_t n) {
    r->out.blob[r->out.nblob] = p;
    r->out.blob_len[r->out.nblob++] = n;
}

/* Synchronizing calls report the first error of calls sent without a reply (as CUDA reports
 * asynchronous errors at the next synchronizing call). */
static int is_synchronizing(const gsr_header *h, const gsr_args *a) {
    switch (h->op) {
    case GSR_OP_CTX_SYNCHRONIZE:
    case GSR_OP_STREAM_SYNCHRONIZE:
    case GSR_OP_STREAM_QUERY:
    case GSR_OP_EVENT_SYNCHRONIZE:
    case GSR_OP_EVENT_QUERY:
    case GSR_OP_MEMCPY_DTOH:
        return 1;
    case GSR_OP_MEMCPY_HTOD:
        return a->v[3] == 0;
    case GSR_OP_MEMCPY_DTOD:
        return a->v[4] == 0;
    default:
        return 0;
    }
}

static int send_reply(gsr_session *s, const gsr_header *h, reply *r, int synchronizing) {
    if (h->flags & GSR_FLAG_NO_REPLY) {
        if (r->status != CUDA_SUCCESS && s->deferred == CUDA_SUCCESS) s->deferred = r->status;
        return 0;
    }
    if (synchronizing && r->status == CUDA_SUCCESS && s->deferred != CUDA_SUCCESS) {
        r->status = s->deferred;
        s->deferred = CUDA_SUCCESS;
    }
    uint8_t buf[4096];
    gsr_writer w;
    gsr_writer_init(&w, buf, sizeof buf);
    if (r->status == CUDA_SUCCESS) gsr_encode(h->op, 1, &r->out, &w);
    if (w.bad) return ends_session(s); /* a handler filled a reply its schema does not allow: a bug */
    gsr_header out = {(uint32_t)w.len, h->op, GSR_FLAG_REPLY, h->id, (int32_t)r->status, 0};
    if (gsr_send_frame(&s->link, &out, buf, w.len, NULL, 0) != 0) return ends_session(s);
    return 0;
}

/* Makes the request's context current; CUDA_ERROR_INVALID_CONTEXT when it is not one of ours. */
static CUresult use_ctx(gsr_session *s, uint64_t ctx) {
    if (ctx == s->current_ctx) return CUDA_SUCCESS;
    CUcontext handle = NULL;
    if (ctx != 0) {
        gsr_obj *o = gsr_table_find(&s->table, ctx, GSR_KIND_CONTEXT);
        if (!o) return CUDA_ERROR_INVALID_CONTEXT;
        handle = o->handle;
    }
    CUresult rc = cuCtxSetCurrent(handle);
    if (rc == CUDA_SUCCESS) s->current_ctx = ctx;
    return rc;
}

CUresult gsr_find_stream(gsr_session *s, uint64_t id, CUstream *out) {
    *out = NULL;
    if (id == 0) return CUDA_SUCCESS;
    /* The driver's special handles: the legacy stream, and the per-thread default stream
     * (the worker has one thread, so every client thread's per-thread stream is that one:
     * more ordering than the program asked, never less). */
    if (id == (uintptr_t)CU_STREAM_LEGACY || id == (uintptr_t)CU_STREAM_PER_THREAD) {
        *out = (CUstream)(uintptr_t)id;
        return CUDA_SUCCESS;
    }
    gsr_obj *o = gsr_table_find(&s->table, id, GSR_KIND_STREAM);
    if (!o) return CUDA_ERROR_INVALID_HANDLE;
    *out = o->handle;
    return CUDA_SUCCESS;
}

static void *find_handle(gsr_session *s, uint64_t id, unsigned kind) {
    gsr_obj *o = gsr_table_find(&s->table, id, kind);
    return o ? o->handle : NULL;
}

typedef CUresult (*pfn_library_load)(void **, const void *, void *, void **, unsigned, void *, void **, unsigned);
typedef CUresult (*pfn_library_unload)(void *);
typedef CUresult (*pfn_library_get_kernel)(void **, void *, const char *);
typedef CUresult (*pfn_kernel_get_function)(CUfunction *, void *);

CUresult gsr_function_of(gsr_session *s, uint64_t id, CUfunction *out) {
    gsr_obj *o = gsr_table_find(&s->table, id, GSR_KIND_FUNCTION);
    if (!o) return CUDA_ERROR_INVALID_HANDLE;
    if (o->kernel && o->fn_ctx != s->current_ctx) {
        CUfunction f = NULL;
        CUresult rc = ((pfn_kernel_get_function)s->optional[GSR_OPT_KERNEL_GET_FUNCTION])(&f, o->kernel);
        if (rc != CUDA_SUCCESS) return rc;
        o->handle = f;
        o->fn_ctx = s->current_ctx;
    }
    *out = o->handle;
    return CUDA_SUCCESS;
}

/* Everything of a context that goes with it (the driver frees them with it). */
static void drop_dependents(gsr_session *s, uint64_t ctx) {
    for (size_t i = 0; i < s->table.nobjs; i++) /* a library's kernel stays; its function there goes */
        if (s->table.objs[i].kernel && s->table.objs[i].fn_ctx == ctx) s->table.objs[i].fn_ctx = UINT64_MAX;
    for (size_t i = s->table.nallocs; i-- > 0;)
        if (s->table.allocs[i].ctx == ctx) gsr_table_remove_alloc(&s->table, i);
    for (size_t i = s->table.nobjs; i-- > 0;)
        if (s->table.objs[i].ctx == ctx) gsr_table_remove(&s->table, s->table.objs[i].id);
    if (s->current_ctx == ctx) s->current_ctx = UINT64_MAX; /* unknown: set again next time */
    gsr_ring_forget_ctx(s, ctx);
}

static void handle_dtod(gsr_session *s, const gsr_args *a, reply *r) {
    uint64_t dst = a->v[0], src = a->v[1], bytes = a->v[2];
    CUstream stream;
    r->status = gsr_find_stream(s, a->v[3], &stream);
    if (r->status != CUDA_SUCCESS) return;
    if (!gsr_table_range_ok(&s->table, dst, bytes) || !gsr_table_range_ok(&s->table, src, bytes)) {
        r->status = CUDA_ERROR_INVALID_VALUE;
        return;
    }
    if (a->v[4]) r->status = cuStreamSynchronize(stream);
    if (r->status != CUDA_SUCCESS) return;
    if (s->memcpy_dtod) {
        r->status = s->memcpy_dtod(dst, src, bytes);
        return;
    }
    r->status = gsr_copy_dtod_staged(s, dst, src, bytes); /* a driver without cuMemcpyDtoD (the fake) */
}

/* LIBRARY_LOAD_DATA asks for a library where the driver has them: loaded without a context,
 * as cuLibraryLoadData does, so an image with no code for this GPU is refused only when a
 * kernel of it is asked for (client_runtime.c). */
static int can_load_libraries(const gsr_session *s) {
    return s->optional[GSR_OPT_LIBRARY_LOAD_DATA] && s->optional[GSR_OPT_LIBRARY_UNLOAD] && s->optional[GSR_OPT_LIBRARY_GET_KERNEL] &&
           s->optional[GSR_OPT_KERNEL_GET_FUNCTION];
}

static int handle_module_load(gsr_session *s, const gsr_args *a, reply *r, int library) {
    uint64_t bytes = a->v[0];
    uint8_t *image = NULL;
    r->status = CUDA_SUCCESS;
    if (bytes == 0 || bytes > GSR_MAX_MODULE_BYTES)
        r->status = CUDA_ERROR_INVALID_VALUE;
    else if (!(image = malloc((size_t)bytes + 1)))
        r->status = CUDA_ERROR_OUT_OF_MEMORY;
    for (uint64_t off = 0; off < bytes;) {
        size_t n = gsr_next_data(s, bytes - off);
        if (n == 0) {
            free(image);
            return ends_session(s);
        }
        int rc = image ? gsr_in_read(s, image + off, n) : gsr_in_discard(s, n);
        if (rc != 0) {
            free(image);
            return ends_session(s);
        }
        off += n;
    }
    if (r->status == CUDA_SUCCESS) {
        image[bytes] = 0; /* PTX is text: the driver reads to its NUL */
        void *m = NULL;
        if (library && can_load_libraries(s))
            r->status = ((pfn_library_load)s->optional[GSR_OPT_LIBRARY_LOAD_DATA])(&m, image, NULL, NULL, 0, NULL, NULL, 0);
        else if (library)
            r->status = CUDA_ERROR_NOT_SUPPORTED; /* a driver without libraries: the client loads a module */
        else
            r->status = cuModuleLoadData((CUmodule *)&m, image);
        if (r->status == CUDA_SUCCESS) {
            gsr_obj *o = gsr_table_add(&s->table, library ? GSR_KIND_LIBRARY : GSR_KIND_MODULE, m, library ? 0 : s->current_ctx);
            if (!o) {
                (void)(library ? ((pfn_library_unload)s->optional[GSR_OPT_LIBRARY_UNLOAD])(m) : cuModuleUnload(m));
                r->status = CUDA_ERROR_OUT_OF_MEMORY;
            } else {
                put_u64(r, o->id);
            }
        }
    }
    free(image);
    return 0;
}

static void handle_get_function(gsr_session *s, const gsr_args *a, reply *r) {
    char name[GSR_MAX_NAME + 1];
    int library = GSR_ID_KIND(a->v[0]) == GSR_KIND_LIBRARY;
    void *m = find_handle(s, a->v[0], library ? GSR_KIND_LIBRARY : GSR_KIND_MODULE);
    if (!m) {
        r->status = CUDA_ERROR_INVALID_HANDLE;
        return;
    }
    if (a->blob_len[0] == 0 || a->blob_len[0] > GSR_MAX_NAME || memchr(a->blob[0], 0, a->blob_len[0])) {
        r->status = CUDA_ERROR_INVALID_VALUE;
        return;
    }
    memcpy(name, a->blob[0], a->blob_len[0]);
    name[a->blob_len[0]] = 0;
    CUfunction f = NULL;
    void *kernel = NULL;
    gsr_obj *o = NULL;
    if (library) {
        /* The kernel (one for the library, in no context), then its function in the current
         * context, loaded there now: the launch of a kernel in another context finds its
         * function there (gsr_function_of). */
        r->status = ((pfn_library_get_kernel)s->optional[GSR_OPT_LIBRARY_GET_KERNEL])(&kernel, m, name);
        if (r->status == CUDA_SUCCESS) r->status = ((pfn_kernel_get_function)s->optional[GSR_OPT_KERNEL_GET_FUNCTION])(&f, kernel);
        for (size_t i = 0; r->status == CUDA_SUCCESS && i < s->table.nobjs && !o; i++)
            if (s->table.objs[i].kind == GSR_KIND_FUNCTION && s->table.objs[i].kernel == kernel) o = &s->table.objs[i];
    } else {
        r->status = cuModuleGetFunction(&f, m, name);
        if (r->status == CUDA_SUCCESS) o = gsr_table_find_handle(&s->table, GSR_KIND_FUNCTION, f);
    }
    if (r->status != CUDA_SUCCESS) return;
    if (o && library) {
        o->handle = f;
        o->fn_ctx = s->current_ctx;
    }
    if (!o) {
        o = gsr_table_add(&s->table, GSR_KIND_FUNCTION, f, library ? 0 : s->current_ctx);
        if (!o) {
            r->status = CUDA_ERROR_OUT_OF_MEMORY;
            return;
        }
        o->ctx = library ? 0 : gsr_table_find(&s->table, a->v[0], GSR_KIND_MODULE)->ctx;
        o->kernel = kernel;
        o->fn_ctx = s->current_ctx;
        o->parent = a->v[0];
        /* The layout, once: the client packs kernelParams by it (docs/remote.md "Launches"). */
        if (s->func_get_param_info && (o->layout = malloc(GSR_MAX_PARAMS * 2 * sizeof(uint32_t)))) {
            size_t off, size;
            uint32_t n = 0;
            while (n < GSR_MAX_PARAMS && s->func_get_param_info(f, n, &off, &size) == CUDA_SUCCESS) {
                o->layout[2 * n] = (uint32_t)off;
                o->layout[2 * n + 1] = (uint32_t)size;
                n++;
            }
            o->nparams = n;
            o->has_layout = 1;
        }
    }
    static uint8_t wire[GSR_MAX_PARAMS * 8];
    for (uint32_t i = 0; i < 2 * o->nparams; i++)
        for (int b = 0; b < 4; b++) wire[4 * i + b] = (uint8_t)(o->layout[i] >> (8 * b));
    put_u64(r, o->id);
    put_u64(r, (uint64_t)o->has_layout);
    put_blob(r, wire, (size_t)o->nparams * 8);
}

static void handle_launch(gsr_session *s, const gsr_args *a, reply *r) {
    static uint64_t params[GSR_MAX_PARAM_BYTES / 8]; /* 8-aligned, as a kernel's parameters are */
    CUfunction f = NULL;
    CUstream stream;
    r->status = gsr_function_of(s, a->v[0], &f);
    if (r->status != CUDA_SUCCESS) return;
    r->status = gsr_find_stream(s, a->v[8], &stream);
    if (r->status != CUDA_SUCCESS) return;
    size_t size = a->blob_len[0];
    if (size > sizeof params) {
        r->status = CUDA_ERROR_INVALID_VALUE;
        return;
    }
    if (size) memcpy(params, a->blob[0], size);
    void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, params, CU_LAUNCH_PARAM_BUFFER_SIZE, &size, CU_LAUNCH_PARAM_END};
    r->status = cuLaunchKernel(f, (unsigned)a->v[1], (unsigned)a->v[2], (unsigned)a->v[3], (unsigned)a->v[4], (unsigned)a->v[5],
                               (unsigned)a->v[6], (unsigned)a->v[7], stream, NULL, size ? extra : NULL);
}

static void handle_primary_retain(gsr_session *s, int dev, reply *r) {
    CUcontext c = NULL;
    r->status = cuDevicePrimaryCtxRetain(&c, dev);
    if (r->status != CUDA_SUCCESS) return;
    gsr_obj *o = gsr_table_find_handle(&s->table, GSR_KIND_CONTEXT, c);
    if (!o && !(o = gsr_table_add(&s->table, GSR_KIND_CONTEXT, c, 0))) {
        (void)cuDevicePrimaryCtxRelease_v2(dev);
        r->status = CUDA_ERROR_OUT_OF_MEMORY;
        return;
    }
    o->device = dev;
    o->primary_refs++;
    put_u64(r, o->id);
}

static void handle_primary_release(gsr_session *s, int dev, reply *r) {
    gsr_obj *o = NULL;
    for (size_t i = 0; i < s->table.nobjs && !o; i++)
        if (s->table.objs[i].kind == GSR_KIND_CONTEXT && s->table.objs[i].primary_refs > 0 && s->table.objs[i].device == dev)
            o = &s->table.objs[i];
    if (!o) {
        r->status = CUDA_ERROR_INVALID_CONTEXT; /* never retained by this session */
        return;
    }
    r->status = cuDevicePrimaryCtxRelease_v2(dev);
    if (r->status != CUDA_SUCCESS) return;
    if (--o->primary_refs == 0) {
        uint64_t id = o->id;
        drop_dependents(s, id);
        gsr_table_remove(&s->table, id);
    }
}

static void handle_ctx_destroy(gsr_session *s, uint64_t id, reply *r) {
    gsr_obj *o = gsr_table_find(&s->table, id, GSR_KIND_CONTEXT);
    if (!o || o->primary_refs > 0) {
        r->status = CUDA_ERROR_INVALID_CONTEXT;
        return;
    }
    r->status = cuCtxDestroy_v2(o->handle);
    if (r->status != CUDA_SUCCESS) return;
    drop_dependents(s, id);
    gsr_table_remove(&s->table, id);
    s->current_ctx = UINT64_MAX;
}

static void handle_alloc(gsr_session *s, uint64_t bytes, reply *r) {
    CUdeviceptr p = 0;
    r->status = cuMemAlloc_v2(&p, (size_t)bytes);
    if (r->status != CUDA_SUCCESS) return;
    if (gsr_table_add_alloc(&s->table, p, bytes, s->current_ctx) != 0) {
        (void)cuMemFree_v2(p);
        r->status = CUDA_ERROR_OUT_OF_MEMORY;
        return;
    }
    put_u64(r, p);
}

static void handle_free(gsr_session *s, uint64_t ptr, reply *r) {
    long i = gsr_table_alloc_at(&s->table, ptr);
    if (i < 0 || s->table.allocs[i].module != 0) { /* a module's global is the module's */
        r->status = CUDA_ERROR_INVALID_VALUE; /* not the start of one of this session's allocations */
        return;
    }
    r->status = cuMemFree_v2(ptr);
    if (r->status == CUDA_SUCCESS) gsr_table_remove_alloc(&s->table, (size_t)i);
}

/* A stream (with a priority when `prioritized`) or an event, entered in the session's table. */
static void handle_object_create(gsr_session *s, unsigned kind, unsigned flags, int prioritized, int priority, reply *r) {
    void *handle = NULL;
    r->status = kind == GSR_KIND_EVENT ? cuEventCreate((CUevent *)&handle, flags)
                : prioritized          ? cuStreamCreateWithPriority((CUstream *)&handle, flags, priority)
                                       : cuStreamCreate((CUstream *)&handle, flags);
    if (r->status != CUDA_SUCCESS) return;
    gsr_obj *o = gsr_table_add(&s->table, kind, handle, s->current_ctx);
    if (!o) {
        (void)(kind == GSR_KIND_STREAM ? cuStreamDestroy_v2(handle) : cuEventDestroy_v2(handle));
        r->status = CUDA_ERROR_OUT_OF_MEMORY;
        return;
    }
    o->flags = flags; /* what STREAM_GET answers where the driver cannot say */
    o->priority = priority;
    put_u64(r, o->id);
}

static void handle_object_destroy(gsr_session *s, uint64_t id, unsigned kind, reply *r) {
    void *handle = find_handle(s, id, kind);
    if (!handle) {
        r->status = CUDA_ERROR_INVALID_HANDLE;
        return;
    }
    switch (kind) {
    case GSR_KIND_STREAM:
        r->status = cuStreamDestroy_v2(handle);
        break;
    case GSR_KIND_EVENT:
        r->status = cuEventDestroy_v2(handle);
        break;
    case GSR_KIND_LIBRARY:
        r->status = ((pfn_library_unload)s->optional[GSR_OPT_LIBRARY_UNLOAD])(handle);
        break;
    default:
        r->status = cuModuleUnload(handle);
        break;
    }
    if (r->status != CUDA_SUCCESS) return;
    if (kind == GSR_KIND_MODULE || kind == GSR_KIND_LIBRARY) { /* its functions and globals go with it */
        for (size_t i = s->table.nobjs; i-- > 0;)
            if (s->table.objs[i].kind == GSR_KIND_FUNCTION && s->table.objs[i].parent == id) gsr_table_remove(&s->table, s->table.objs[i].id);
        for (size_t i = s->table.nallocs; i-- > 0;)
            if (s->table.allocs[i].module == id) gsr_table_remove_alloc(&s->table, i);
    }
    gsr_table_remove(&s->table, id);
}

static void handle_device_query(const gsr_header *h, const gsr_args *a, reply *r) {
    static char text[256];
    static CUuuid uuid;
    int dev = (int)a->v[h->op == GSR_OP_DEVICE_GET_ATTRIBUTE ? 1 : 0];
    int iv = 0;
    size_t total = 0;
    switch (h->op) {
    case GSR_OP_DEVICE_GET_NAME:
        r->status = cuDeviceGetName(text, sizeof text, dev);
        if (r->status == CUDA_SUCCESS) put_blob(r, text, strnlen(text, sizeof text));
        break;
    case GSR_OP_DEVICE_GET_PCI_BUS_ID:
        r->status = cuDeviceGetPCIBusId(text, sizeof text, dev);
        if (r->status == CUDA_SUCCESS) put_blob(r, text, strnlen(text, sizeof text));
        break;
    case GSR_OP_DEVICE_GET_UUID:
        r->status = cuDeviceGetUuid_v2(&uuid, dev);
        if (r->status == CUDA_SUCCESS) put_blob(r, uuid.bytes, sizeof uuid.bytes);
        break;
    case GSR_OP_DEVICE_TOTAL_MEM:
        r->status = cuDeviceTotalMem_v2(&total, dev);
        if (r->status == CUDA_SUCCESS) put_u64(r, total);
        break;
    default: /* GSR_OP_DEVICE_GET_ATTRIBUTE */
        r->status = cuDeviceGetAttribute(&iv, (CUdevice_attribute)a->v[0], dev);
        if (r->status == CUDA_SUCCESS) put_u64(r, (uint64_t)(int64_t)iv);
        break;
    }
}

/* A function's attribute, its settable attributes, its occupancy: through the entry points
 * gsr_session_prepare found (NOT_SUPPORTED where the driver has none). */
static void handle_function_query(gsr_session *s, const gsr_header *h, const gsr_args *a, reply *r) {
    CUfunction f = NULL;
    int value = 0;
    r->status = gsr_function_of(s, a->v[0], &f);
    if (r->status != CUDA_SUCCESS) return;
    r->status = CUDA_ERROR_NOT_SUPPORTED;
    if (h->op == GSR_OP_FUNC_GET_ATTRIBUTE && s->func_get_attribute)
        r->status = s->func_get_attribute(&value, (int)a->v[1], f);
    else if (h->op == GSR_OP_FUNC_SET_ATTRIBUTE && s->func_set_attribute)
        r->status = s->func_set_attribute(f, (int)a->v[1], (int)a->v[2]);
    else if (h->op == GSR_OP_OCCUPANCY_MAX_BLOCKS && s->occupancy)
        r->status = s->occupancy(&value, f, (int)a->v[1], (size_t)a->v[2], (unsigned)a->v[3]);
    if (r->status == CUDA_SUCCESS && h->op != GSR_OP_FUNC_SET_ATTRIBUTE) put_u64(r, (uint64_t)(int64_t)value);
}

/* NVML's memory answer for the client (docs/remote.md "NVML"): the device's total as this
 * worker's driver reports it (libgpushare: the slice), and what this session holds. */
static void handle_session_memory(gsr_session *s, int dev, reply *r) {
    size_t total = 0;
    uint64_t used = 0;
    r->status = cuDeviceTotalMem_v2(&total, dev);
    if (r->status != CUDA_SUCCESS) return;
    for (size_t i = 0; i < s->table.nallocs; i++)
        if (s->table.allocs[i].module == 0) used += s->table.allocs[i].size;
    put_u64(r, total);
    put_u64(r, used);
}

/* Ops that run in the caller's current context (the header's ctx made current first). */
static int needs_ctx(unsigned op) {
    return op >= GSR_OP_CTX_SYNCHRONIZE && op != GSR_OP_PRIMARY_CTX_SET_FLAGS && op != GSR_OP_SESSION_MEMORY && op != GSR_OP_POINTER_GET &&
           op != GSR_OP_LANES_OPEN && op != GSR_OP_LANE_HELLO && op != GSR_OP_COMPRESS && op != GSR_OP_LIBRARY_LOAD_DATA;
}

int gsr_session_handle(gsr_session *s, const gsr_header *h) {
    gsr_args a;
    reply r;
    memset(&r, 0, sizeof r);
    r.status = CUDA_ERROR_INVALID_VALUE;
    if (h->op == GSR_OP_HELLO || h->op == GSR_OP_DATA || h->op == GSR_OP_LANE_HELLO) return ends_session(s); /* out of sequence */
    if (gsr_decode(h->op, 0, s->payload, h->length, &a) != GSR_OK) {
        /* A transfer's DATA frames follow its request: their count is unknown now. */
        if (h->op == GSR_OP_MEMCPY_HTOD || h->op == GSR_OP_MODULE_LOAD_DATA || h->op == GSR_OP_LIBRARY_LOAD_DATA) return ends_session(s);
        return send_reply(s, h, &r, 0);
    }
    CUresult ctx_rc = needs_ctx(h->op) ? use_ctx(s, h->ctx) : CUDA_SUCCESS;
    if (ctx_rc != CUDA_SUCCESS) {
        r.status = ctx_rc;
        /* The transfer's data still comes: take it in and throw it away. */
        if ((h->op == GSR_OP_MEMCPY_HTOD || h->op == GSR_OP_MEMCPY_DTOH) && s->nlanes > 0 && a.v[1] > s->chunk) {
            /* On the lanes: taken in, or zeros sent, all the same. */
            if (gsr_lanes_copy(s, h->op == GSR_OP_MEMCPY_DTOH, 0, a.v[1], NULL, &r.status) != 0) return -1;
        } else if (h->op == GSR_OP_MEMCPY_HTOD || h->op == GSR_OP_MODULE_LOAD_DATA) {
            uint64_t bytes = h->op == GSR_OP_MEMCPY_HTOD ? a.v[1] : a.v[0];
            for (uint64_t off = 0; off < bytes;) {
                /* A copy's chunks may come compressed; a module's never do. */
                size_t n = h->op == GSR_OP_MEMCPY_HTOD ? gsr_take_chunk(s, bytes - off, NULL) : gsr_next_data(s, bytes - off);
                if (n == 0 || (h->op != GSR_OP_MEMCPY_HTOD && gsr_in_discard(s, n) != 0)) return ends_session(s);
                off += n;
            }
        }
        return send_reply(s, h, &r, 0);
    }
    int rc = 0;
    int iv = 0;
    size_t f = 0, t = 0;
    float ms = 0;
    uint32_t bits = 0;
    switch ((gsr_op)h->op) {
    case GSR_OP_PING:
        set_ok(&r);
        break;
    case GSR_OP_DRIVER_GET_VERSION:
    case GSR_OP_DEVICE_GET_COUNT:
    case GSR_OP_CTX_GET_DEVICE: /* one int each */
        r.status = h->op == GSR_OP_DRIVER_GET_VERSION ? cuDriverGetVersion(&iv)
                   : h->op == GSR_OP_DEVICE_GET_COUNT ? cuDeviceGetCount(&iv)
                                                      : cuCtxGetDevice(&iv);
        if (r.status == CUDA_SUCCESS) put_u64(&r, (uint64_t)(int64_t)iv);
        break;
    case GSR_OP_DEVICE_GET_NAME:
    case GSR_OP_DEVICE_GET_ATTRIBUTE:
    case GSR_OP_DEVICE_TOTAL_MEM:
    case GSR_OP_DEVICE_GET_UUID:
    case GSR_OP_DEVICE_GET_PCI_BUS_ID:
        handle_device_query(h, &a, &r);
        break;
    case GSR_OP_PRIMARY_CTX_RETAIN:
        handle_primary_retain(s, (int)a.v[0], &r);
        break;
    case GSR_OP_PRIMARY_CTX_RELEASE:
        handle_primary_release(s, (int)a.v[0], &r);
        break;
    case GSR_OP_CTX_CREATE: {
        CUcontext c = NULL;
        r.status = cuCtxCreate_v2(&c, (unsigned)a.v[0], (int)a.v[1]);
        if (r.status != CUDA_SUCCESS) break;
        gsr_obj *o = gsr_table_add(&s->table, GSR_KIND_CONTEXT, c, 0);
        if (!o) {
            (void)cuCtxDestroy_v2(c);
            r.status = CUDA_ERROR_OUT_OF_MEMORY;
            break;
        }
        o->device = (int)a.v[1];
        s->current_ctx = o->id; /* cuCtxCreate made it current here, as on the client */
        put_u64(&r, o->id);
        break;
    }
    case GSR_OP_CTX_DESTROY:
        handle_ctx_destroy(s, a.v[0], &r);
        break;
    case GSR_OP_CTX_SYNCHRONIZE:
        r.status = cuCtxSynchronize();
        break;
    case GSR_OP_MEM_ALLOC:
        handle_alloc(s, a.v[0], &r);
        break;
    case GSR_OP_MEM_FREE:
        handle_free(s, a.v[0], &r);
        break;
    case GSR_OP_MEM_GET_INFO:
        r.status = cuMemGetInfo_v2(&f, &t);
        if (r.status == CUDA_SUCCESS) {
            put_u64(&r, f);
            put_u64(&r, t);
        }
        break;
    case GSR_OP_MEMCPY_HTOD:
        rc = gsr_copy_htod(s, &a, &r.status);
        break;
    case GSR_OP_MEMCPY_DTOH:
        rc = gsr_copy_dtoh(s, &a, &r.status);
        break;
    case GSR_OP_MEMCPY_DTOD:
        handle_dtod(s, &a, &r);
        break;
    case GSR_OP_MEMSET_D8: {
        CUstream stream;
        r.status = gsr_find_stream(s, a.v[3], &stream);
        if (r.status != CUDA_SUCCESS) break;
        if (!gsr_table_range_ok(&s->table, a.v[0], a.v[2]))
            r.status = CUDA_ERROR_INVALID_VALUE;
        else
            r.status = a.v[4] ? cuMemsetD8Async(a.v[0], (unsigned char)a.v[1], (size_t)a.v[2], stream)
                              : cuMemsetD8_v2(a.v[0], (unsigned char)a.v[1], (size_t)a.v[2]);
        break;
    }
    case GSR_OP_MODULE_LOAD_DATA:
    case GSR_OP_LIBRARY_LOAD_DATA:
        rc = handle_module_load(s, &a, &r, h->op == GSR_OP_LIBRARY_LOAD_DATA);
        break;
    case GSR_OP_MODULE_UNLOAD: /* a library's too (cuLibraryUnload) */
        handle_object_destroy(s, a.v[0], GSR_ID_KIND(a.v[0]) == GSR_KIND_LIBRARY && can_load_libraries(s) ? GSR_KIND_LIBRARY : GSR_KIND_MODULE, &r);
        break;
    case GSR_OP_MODULE_GET_FUNCTION:
        handle_get_function(s, &a, &r);
        break;
    case GSR_OP_LAUNCH_KERNEL:
        handle_launch(s, &a, &r);
        break;
    case GSR_OP_STREAM_CREATE:
        handle_object_create(s, GSR_KIND_STREAM, (unsigned)a.v[0], 0, 0, &r);
        break;
    case GSR_OP_EVENT_CREATE:
        handle_object_create(s, GSR_KIND_EVENT, (unsigned)a.v[0], 0, 0, &r);
        break;
    case GSR_OP_STREAM_DESTROY:
        handle_object_destroy(s, a.v[0], GSR_KIND_STREAM, &r);
        break;
    case GSR_OP_EVENT_DESTROY:
        handle_object_destroy(s, a.v[0], GSR_KIND_EVENT, &r);
        break;
    case GSR_OP_STREAM_SYNCHRONIZE:
    case GSR_OP_STREAM_QUERY: {
        CUstream stream;
        r.status = gsr_find_stream(s, a.v[0], &stream);
        if (r.status == CUDA_SUCCESS) r.status = h->op == GSR_OP_STREAM_QUERY ? cuStreamQuery(stream) : cuStreamSynchronize(stream);
        break;
    }
    case GSR_OP_EVENT_RECORD: {
        CUevent ev = find_handle(s, a.v[0], GSR_KIND_EVENT);
        CUstream stream;
        r.status = ev ? gsr_find_stream(s, a.v[1], &stream) : CUDA_ERROR_INVALID_HANDLE;
        if (r.status == CUDA_SUCCESS) r.status = cuEventRecord(ev, stream);
        break;
    }
    case GSR_OP_EVENT_SYNCHRONIZE:
    case GSR_OP_EVENT_QUERY: {
        CUevent ev = find_handle(s, a.v[0], GSR_KIND_EVENT);
        r.status = !ev ? CUDA_ERROR_INVALID_HANDLE : h->op == GSR_OP_EVENT_QUERY ? cuEventQuery(ev) : cuEventSynchronize(ev);
        break;
    }
    case GSR_OP_EVENT_ELAPSED_TIME: {
        CUevent start = find_handle(s, a.v[0], GSR_KIND_EVENT), end = find_handle(s, a.v[1], GSR_KIND_EVENT);
        r.status = (!start || !end) ? CUDA_ERROR_INVALID_HANDLE : cuEventElapsedTime(&ms, start, end);
        if (r.status == CUDA_SUCCESS) {
            memcpy(&bits, &ms, sizeof bits);
            put_u64(&r, bits);
        }
        break;
    }
    case GSR_OP_FUNC_GET_ATTRIBUTE:
    case GSR_OP_FUNC_SET_ATTRIBUTE:
    case GSR_OP_OCCUPANCY_MAX_BLOCKS:
        handle_function_query(s, h, &a, &r);
        break;
    case GSR_OP_PRIMARY_CTX_SET_FLAGS:
        r.status = cuDevicePrimaryCtxSetFlags_v2((int)a.v[0], (unsigned)a.v[1]);
        break;
    case GSR_OP_SESSION_MEMORY:
        handle_session_memory(s, (int)a.v[0], &r);
        break;
    case GSR_OP_STREAM_WAIT_EVENT: {
        CUevent ev = find_handle(s, a.v[1], GSR_KIND_EVENT);
        CUstream stream;
        r.status = ev ? gsr_find_stream(s, a.v[0], &stream) : CUDA_ERROR_INVALID_HANDLE;
        if (r.status == CUDA_SUCCESS) r.status = cuStreamWaitEvent(stream, ev, (unsigned)a.v[2]);
        break;
    }
    case GSR_OP_STREAM_CREATE_PRIORITY:
        handle_object_create(s, GSR_KIND_STREAM, (unsigned)a.v[0], 1, (int)a.v[1], &r);
        break;
    case GSR_OP_CTX_STREAM_PRIORITY_RANGE: {
        int least = 0, greatest = 0;
        r.status = s->stream_priority_range ? s->stream_priority_range(&least, &greatest) : CUDA_ERROR_NOT_SUPPORTED;
        if (r.status == CUDA_SUCCESS) {
            put_u64(&r, (uint64_t)(int64_t)least);
            put_u64(&r, (uint64_t)(int64_t)greatest);
        }
        break;
    }
    case GSR_OP_STREAM_GET:
    case GSR_OP_CTX_GET:
    case GSR_OP_CTX_SET:
    case GSR_OP_EVENT_RECORD_FLAGS:
    case GSR_OP_POINTER_GET:
    case GSR_OP_MODULE_GET_GLOBAL:
        r.status = gsr_handle_query(s, h->op, &a, &r.out);
        break;
    case GSR_OP_LANES_OPEN: /* served by the loop (worker.c) as the first request only */
    case GSR_OP_COMPRESS:   /* likewise, before LANES_OPEN */
        r.status = CUDA_ERROR_NOT_SUPPORTED;
        break;
    /* ops 100-149: cuBLAS's needs (worker_queries.c) */
    case GSR_OP_OCCUPANCY_DYNAMIC_SMEM:
    case GSR_OP_OCCUPANCY_CLUSTERS:
    case GSR_OP_LAUNCH_KERNEL_EX:
    case GSR_OP_TENSOR_MAP_ENCODE_TILED:
    case GSR_OP_TENSOR_MAP_REPLACE_ADDRESS:
        r.status = gsr_handle_cublas_op(s, h->op, &a, &r.out);
        break;
    case GSR_OP_HELLO:
    case GSR_OP_DATA:
    case GSR_OP_LANE_HELLO: /* a lane's, never the control connection's */
        return ends_session(s);
    }
    if (rc != 0) return rc;
    return send_reply(s, h, &r, is_synchronizing(h, &a));
}
