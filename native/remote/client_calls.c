/*
 * client_calls.c: calls frameworks make that the client answers on its own side, because the
 * GPU is on another machine (docs/remote.md "Answered in the client"): host functions and
 * stream callbacks (run here once the stream reached them: the stream is synchronized, then
 * the function called, on the calling thread), registered host memory (a registry here:
 * copies from it cross the wire as host memory; it can have no device mapping on the worker's
 * GPU), peer access (none across one session's devices), the profiler (no-ops), CUDA IPC (not
 * supported: a handle could only name the worker's memory to another process on the worker),
 * 2D byte memsets and copies (one memset or copy a row, or one for a contiguous range).
 */
#include "client.h"
#include "client_served.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

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
        if (grown) {
            registered.r = grown;
            registered.cap = cap;
        } else {
            rc = CUDA_ERROR_OUT_OF_MEMORY;
        }
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
    if (held) {
        *base = registered.r[i].base;
        *size = registered.r[i].size;
    }
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

/* ---- 2D copies -------------------------------------------------------------------------- */
CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n);
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t n, CUstream s);
CUresult cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t n, CUstream s);
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s);
CUresult cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s);

#define MEM_HOST 1u
#define MEM_DEVICE 2u
#define MEM_UNIFIED 4u

/* Bytes through the copy path their memory types name (unified: the client's address ranges
 * say, client_unified.c), in the stream's order. Host to host waits for the stream first. */
static CUresult copy_span(unsigned dst_type, uint64_t dst, unsigned src_type, uint64_t src, size_t n, CUstream stream) {
    if (dst_type == MEM_UNIFIED || src_type == MEM_UNIFIED) return cuMemcpyAsync(dst, src, n, stream);
    if (src_type == MEM_HOST && dst_type == MEM_DEVICE) return cuMemcpyHtoDAsync_v2(dst, (const void *)(uintptr_t)src, n, stream);
    if (src_type == MEM_DEVICE && dst_type == MEM_HOST) return cuMemcpyDtoHAsync_v2((void *)(uintptr_t)dst, src, n, stream);
    if (src_type == MEM_DEVICE && dst_type == MEM_DEVICE) return cuMemcpyDtoDAsync_v2(dst, src, n, stream);
    CUresult rc = cuStreamSynchronize(stream);
    if (rc == CUDA_SUCCESS) memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, n);
    return rc;
}

static int known_type(unsigned t) { return t == MEM_HOST || t == MEM_DEVICE || t == MEM_UNIFIED; }

static int logged_array_copy;

/* The last byte of a side (base + x + (y + height - 1) * pitch + width) is addressable
 * without wrapping. */
static int span_ok(uint64_t base, uint64_t x, uint64_t y, uint64_t pitch, uint64_t width, uint64_t height) {
    uint64_t last_row = y + height - 1, end = base;
    if (last_row < y || (pitch && last_row > UINT64_MAX / pitch)) return 0;
    uint64_t parts[] = {x, last_row * pitch, width};
    for (size_t i = 0; i < 3; i++) {
        if (end > UINT64_MAX - parts[i]) return 0;
        end += parts[i];
    }
    return 1;
}

/* Rows of WidthInBytes from (srcXInBytes, srcY) at srcPitch to (dstXInBytes, dstY) at
 * dstPitch; one copy when both sides' rows are contiguous. The synchronous forms copy in the
 * legacy default stream (NULL) and then synchronize it, which reports a row's error. */
static CUresult memcpy_2d(const gsr_memcpy2d *p, CUstream stream, int async) {
    if (!p) return CUDA_ERROR_INVALID_VALUE;
    if (p->srcMemoryType == 3u || p->dstMemoryType == 3u) { /* CUarray: arrays are not forwarded */
        gsr_log_once("cuMemcpy2D with a CUarray side is not forwarded (CUDA_ERROR_NOT_SUPPORTED)", &logged_array_copy);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (!known_type(p->srcMemoryType) || !known_type(p->dstMemoryType)) return CUDA_ERROR_INVALID_VALUE;
    size_t width = p->WidthInBytes, height = p->Height;
    if (width == 0 || height == 0) return CUDA_SUCCESS;
    if (width > p->srcPitch || width > p->dstPitch) return CUDA_ERROR_INVALID_VALUE;
    uint64_t src = (p->srcMemoryType == MEM_HOST ? (uint64_t)(uintptr_t)p->srcHost : p->srcDevice);
    uint64_t dst = (p->dstMemoryType == MEM_HOST ? (uint64_t)(uintptr_t)p->dstHost : p->dstDevice);
    if (!span_ok(src, p->srcXInBytes, p->srcY, p->srcPitch, width, height) || !span_ok(dst, p->dstXInBytes, p->dstY, p->dstPitch, width, height))
        return CUDA_ERROR_INVALID_VALUE;
    src += p->srcXInBytes + p->srcY * p->srcPitch;
    dst += p->dstXInBytes + p->dstY * p->dstPitch;
    CUresult rc = CUDA_SUCCESS;
    if (height == 1 || (p->srcPitch == width && p->dstPitch == width))
        rc = copy_span(p->dstMemoryType, dst, p->srcMemoryType, src, width * height, stream);
    else
        for (size_t row = 0; row < height && rc == CUDA_SUCCESS; row++)
            rc = copy_span(p->dstMemoryType, dst + row * p->dstPitch, p->srcMemoryType, src + row * p->srcPitch, width, stream);
    if (rc == CUDA_SUCCESS && !async) rc = cuStreamSynchronize(stream);
    return rc;
}

GSR_EXPORT CUresult cuMemcpy2D_v2(const gsr_memcpy2d *pCopy) { return memcpy_2d(pCopy, NULL, 0); }
GSR_EXPORT CUresult cuMemcpy2D_v2_ptds(const gsr_memcpy2d *pCopy) { return memcpy_2d(pCopy, CU_STREAM_PER_THREAD, 0); }
GSR_EXPORT CUresult cuMemcpy2DUnaligned_v2(const gsr_memcpy2d *pCopy) { return memcpy_2d(pCopy, NULL, 0); }
GSR_EXPORT CUresult cuMemcpy2DUnaligned_v2_ptds(const gsr_memcpy2d *pCopy) { return memcpy_2d(pCopy, CU_STREAM_PER_THREAD, 0); }
GSR_EXPORT CUresult cuMemcpy2DAsync_v2(const gsr_memcpy2d *pCopy, CUstream hStream) { return memcpy_2d(pCopy, hStream, 1); }
GSR_EXPORT CUresult cuMemcpy2DAsync_v2_ptsz(const gsr_memcpy2d *pCopy, CUstream hStream) { return memcpy_2d(pCopy, per_thread(hStream), 1); }
