/*
 * client_runtime.c: what the CUDA runtime (libcudart, inside CuPy and PyTorch) asks of the
 * driver beyond the driver-API basics of client_api.c (docs/remote.md "What the CUDA runtime
 * calls"): CUDA 12's libraries and kernels (cudart loads its fatbins with cuLibraryLoadData
 * and launches CUkernel handles), fatbin and JIT-option module loads, function attributes
 * and occupancy (asked before a first launch), the parameter layout (answered here), the
 * primary context's state and flags, the per-thread-default-stream forms (_ptsz/_ptds)
 * that cuGetProcAddress hands out with CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM,
 * stream waits and priorities, and page-locked host memory (local).
 *
 * A library is a CUlibrary on the worker (protocol version 5): loaded without a context, as
 * the driver loads one, so an image with no code for this GPU loads (a library like cuBLAS
 * carries fatbins for other GPUs only) and fails only when one of its kernels is asked for,
 * as it does locally; its kernels become functions in the context current when they are
 * asked for. With an older worker a library is a module loaded into the context current at
 * load time (the primary one where none is), so such an image is refused at load.
 */
#include "client.h"
#include "client_served.h"
#include "cuda_extra.h"
#include "gs_cuda_procs_extra.h"
#include "net.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEVICES 64

/* Entry points of client_api.c used here under their driver names. */
CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n);
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t n, CUstream s);
CUresult cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t n, CUstream s);
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s);

/* ---- libraries and kernels (CUDA 12) ----------------------------------------------- */
GSR_EXPORT CUresult cuModuleLoadFatBinary(CUmodule *module, const void *fatCubin) { return cuModuleLoadData(module, fatCubin); }

/* JIT options tune a PTX compile (log buffers, optimization level): the worker's driver
 * compiles with its defaults; a log buffer the caller passed stays empty. */
GSR_EXPORT CUresult cuModuleLoadDataEx(CUmodule *module, const void *image, unsigned int numOptions, CUjit_option *options,
                                       void **optionValues) {
    (void)numOptions, (void)options, (void)optionValues;
    return cuModuleLoadData(module, image);
}

/* A call that needs a context on the worker, made where the caller has none (the runtime
 * asks for a library's kernels and globals before it makes one current): in the session's
 * primary context, where the runtime will run them. *pushed says whether to pop after. */
static CUresult need_context(int *pushed) {
    *pushed = 0;
    if (gsr_current_ctx()) return CUDA_SUCCESS;
    CUcontext primary = NULL;
    CUresult rc = gsr_primary_context(&primary, 0);
    if (rc == CUDA_SUCCESS) rc = cuCtxPushCurrent_v2(primary);
    if (rc == CUDA_SUCCESS) *pushed = 1;
    return rc;
}

GSR_EXPORT CUresult cuLibraryLoadData(CUlibrary *library, const void *code, CUjit_option *jitOptions, void **jitOptionsValues,
                                      unsigned int numJitOptions, CUlibraryOption *libraryOptions, void **libraryOptionValues,
                                      unsigned int numLibraryOptions) {
    (void)jitOptions, (void)jitOptionsValues, (void)numJitOptions;
    (void)libraryOptions, (void)libraryOptionValues, (void)numLibraryOptions;
    if (!library || !code) return CUDA_ERROR_INVALID_VALUE;
    /* Set once the worker answered NOT_SUPPORTED (its driver has no libraries): every later
     * library goes as a module at once, its image sent once. */
    static int worker_lacks_libraries;
    uint64_t id = 0;
    CUresult rc = CUDA_ERROR_NOT_SUPPORTED;
    if (gsr_worker_version() >= GSR_VERSION_LIBRARY && !__atomic_load_n(&worker_lacks_libraries, __ATOMIC_RELAXED)) {
        rc = gsr_load_image(&id, code, 1);
        if (rc == CUDA_ERROR_NOT_SUPPORTED) __atomic_store_n(&worker_lacks_libraries, 1, __ATOMIC_RELAXED);
    }
    if (rc == CUDA_ERROR_NOT_SUPPORTED) {
        /* An older worker: a module, in the primary context where none is current (cudart 13
         * loads the program's fatbins before it has one). */
        int pushed;
        rc = need_context(&pushed);
        if (rc != CUDA_SUCCESS) return rc;
        rc = gsr_load_image(&id, code, 0);
        if (pushed) (void)cuCtxPopCurrent_v2(NULL);
    }
    if (rc == CUDA_SUCCESS) *library = (CUlibrary)(uintptr_t)id;
    return rc;
}

/* A library's global, in the context current (the primary one where none is). */
GSR_EXPORT CUresult cuLibraryGetGlobal(CUdeviceptr *dptr, size_t *bytes, CUlibrary library, const char *name) {
    int pushed;
    CUresult rc = need_context(&pushed);
    if (rc != CUDA_SUCCESS) return rc;
    rc = cuModuleGetGlobal_v2(dptr, bytes, (CUmodule)library, name);
    if (pushed) (void)cuCtxPopCurrent_v2(NULL);
    return rc;
}

/* The runtime asks how modules load before it loads its fatbins: lazy (the driver's default
 * since CUDA 12.2) unless CUDA_MODULE_LOADING=EAGER, as the driver reads it. A runtime told
 * nothing loads every fatbin of a library like cuBLAS at its start, eagerly. */
GSR_EXPORT CUresult cuModuleGetLoadingMode(int *mode) {
    if (!mode) return CUDA_ERROR_INVALID_VALUE;
    const char *env = getenv("CUDA_MODULE_LOADING");
    *mode = env && strcmp(env, "EAGER") == 0 ? 1 /* CU_MODULE_EAGER_LOADING */ : 2 /* CU_MODULE_LAZY_LOADING */;
    return CUDA_SUCCESS;
}

GSR_EXPORT CUresult cuLibraryUnload(CUlibrary library) { return cuModuleUnload((CUmodule)library); }

GSR_EXPORT CUresult cuLibraryGetModule(CUmodule *pMod, CUlibrary library) {
    if (!pMod || !library) return CUDA_ERROR_INVALID_VALUE;
    *pMod = (CUmodule)library;
    return CUDA_SUCCESS;
}

/* A kernel is the same record as a function: cuLaunchKernel takes either. */
GSR_EXPORT CUresult cuLibraryGetKernel(CUkernel *pKernel, CUlibrary library, const char *name) {
    int pushed;
    CUresult rc = need_context(&pushed);
    if (rc != CUDA_SUCCESS) return rc;
    rc = cuModuleGetFunction((CUfunction *)pKernel, (CUmodule)library, name);
    if (pushed) (void)cuCtxPopCurrent_v2(NULL);
    return rc;
}

static const gsr_function *function_record(const void *handle) {
    const gsr_function *f = handle;
    return f && f->magic == GSR_FUNC_MAGIC ? f : NULL;
}

GSR_EXPORT CUresult cuKernelGetFunction(CUfunction *pFunc, CUkernel kernel) {
    if (!pFunc) return CUDA_ERROR_INVALID_VALUE;
    if (!function_record(kernel)) return CUDA_ERROR_INVALID_HANDLE;
    *pFunc = (CUfunction)kernel;
    return CUDA_SUCCESS;
}

/* ---- function attributes and occupancy ------------------------------------------- */
static CUresult function_call(unsigned op, const void *handle, uint64_t a, uint64_t b, uint64_t c, int *value) {
    const gsr_function *f = function_record(handle);
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    gsr_args in = {.v = {f->id, a, b, c}, .nv = op == GSR_OP_FUNC_GET_ATTRIBUTE ? 2 : op == GSR_OP_FUNC_SET_ATTRIBUTE ? 3 : 4};
    gsr_args out;
    if (!gsr_current_ctx() && op != GSR_OP_FUNC_GET_ATTRIBUTE && op != GSR_OP_FUNC_SET_ATTRIBUTE) return CUDA_ERROR_INVALID_CONTEXT;
    CUresult rc = gsr_call(op, &in, &out);
    if (rc == CUDA_SUCCESS && value) *value = (int)out.v[0];
    return rc;
}

GSR_EXPORT CUresult cuFuncGetAttribute(int *pi, int attrib, CUfunction hfunc) {
    if (!pi) return CUDA_ERROR_INVALID_VALUE;
    return function_call(GSR_OP_FUNC_GET_ATTRIBUTE, hfunc, (uint64_t)(int64_t)attrib, 0, 0, pi);
}

GSR_EXPORT CUresult cuFuncSetAttribute(CUfunction hfunc, int attrib, int value) {
    return function_call(GSR_OP_FUNC_SET_ATTRIBUTE, hfunc, (uint64_t)(int64_t)attrib, (uint64_t)(int64_t)value, 0, NULL);
}

/* One device per session: the device argument names the session's device. */
GSR_EXPORT CUresult cuKernelGetAttribute(int *pi, int attrib, CUkernel kernel, CUdevice dev) {
    (void)dev;
    return cuFuncGetAttribute(pi, attrib, (CUfunction)kernel);
}

GSR_EXPORT CUresult cuKernelSetAttribute(int attrib, int val, CUkernel kernel, CUdevice dev) {
    (void)dev;
    return cuFuncSetAttribute((CUfunction)kernel, attrib, val);
}

/* A preference the driver is free to ignore (cuda.h): kept by none, so not sent. */
GSR_EXPORT CUresult cuFuncSetCacheConfig(CUfunction hfunc, int config) {
    (void)config;
    return function_record(hfunc) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

GSR_EXPORT CUresult cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int *numBlocks, CUfunction func, int blockSize,
                                                                         size_t dynamicSMemSize, unsigned int flags) {
    if (!numBlocks || blockSize <= 0) return CUDA_ERROR_INVALID_VALUE;
    return function_call(GSR_OP_OCCUPANCY_MAX_BLOCKS, func, (uint64_t)blockSize, dynamicSMemSize, flags, numBlocks);
}

GSR_EXPORT CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int *numBlocks, CUfunction func, int blockSize, size_t dynamicSMemSize) {
    return cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(numBlocks, func, blockSize, dynamicSMemSize, 0);
}

/* The layout the worker sent with the function (CUDA_ERROR_INVALID_VALUE past the last
 * parameter, as the driver answers; NOT_SUPPORTED when the worker's driver gave none). */
GSR_EXPORT CUresult cuFuncGetParamInfo(CUfunction func, size_t paramIndex, size_t *paramOffset, size_t *paramSize) {
    const gsr_function *f = function_record(func);
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    if (!f->has_layout) return CUDA_ERROR_NOT_SUPPORTED;
    if (paramIndex >= f->nparams) return CUDA_ERROR_INVALID_VALUE;
    if (paramOffset) *paramOffset = f->layout[2 * paramIndex];
    if (paramSize) *paramSize = f->layout[2 * paramIndex + 1];
    return CUDA_SUCCESS;
}

/* ---- the primary context's state: this session's retains and the flags it set ------- */
static struct {
    pthread_mutex_t lock;
    int retains[MAX_DEVICES];
    unsigned flags[MAX_DEVICES];
} primary = {.lock = PTHREAD_MUTEX_INITIALIZER};

void gsr_primary_retained(CUdevice dev, int delta) {
    if (dev < 0 || dev >= MAX_DEVICES) return;
    pthread_mutex_lock(&primary.lock);
    primary.retains[dev] += delta;
    pthread_mutex_unlock(&primary.lock);
}

/* The worker serves one client, so the session's own retains are all there are. */
GSR_EXPORT CUresult cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int *flags, int *active) {
    if (!flags || !active) return CUDA_ERROR_INVALID_VALUE;
    int count = 0;
    CUresult rc = cuDeviceGetCount(&count);
    if (rc != CUDA_SUCCESS) return rc;
    if (dev < 0 || dev >= count || dev >= MAX_DEVICES) return CUDA_ERROR_INVALID_DEVICE;
    pthread_mutex_lock(&primary.lock);
    *flags = primary.flags[dev];
    *active = primary.retains[dev] > 0;
    pthread_mutex_unlock(&primary.lock);
    return CUDA_SUCCESS;
}

GSR_EXPORT CUresult cuDevicePrimaryCtxSetFlags_v2(CUdevice dev, unsigned int flags) {
    if (dev < 0 || dev >= MAX_DEVICES) return CUDA_ERROR_INVALID_DEVICE;
    CUresult rc = gsr_call(GSR_OP_PRIMARY_CTX_SET_FLAGS, &(gsr_args){.v = {(uint64_t)(int64_t)dev, flags}, .nv = 2}, NULL);
    if (rc == CUDA_SUCCESS) {
        pthread_mutex_lock(&primary.lock);
        primary.flags[dev] = flags;
        pthread_mutex_unlock(&primary.lock);
    }
    return rc;
}

GSR_EXPORT CUresult cuDevicePrimaryCtxSetFlags(CUdevice dev, unsigned int flags) { return cuDevicePrimaryCtxSetFlags_v2(dev, flags); }

/* NVML's memory answer (nvml_client.c): the device's total on the worker and this session's bytes. */
GSR_EXPORT CUresult gsr_remote_session_memory(int dev, unsigned long long *total, unsigned long long *used) {
    gsr_args out;
    CUresult rc = gsr_connect_once();
    if (rc == CUDA_SUCCESS) rc = gsr_call(GSR_OP_SESSION_MEMORY, &(gsr_args){.v = {(uint64_t)(int64_t)dev}, .nv = 1}, &out);
    if (rc == CUDA_SUCCESS) {
        *total = out.v[0];
        *used = out.v[1];
    }
    return rc;
}

/* ---- per-thread default stream forms -------------------------------------------------
 * The stream NULL of a _ptsz/_ptds call is the per-thread default stream; the worker maps
 * CU_STREAM_PER_THREAD onto its own thread's (docs/remote.md). */
static CUstream per_thread(CUstream s) { return s ? s : CU_STREAM_PER_THREAD; }

GSR_EXPORT CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz, unsigned int bx, unsigned int by,
                                        unsigned int bz, unsigned int shared, CUstream s, void **kernelParams, void **extra) {
    return cuLaunchKernel(f, gx, gy, gz, bx, by, bz, shared, per_thread(s), kernelParams, extra);
}
GSR_EXPORT CUresult cuMemcpyHtoDAsync_v2_ptsz(CUdeviceptr dst, const void *src, size_t n, CUstream s) {
    return cuMemcpyHtoDAsync_v2(dst, src, n, per_thread(s));
}
GSR_EXPORT CUresult cuMemcpyDtoHAsync_v2_ptsz(void *dst, CUdeviceptr src, size_t n, CUstream s) {
    return cuMemcpyDtoHAsync_v2(dst, src, n, per_thread(s));
}
GSR_EXPORT CUresult cuMemcpyDtoDAsync_v2_ptsz(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) {
    return cuMemcpyDtoDAsync_v2(dst, src, n, per_thread(s));
}
GSR_EXPORT CUresult cuMemsetD8Async_ptsz(CUdeviceptr dst, unsigned char uc, size_t n, CUstream s) {
    return cuMemsetD8Async(dst, uc, n, per_thread(s));
}
GSR_EXPORT CUresult cuStreamSynchronize_ptsz(CUstream s) { return cuStreamSynchronize(per_thread(s)); }
GSR_EXPORT CUresult cuStreamQuery_ptsz(CUstream s) { return cuStreamQuery(per_thread(s)); }
GSR_EXPORT CUresult cuEventRecord_ptsz(CUevent e, CUstream s) { return cuEventRecord(e, per_thread(s)); }
/* Synchronous copies: the legacy forms synchronize more than the per-thread ones need. */
GSR_EXPORT CUresult cuMemcpyHtoD_v2_ptds(CUdeviceptr dst, const void *src, size_t n) { return cuMemcpyHtoD_v2(dst, src, n); }
GSR_EXPORT CUresult cuMemcpyDtoH_v2_ptds(void *dst, CUdeviceptr src, size_t n) { return cuMemcpyDtoH_v2(dst, src, n); }
GSR_EXPORT CUresult cuMemcpyDtoD_v2_ptds(CUdeviceptr dst, CUdeviceptr src, size_t n) { return cuMemcpyDtoD_v2(dst, src, n); }
GSR_EXPORT CUresult cuMemsetD8_v2_ptds(CUdeviceptr dst, unsigned char uc, size_t n) { return cuMemsetD8_v2(dst, uc, n); }
GSR_EXPORT CUresult cuStreamWaitEvent(CUstream hStream, CUevent hEvent, unsigned int Flags) {
    if (!gsr_current_ctx()) return CUDA_ERROR_INVALID_CONTEXT;
    return gsr_post(GSR_OP_STREAM_WAIT_EVENT, &(gsr_args){.v = {(uintptr_t)hStream, (uintptr_t)hEvent, Flags}, .nv = 3});
}
GSR_EXPORT CUresult cuStreamWaitEvent_ptsz(CUstream hStream, CUevent hEvent, unsigned int Flags) {
    return cuStreamWaitEvent(per_thread(hStream), hEvent, Flags);
}

/* ---- stream priorities (PyTorch's stream pools ask the range, then create with one) ---- */
GSR_EXPORT CUresult cuStreamCreateWithPriority(CUstream *phStream, unsigned int flags, int priority) {
    if (!phStream) return CUDA_ERROR_INVALID_VALUE;
    if (!gsr_current_ctx()) return CUDA_ERROR_INVALID_CONTEXT;
    gsr_args out;
    CUresult rc = gsr_call(GSR_OP_STREAM_CREATE_PRIORITY, &(gsr_args){.v = {flags, (uint64_t)(int64_t)priority}, .nv = 2}, &out);
    if (rc == CUDA_SUCCESS) *phStream = (CUstream)(uintptr_t)out.v[0];
    return rc;
}

GSR_EXPORT CUresult cuCtxGetStreamPriorityRange(int *leastPriority, int *greatestPriority) {
    if (!gsr_current_ctx()) return CUDA_ERROR_INVALID_CONTEXT;
    gsr_args out;
    CUresult rc = gsr_call(GSR_OP_CTX_STREAM_PRIORITY_RANGE, &(gsr_args){0}, &out);
    if (rc == CUDA_SUCCESS) {
        if (leastPriority) *leastPriority = (int)out.v[0];
        if (greatestPriority) *greatestPriority = (int)out.v[1];
    }
    return rc;
}

/* ---- page-locked host memory: plain page-aligned memory on this machine (from 2 MiB up on
 * transparent huge pages where the kernel gives them: net.h gsr_alloc_bulk) -----------------
 * Copies to and from it go over the wire like any host memory; it has no device mapping
 * (cuMemHostGetDevicePointer is not served). The registry lets cuMemFreeHost refuse a
 * pointer it did not hand out, as the driver does. */
static struct {
    pthread_mutex_t lock;
    void **ptrs;
    size_t n, cap;
} host_allocs = {.lock = PTHREAD_MUTEX_INITIALIZER};

GSR_EXPORT CUresult cuMemHostAlloc(void **pp, size_t bytesize, unsigned int Flags) {
    if (!pp || bytesize == 0 || Flags > 7) return CUDA_ERROR_INVALID_VALUE;
    size_t page = 4096, rounded = (bytesize + page - 1) / page * page;
    void *p = gsr_alloc_bulk(bytesize, NULL); /* huge pages from 2 MiB: the copies out of it are the bulk ones */
    if (!p) return CUDA_ERROR_OUT_OF_MEMORY;
    pthread_mutex_lock(&host_allocs.lock);
    if (host_allocs.n == host_allocs.cap) {
        size_t cap = host_allocs.cap ? 2 * host_allocs.cap : 64;
        void **grown = realloc(host_allocs.ptrs, cap * sizeof *grown);
        if (!grown) {
            pthread_mutex_unlock(&host_allocs.lock);
            free(p);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        host_allocs.ptrs = grown;
        host_allocs.cap = cap;
    }
    host_allocs.ptrs[host_allocs.n++] = p;
    pthread_mutex_unlock(&host_allocs.lock);
    if (gsr_host_range_add(p, rounded, 1) != CUDA_SUCCESS) { /* for pointer attributes */
        (void)cuMemFreeHost(p);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *pp = p;
    return CUDA_SUCCESS;
}

GSR_EXPORT CUresult cuMemAllocHost_v2(void **pp, size_t bytesize) { return cuMemHostAlloc(pp, bytesize, 0); }

GSR_EXPORT CUresult cuMemFreeHost(void *p) {
    pthread_mutex_lock(&host_allocs.lock);
    size_t i = 0;
    while (i < host_allocs.n && host_allocs.ptrs[i] != p) i++;
    int found = i < host_allocs.n;
    if (found) host_allocs.ptrs[i] = host_allocs.ptrs[--host_allocs.n];
    pthread_mutex_unlock(&host_allocs.lock);
    if (!found) return CUDA_ERROR_INVALID_VALUE;
    gsr_host_range_remove(p);
    free(p);
    return CUDA_SUCCESS;
}

/* ---- CUDA 13's forms of the context calls (cuGetProcAddress at 13000 hands these out) ---- */
/* A call about `ctx` (NULL: the current one): made with ctx pushed for its duration, since the
 * request header names the calling thread's current context. */
static CUresult with_context(CUcontext ctx, CUresult (*call)(void *), void *arg) {
    if (!ctx) return call(arg);
    CUresult rc = cuCtxPushCurrent_v2(ctx);
    if (rc != CUDA_SUCCESS) return rc;
    rc = call(arg);
    (void)cuCtxPopCurrent_v2(NULL);
    return rc;
}

static CUresult synchronize_current(void *unused) {
    (void)unused;
    return cuCtxSynchronize();
}

static CUresult device_of_current(void *device) { return cuCtxGetDevice(device); }

GSR_EXPORT CUresult cuCtxSynchronize_v2(CUcontext ctx) { return with_context(ctx, synchronize_current, NULL); }

GSR_EXPORT CUresult cuCtxGetDevice_v2(CUdevice *device, CUcontext ctx) {
    if (!device) return CUDA_ERROR_INVALID_VALUE;
    return with_context(ctx, device_of_current, device);
}

static int logged_create_params;

/* Without parameters it is cuCtxCreate_v2; execution affinity and CIG parameters are not
 * forwarded (NOT_SUPPORTED, logged once). */
GSR_EXPORT CUresult cuCtxCreate_v4(CUcontext *pctx, CUctxCreateParams *ctxCreateParams, unsigned int flags, CUdevice dev) {
    if (ctxCreateParams) {
        gsr_log_once("cuCtxCreate_v4 with CUctxCreateParams is not forwarded (CUDA_ERROR_NOT_SUPPORTED)", &logged_create_params);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    return cuCtxCreate_v2(pctx, flags, dev);
}

/* ---- clusters: occupancy and launches with a launch configuration (cuBLAS on sm_90) -----
 * cuBLAS(Lt) asks, at its start, how much dynamic shared memory a block may have, then the
 * cluster occupancy of its sm_90 kernels, and launches them with cuLaunchKernelEx. The
 * configuration goes to the worker as GSR_LAUNCH_* bytes (proto.h); an attribute naming an
 * object of this process (an event: PROGRAMMATIC_EVENT, LAUNCH_COMPLETION_EVENT), one for
 * graphs (DEVICE_UPDATABLE_KERNEL_NODE) or one unknown here is refused, logged once. */
static int logged_launch_attribute;

static CUresult encode_launch_config(const CUlaunchConfig *config, uint8_t *buf, size_t *len) {
    if (!config || (config->numAttrs && !config->attrs)) return CUDA_ERROR_INVALID_VALUE;
    if (config->numAttrs > GSR_MAX_LAUNCH_ATTRS) return CUDA_ERROR_NOT_SUPPORTED;
    uint32_t head[8] = {config->gridDimX, config->gridDimY, config->gridDimZ, config->blockDimX,
                        config->blockDimY, config->blockDimZ, config->sharedMemBytes, config->numAttrs};
    uint64_t stream = (uint64_t)(uintptr_t)config->hStream;
    memcpy(buf, head, sizeof head);
    memcpy(buf + sizeof head, &stream, sizeof stream);
    size_t at = GSR_LAUNCH_HEAD_BYTES;
    for (unsigned i = 0; i < config->numAttrs; i++) {
        const CUlaunchAttribute *attr = &config->attrs[i];
        switch ((int)attr->id) {
        case CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_EVENT:
        case CU_LAUNCH_ATTRIBUTE_LAUNCH_COMPLETION_EVENT:
        case CU_LAUNCH_ATTRIBUTE_DEVICE_UPDATABLE_KERNEL_NODE:
            gsr_log_once("cuLaunchKernelEx: an event or graph launch attribute is not forwarded (CUDA_ERROR_NOT_SUPPORTED)",
                         &logged_launch_attribute);
            return CUDA_ERROR_NOT_SUPPORTED;
        default:
            if ((int)attr->id < 0 || (int)attr->id > CU_LAUNCH_ATTRIBUTE_PREFERRED_SHARED_MEMORY_CARVEOUT) {
                char what[128];
                snprintf(what, sizeof what, "cuLaunchKernelEx: launch attribute %d, unknown to the client, is not forwarded (CUDA_ERROR_NOT_SUPPORTED)",
                         (int)attr->id);
                gsr_log_once(what, &logged_launch_attribute);
                return CUDA_ERROR_NOT_SUPPORTED;
            }
        }
        uint32_t id[2] = {(uint32_t)attr->id, 0};
        memcpy(buf + at, id, sizeof id);
        memcpy(buf + at + sizeof id, &attr->value, sizeof attr->value);
        at += GSR_LAUNCH_ATTR_BYTES;
    }
    *len = at;
    return CUDA_SUCCESS;
}

_Static_assert(sizeof(CUlaunchAttributeValue) == GSR_LAUNCH_ATTR_BYTES - 8, "a launch attribute's value is 64 bytes");

static CUresult launch_ex(const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra, int ptsz) {
    uint8_t packed[GSR_PACKED_PARAM_BYTES], cfg[GSR_LAUNCH_HEAD_BYTES + GSR_MAX_LAUNCH_ATTRS * GSR_LAUNCH_ATTR_BYTES];
    const uint8_t *params = NULL;
    size_t size = 0, cfg_len = 0;
    CUresult rc = gsr_pack_params(f, kernelParams, extra, packed, &params, &size);
    if (rc == CUDA_SUCCESS) rc = encode_launch_config(config, cfg, &cfg_len);
    if (rc != CUDA_SUCCESS) return rc;
    if (ptsz && !config->hStream) {
        uint64_t stream = (uint64_t)(uintptr_t)CU_STREAM_PER_THREAD;
        memcpy(cfg + 32, &stream, sizeof stream);
    }
    gsr_args in = {.v = {((const gsr_function *)f)->id}, .nv = 1, .blob = {cfg, params}, .blob_len = {cfg_len, size}, .nblob = 2};
    return gsr_post(GSR_OP_LAUNCH_KERNEL_EX, &in);
}

GSR_EXPORT CUresult cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra) {
    return launch_ex(config, f, kernelParams, extra, 0);
}
GSR_EXPORT CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra) {
    return launch_ex(config, f, kernelParams, extra, 1);
}

static CUresult clusters(unsigned what, int *value, CUfunction func, const CUlaunchConfig *config) {
    uint8_t cfg[GSR_LAUNCH_HEAD_BYTES + GSR_MAX_LAUNCH_ATTRS * GSR_LAUNCH_ATTR_BYTES];
    size_t cfg_len = 0;
    if (!value) return CUDA_ERROR_INVALID_VALUE;
    const gsr_function *fn = function_record(func);
    if (!fn) return CUDA_ERROR_INVALID_HANDLE;
    if (!gsr_current_ctx()) return CUDA_ERROR_INVALID_CONTEXT;
    CUresult rc = encode_launch_config(config, cfg, &cfg_len);
    if (rc != CUDA_SUCCESS) return rc;
    gsr_args in = {.v = {what, fn->id}, .nv = 2, .blob = {cfg}, .blob_len = {cfg_len}, .nblob = 1}, out;
    rc = gsr_call(GSR_OP_OCCUPANCY_CLUSTERS, &in, &out);
    if (rc == CUDA_SUCCESS) *value = (int)out.v[0];
    return rc;
}

GSR_EXPORT CUresult cuOccupancyMaxActiveClusters(int *numClusters, CUfunction func, const CUlaunchConfig *config) {
    return clusters(GSR_CLUSTERS_MAX_ACTIVE, numClusters, func, config);
}

GSR_EXPORT CUresult cuOccupancyMaxPotentialClusterSize(int *clusterSize, CUfunction func, const CUlaunchConfig *config) {
    return clusters(GSR_CLUSTERS_MAX_SIZE, clusterSize, func, config);
}

GSR_EXPORT CUresult cuOccupancyAvailableDynamicSMemPerBlock(size_t *dynamicSmemSize, CUfunction func, int numBlocks, int blockSize) {
    if (!dynamicSmemSize || numBlocks <= 0 || blockSize <= 0) return CUDA_ERROR_INVALID_VALUE;
    const gsr_function *fn = function_record(func);
    if (!fn) return CUDA_ERROR_INVALID_HANDLE;
    if (!gsr_current_ctx()) return CUDA_ERROR_INVALID_CONTEXT;
    gsr_args in = {.v = {fn->id, (uint64_t)(int64_t)numBlocks, (uint64_t)(int64_t)blockSize}, .nv = 3}, out;
    CUresult rc = gsr_call(GSR_OP_OCCUPANCY_DYNAMIC_SMEM, &in, &out);
    if (rc == CUDA_SUCCESS) *dynamicSmemSize = (size_t)out.v[0];
    return rc;
}

/* ---- TMA descriptors: encoded by the worker's driver (the format is the driver's own); the
 * global address is the worker's device address, as every address the client hands out. */
GSR_EXPORT CUresult cuTensorMapEncodeTiled(CUtensorMap *tensorMap, int tensorDataType, cuuint32_t tensorRank, void *globalAddress,
                                           const cuuint64_t *globalDim, const cuuint64_t *globalStrides, const cuuint32_t *boxDim,
                                           const cuuint32_t *elementStrides, int interleave, int swizzle, int l2Promotion, int oobFill) {
    if (!tensorMap || tensorRank == 0 || tensorRank > 5 || !globalDim || (tensorRank > 1 && !globalStrides) || !boxDim || !elementStrides)
        return CUDA_ERROR_INVALID_VALUE;
    uint8_t b[GSR_TENSOR_MAP_ARGS_BYTES] = {0};
    uint32_t head[6] = {(uint32_t)tensorDataType, tensorRank, (uint32_t)interleave, (uint32_t)swizzle, (uint32_t)l2Promotion, (uint32_t)oobFill};
    uint64_t address = (uint64_t)(uintptr_t)globalAddress;
    memcpy(b, head, sizeof head);
    memcpy(b + 24, &address, 8);
    memcpy(b + 32, globalDim, tensorRank * sizeof *globalDim);
    if (tensorRank > 1) memcpy(b + 72, globalStrides, (tensorRank - 1) * sizeof *globalStrides);
    memcpy(b + 104, boxDim, tensorRank * sizeof *boxDim);
    memcpy(b + 124, elementStrides, tensorRank * sizeof *elementStrides);
    gsr_args in = {.blob = {b}, .blob_len = {sizeof b}, .nblob = 1};
    return gsr_call_blob(GSR_OP_TENSOR_MAP_ENCODE_TILED, &in, tensorMap, sizeof *tensorMap);
}

GSR_EXPORT CUresult cuTensorMapReplaceAddress(CUtensorMap *tensorMap, void *globalAddress) {
    if (!tensorMap) return CUDA_ERROR_INVALID_VALUE;
    gsr_args in = {.v = {(uint64_t)(uintptr_t)globalAddress}, .nv = 1, .blob = {(const uint8_t *)tensorMap}, .blob_len = {sizeof *tensorMap},
                   .nblob = 1};
    return gsr_call_blob(GSR_OP_TENSOR_MAP_REPLACE_ADDRESS, &in, tensorMap, sizeof *tensorMap);
}
_Static_assert(sizeof(CUtensorMap) == GSR_TENSOR_MAP_BYTES, "a CUtensorMap is 128 bytes");
_Static_assert(GSR_TENSOR_MAP_ARGS_BYTES == 144, "the encode blob's layout");
