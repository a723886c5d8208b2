/*
 * client_calls.c: calls frameworks make that the client answers on its own side, because the
 * GPU is on another machine (docs/remote.md "Answered in the client"): host functions and
 * stream callbacks (run here once the stream reached them: the stream is synchronized, then
 * the function called, on the calling thread), registered host memory (a registry here:
 * copies from it cross the wire as host memory; it can have no device mapping on the worker's
 * GPU), peer access (none across one session's devices), the profiler (no-ops), CUDA IPC (not
 * supported: a handle could only name the worker's memory to another process on the worker),
 * 2D byte memsets (one memset a row, or one for a contiguous range).
 */
#include "client.h"
#include "client_served.h"

#include <pthread.h>
#include <stdlib.h>

/* ---- host functions and stream callbacks ------------------------------------------- */
static CUstream per_thread(CUstream s) { return s ? s : CU_STREAM_PER_THREAD; }

/* Everything before it in the stream has run when the synchronize returns: the host function
 * runs then, before this call returns (work queued after it cannot overtake it, since the
 * caller has queued none yet). */
GSR_EXPORT CUresult cuLaunchHostFunc(CUstream hStream, gsr_host_fn fn, void *userData) {
    if (!fn) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = cuStreamSynchronize(hStream);
    if (rc == CUDA_SUCCESS) fn(userData);
    return rc;
}
GSR_EXPORT CUresult cuLaunchHostFunc_ptsz(CUstream hStream, gsr_host_fn fn, void *userData) {
    return cuLaunchHostFunc(per_thread(hStream), fn, userData);
}

/* The callback gets the stream's status, as the driver passes it (an error of earlier work too). */
GSR_EXPORT CUresult cuStreamAddCallback(CUstream hStream, gsr_stream_callback callback, void *userData, unsigned int flags) {
    if (!callback || flags != 0) return CUDA_ERROR_INVALID_VALUE;
    CUresult status = cuStreamSynchronize(hStream);
    if (status == CUDA_ERROR_INVALID_HANDLE || status == CUDA_ERROR_INVALID_CONTEXT || status == CUDA_ERROR_NOT_INITIALIZED ||
        status == CUDA_ERROR_DEVICE_UNAVAILABLE)
        return status; /* not a stream of this session, or no session: nothing to call back */
    callback(hStream, status, userData);
    return CUDA_SUCCESS;
}
GSR_EXPORT CUresult cuStreamAddCallback_ptsz(CUstream hStream, gsr_stream_callback callback, void *userData, unsigned int flags) {
    return cuStreamAddCallback(per_thread(hStream), callback, userData, flags);
}

/* ---- registered host memory ---------------------------------------------------------- */
static struct {
    pthread_mutex_t lock;
    struct range {
        uintptr_t base;
        size_t size;
        int allocated; /* cuMemHostAlloc's: cuMemFreeHost's to remove, not cuMemHostUnregister's */
    } *r;
    size_t n, cap;
} registered = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* The registered range holding p, or n; lock held. */
static size_t registered_at(uintptr_t p) {
    for (size_t i = 0; i < registered.n; i++)
        if (p - registered.r[i].base < registered.r[i].size) return i;
    return registered.n;
}

CUresult gsr_host_range_add(void *p, size_t bytesize, int allocated) {
    uintptr_t base = (uintptr_t)p;
    if (base + bytesize < base) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = CUDA_SUCCESS;
    pthread_mutex_lock(&registered.lock);
    for (size_t i = 0; i < registered.n && rc == CUDA_SUCCESS; i++)
        if (base < registered.r[i].base + registered.r[i].size && registered.r[i].base < base + bytesize)
            rc = CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED;
    if (rc == CUDA_SUCCESS && registered.n == registered.cap) {
        size_t cap = registered.cap ? 2 * registered.cap : 16;
        struct range *grown = realloc(registered.r, cap * sizeof *grown);
        if (!grown)
            rc = CUDA_ERROR_OUT_OF_MEMORY;
        else
            registered.r = grown, registered.cap = cap;
    }
    if (rc == CUDA_SUCCESS) registered.r[registered.n++] = (struct range){base, bytesize, allocated};
    pthread_mutex_unlock(&registered.lock);
    return rc;
}

void gsr_host_range_remove(void *p) {
    pthread_mutex_lock(&registered.lock);
    size_t i = registered_at((uintptr_t)p);
    if (i < registered.n && registered.r[i].base == (uintptr_t)p) registered.r[i] = registered.r[--registered.n];
    pthread_mutex_unlock(&registered.lock);
}

int gsr_host_range_holds(uint64_t p, uint64_t *base, uint64_t *size) {
    pthread_mutex_lock(&registered.lock);
    size_t i = registered_at((uintptr_t)p);
    int held = i < registered.n;
    if (held) *base = registered.r[i].base, *size = registered.r[i].size;
    pthread_mutex_unlock(&registered.lock);
    return held;
}

GSR_EXPORT CUresult cuMemHostRegister_v2(void *p, size_t bytesize, unsigned int Flags) {
    if (!p || bytesize == 0 || Flags > 0xf) return CUDA_ERROR_INVALID_VALUE;
    return gsr_host_range_add(p, bytesize, 0);
}
GSR_EXPORT CUresult cuMemHostRegister(void *p, size_t bytesize, unsigned int Flags) { return cuMemHostRegister_v2(p, bytesize, Flags); }

GSR_EXPORT CUresult cuMemHostUnregister(void *p) {
    CUresult rc = CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED;
    pthread_mutex_lock(&registered.lock);
    size_t i = registered_at((uintptr_t)p);
    if (i < registered.n && registered.r[i].base == (uintptr_t)p && !registered.r[i].allocated) {
        registered.r[i] = registered.r[--registered.n];
        rc = CUDA_SUCCESS;
    }
    pthread_mutex_unlock(&registered.lock);
    return rc;
}

static int logged_host_mapping;

/* Memory on this machine has no address on the worker's GPU. */
GSR_EXPORT CUresult cuMemHostGetDevicePointer_v2(CUdeviceptr *pdptr, void *p, unsigned int Flags) {
    if (!pdptr || Flags != 0) return CUDA_ERROR_INVALID_VALUE;
    pthread_mutex_lock(&registered.lock);
    int known = registered_at((uintptr_t)p) < registered.n;
    pthread_mutex_unlock(&registered.lock);
    if (!known) return CUDA_ERROR_INVALID_VALUE;
    gsr_log_once("cuMemHostGetDevicePointer: client memory has no mapping on the worker's GPU (CUDA_ERROR_NOT_SUPPORTED)", &logged_host_mapping);
    return CUDA_ERROR_NOT_SUPPORTED;
}

/* ---- peers and the profiler ------------------------------------------------------------ */
/* A session's devices are reached through one worker process that enables no peer access. */
GSR_EXPORT CUresult cuDeviceCanAccessPeer(int *canAccessPeer, CUdevice dev, CUdevice peerDev) {
    if (!canAccessPeer) return CUDA_ERROR_INVALID_VALUE;
    int count = 0;
    CUresult rc = cuDeviceGetCount(&count);
    if (rc != CUDA_SUCCESS) return rc;
    if (dev < 0 || dev >= count || peerDev < 0 || peerDev >= count) return CUDA_ERROR_INVALID_DEVICE;
    *canAccessPeer = 0;
    return CUDA_SUCCESS;
}

/* The profiler would have to run on the worker's machine: nothing to start here. */
GSR_EXPORT CUresult cuProfilerStart(void) { return CUDA_SUCCESS; }
GSR_EXPORT CUresult cuProfilerStop(void) { return CUDA_SUCCESS; }

/* ---- CUDA IPC ------------------------------------------------------------------------ */
static int logged_ipc;

static CUresult ipc_refused(void) {
    gsr_log_once("cuIpc*: an IPC handle would name the worker's memory to a process on the worker's machine, which a "
                 "remote session has none of (CUDA_ERROR_NOT_SUPPORTED)",
                 &logged_ipc);
    return CUDA_ERROR_NOT_SUPPORTED;
}

GSR_EXPORT CUresult cuIpcGetMemHandle(gsr_ipc_handle *pHandle, CUdeviceptr dptr) {
    (void)pHandle, (void)dptr;
    return ipc_refused();
}
GSR_EXPORT CUresult cuIpcOpenMemHandle_v2(CUdeviceptr *pdptr, gsr_ipc_handle handle, unsigned int Flags) {
    (void)pdptr, (void)handle, (void)Flags;
    return ipc_refused();
}
GSR_EXPORT CUresult cuIpcOpenMemHandle(CUdeviceptr *pdptr, gsr_ipc_handle handle, unsigned int Flags) {
    return cuIpcOpenMemHandle_v2(pdptr, handle, Flags);
}
GSR_EXPORT CUresult cuIpcCloseMemHandle(CUdeviceptr dptr) {
    (void)dptr;
    return ipc_refused();
}
GSR_EXPORT CUresult cuIpcGetEventHandle(gsr_ipc_handle *pHandle, CUevent event) {
    (void)pHandle, (void)event;
    return ipc_refused();
}
GSR_EXPORT CUresult cuIpcOpenEventHandle(CUevent *phEvent, gsr_ipc_handle handle) {
    (void)phEvent, (void)handle;
    return ipc_refused();
}

/* ---- 2D byte memsets ------------------------------------------------------------------ */
/* height rows of width bytes, pitch apart: each row a memset in the stream (the worker checks
 * each against the session's allocations), or one when the rows are contiguous. Sent without
 * waiting; the synchronous form then synchronizes the stream, which reports a row's error. */
static CUresult memset_2d(CUdeviceptr dst, size_t pitch, unsigned char v, size_t width, size_t height, CUstream stream, int async) {
    if (height > 1 && width > pitch) return CUDA_ERROR_INVALID_VALUE;
    if (width == 0 || height == 0) return CUDA_SUCCESS;
    if (height > 1 && pitch > (UINT64_MAX - dst) / (height - 1)) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = CUDA_SUCCESS;
    if (width == pitch) {
        if (width > SIZE_MAX / height) return CUDA_ERROR_INVALID_VALUE;
        rc = cuMemsetD8Async(dst, v, width * height, stream);
    } else {
        for (size_t row = 0; row < height && rc == CUDA_SUCCESS; row++) rc = cuMemsetD8Async(dst + row * pitch, v, width, stream);
    }
    if (rc == CUDA_SUCCESS && !async) rc = cuStreamSynchronize(stream);
    return rc;
}

GSR_EXPORT CUresult cuMemsetD2D8_v2(CUdeviceptr dst, size_t pitch, unsigned char uc, size_t width, size_t height) {
    return memset_2d(dst, pitch, uc, width, height, NULL, 0);
}
GSR_EXPORT CUresult cuMemsetD2D8_v2_ptds(CUdeviceptr dst, size_t pitch, unsigned char uc, size_t width, size_t height) {
    return memset_2d(dst, pitch, uc, width, height, CU_STREAM_PER_THREAD, 0);
}
GSR_EXPORT CUresult cuMemsetD2D8Async(CUdeviceptr dst, size_t pitch, unsigned char uc, size_t width, size_t height, CUstream hStream) {
    return memset_2d(dst, pitch, uc, width, height, hStream, 1);
}
GSR_EXPORT CUresult cuMemsetD2D8Async_ptsz(CUdeviceptr dst, size_t pitch, unsigned char uc, size_t width, size_t height, CUstream hStream) {
    return memset_2d(dst, pitch, uc, width, height, per_thread(hStream), 1);
}
