/*
 * client_unified.c: copies whose direction the driver works out itself from the addresses
 * (cuMemcpy, cuMemcpyAsync: cudaMemcpy with cudaMemcpyDefault, as CuPy copies), which needs
 * unified addressing: every device address told apart from every host address. A real driver
 * reserves each allocation's device range in the process's own address space. The client does
 * the same for the allocations it forwards (cuMemAlloc_v2): the worker's device range is
 * reserved here (PROT_NONE, nothing committed), so no host memory of this process can lie in
 * it later, and an address inside a recorded range is a device address. Where the range was
 * already host memory here (the reservation fails), pointers into it are ambiguous: such a copy
 * is refused (CUDA_ERROR_NOT_SUPPORTED, logged), never guessed. Device pointers come from
 * cuMemAlloc_v2 (the client serves no other allocator) and from modules' and libraries'
 * globals (cuModuleGetGlobal, cuLibraryGetGlobal: cudaMemcpyToSymbol's and
 * cudaGetSymbolAddress's addresses), so every one of them is recorded. A global is not
 * reserved (it need not start on a page, and several share one): it is a device address while
 * no host memory of this process lies on its pages, checked at each copy (mincore), and
 * ambiguous (refused) otherwise; its record goes when its module or library is unloaded.
 * The worker still bounds-checks the device side of every copy against the session's own
 * allocations, as for the explicit forms.
 */
#define _GNU_SOURCE
#include "client.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000 /* Linux 4.17; an older kernel takes it as a hint (checked below) */
#endif

CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n);
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t n, CUstream s);
CUresult cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t n, CUstream s);
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s);

typedef struct device_range {
    uint64_t base, bytes;
    int reserved; /* 0: host memory was there already, pointers into it are ambiguous */
    uint64_t module; /* a global's module or library (never reserved); 0: an allocation */
} device_range;

/* Process-wide, as the address space it describes is. Sorted by base. */
static struct {
    pthread_mutex_t lock;
    device_range *r;
    size_t n, cap;
} ranges = {.lock = PTHREAD_MUTEX_INITIALIZER};

static size_t first_above(uint64_t p) { /* index of the first range with base > p; lock held */
    size_t lo = 0, hi = ranges.n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ranges.r[mid].base <= p) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

/* A global's record outlives its memory where its context went without an unload (cuCtxDestroy,
 * the primary context's last release): whatever the worker hands out at those addresses later,
 * an allocation or another global, replaces it. Lock held. */
static void drop_stale_globals(uint64_t base, uint64_t bytes) {
    size_t kept = 0;
    for (size_t i = 0; i < ranges.n; i++) {
        const device_range *r = &ranges.r[i];
        int overlaps = r->base < base + bytes && base < r->base + r->bytes;
        if (!(r->module && overlaps)) ranges.r[kept++] = *r;
    }
    ranges.n = kept;
}

void gsr_device_range_add(uint64_t base, uint64_t bytes) {
    int reserved = 0;
    void *want = (void *)(uintptr_t)base;
    void *got = mmap(want, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    if (got == want) reserved = 1;
    else if (got != MAP_FAILED) munmap(got, bytes); /* taken as a hint elsewhere: not ours to keep */
    pthread_mutex_lock(&ranges.lock);
    if (ranges.n == ranges.cap) {
        size_t cap = ranges.cap ? 2 * ranges.cap : 64;
        device_range *grown = realloc(ranges.r, cap * sizeof *grown);
        if (!grown) { /* unrecorded: a default-direction copy from it is then refused below */
            pthread_mutex_unlock(&ranges.lock);
            if (reserved) munmap(want, bytes);
            return;
        }
        ranges.r = grown;
        ranges.cap = cap;
    }
    drop_stale_globals(base, bytes);
    size_t i = first_above(base);
    memmove(&ranges.r[i + 1], &ranges.r[i], (ranges.n - i) * sizeof ranges.r[0]);
    ranges.r[i] = (device_range){base, bytes, reserved, 0};
    ranges.n++;
    pthread_mutex_unlock(&ranges.lock);
}

void gsr_device_global_add(uint64_t base, uint64_t bytes, uint64_t module) {
    if (bytes == 0 || base + bytes < base) return;
    pthread_mutex_lock(&ranges.lock);
    /* Asked again (the runtime asks per use): the same record. Another global over the same
     * addresses is stale (drop_stale_globals); an allocation's range there would be the
     * worker's contradiction: left unrecorded, so a default-direction copy is never guessed. */
    drop_stale_globals(base, bytes);
    size_t i = first_above(base);
    int overlaps = (i > 0 && base - ranges.r[i - 1].base < ranges.r[i - 1].bytes) || (i < ranges.n && ranges.r[i].base < base + bytes);
    if (!overlaps && ranges.n == ranges.cap) {
        size_t cap = ranges.cap ? 2 * ranges.cap : 64;
        device_range *grown = realloc(ranges.r, cap * sizeof *grown);
        if (grown) ranges.r = grown, ranges.cap = cap;
    }
    if (!overlaps && ranges.n < ranges.cap) {
        memmove(&ranges.r[i + 1], &ranges.r[i], (ranges.n - i) * sizeof ranges.r[0]);
        ranges.r[i] = (device_range){base, bytes, 0, module};
        ranges.n++;
    }
    pthread_mutex_unlock(&ranges.lock);
}

void gsr_device_globals_forget(uint64_t module) {
    pthread_mutex_lock(&ranges.lock);
    size_t kept = 0;
    for (size_t i = 0; i < ranges.n; i++)
        if (ranges.r[i].module != module || module == 0) ranges.r[kept++] = ranges.r[i];
    ranges.n = kept;
    pthread_mutex_unlock(&ranges.lock);
}

/* Whether any page of [from, to) is mapped in this process (host memory there). */
static int host_mapped(uint64_t from, uint64_t to) {
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    unsigned char vec;
    for (uint64_t p = from & ~(page - 1); p < to; p += page)
        if (mincore((void *)(uintptr_t)p, page, &vec) == 0 || errno != ENOMEM) return 1;
    return 0;
}

void gsr_device_range_remove(uint64_t base) {
    device_range gone = {0};
    pthread_mutex_lock(&ranges.lock);
    size_t i = first_above(base);
    if (i > 0 && ranges.r[i - 1].base == base) {
        gone = ranges.r[i - 1];
        memmove(&ranges.r[i - 1], &ranges.r[i], (ranges.n - i) * sizeof ranges.r[0]);
        ranges.n--;
    }
    pthread_mutex_unlock(&ranges.lock);
    if (gone.reserved) munmap((void *)(uintptr_t)gone.base, gone.bytes);
}

/* 1: a device address, 0: a host address, -1: ambiguous (host memory here overlaps a device range).
 * Of the n bytes at p (a global's pages are checked only where the copy touches them). */
static int where(uint64_t p, uint64_t n) {
    int kind = 0;
    device_range global = {0};
    pthread_mutex_lock(&ranges.lock);
    size_t i = first_above(p);
    if (i > 0 && p - ranges.r[i - 1].base < ranges.r[i - 1].bytes) {
        kind = ranges.r[i - 1].reserved ? 1 : -1;
        if (ranges.r[i - 1].module) global = ranges.r[i - 1];
    }
    pthread_mutex_unlock(&ranges.lock);
    if (global.module) {
        uint64_t end = global.base + global.bytes, last = p + (n ? n : 1);
        if (last < p || last > end) last = end; /* the copy past the global: the worker refuses it */
        kind = host_mapped(p, last) ? -1 : 1;
    }
    return kind;
}

static int logged_ambiguous;

static CUresult copy_default(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream stream, int async) {
    int d = where(dst, n), s = where(src, n);
    if (d < 0 || s < 0) {
        gsr_log_once("cuMemcpy: an address is both this process's host memory and a session device range "
                     "(CUDA_ERROR_NOT_SUPPORTED)", &logged_ambiguous);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (d && s) return async ? cuMemcpyDtoDAsync_v2(dst, src, n, stream) : cuMemcpyDtoD_v2(dst, src, n);
    if (d) return async ? cuMemcpyHtoDAsync_v2(dst, (const void *)(uintptr_t)src, n, stream)
                        : cuMemcpyHtoD_v2(dst, (const void *)(uintptr_t)src, n);
    if (s) return async ? cuMemcpyDtoHAsync_v2((void *)(uintptr_t)dst, src, n, stream)
                        : cuMemcpyDtoH_v2((void *)(uintptr_t)dst, src, n);
    /* Host to host: in stream order, as the driver does it. */
    if (n && (!dst || !src)) return CUDA_ERROR_INVALID_VALUE;
    CUresult rc = cuStreamSynchronize(stream);
    if (rc == CUDA_SUCCESS && n) memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, n);
    return rc;
}

GSR_EXPORT CUresult cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount) { return copy_default(dst, src, ByteCount, NULL, 0); }
GSR_EXPORT CUresult cuMemcpy_ptds(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount) { return copy_default(dst, src, ByteCount, NULL, 0); }
GSR_EXPORT CUresult cuMemcpyAsync(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount, CUstream hStream) {
    return copy_default(dst, src, ByteCount, hStream, 1);
}
GSR_EXPORT CUresult cuMemcpyAsync_ptsz(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount, CUstream hStream) {
    return copy_default(dst, src, ByteCount, hStream ? hStream : CU_STREAM_PER_THREAD, 1);
}
