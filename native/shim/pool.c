/*
 * pool.c: stream-ordered allocations. What a pool takes from the device is its reserved
 * memory (CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT), which grows in chunks on allocation and
 * shrinks at synchronization points and trims; individual cuMemAllocAsync sizes say
 * little. So each pool's reserved memory is counted (kind POOL): around every async
 * allocation we compare it with what we counted, and count the growth; growth past the
 * limit frees the allocation, trims the pool back and fails with OUT_OF_MEMORY. Shrinks
 * are noticed at the next async call, trim, or before any refusal (state.c), so a pool
 * is at worst over-counted for a while, never under-counted.
 *
 * One mutex serializes the pool paths: stream-ordered allocation is not the hot path of
 * the frameworks we serve (PyTorch's caching allocator sits on cuMemAlloc/cuMemCreate).
 */
#include <pthread.h>
#include <stdlib.h>

#include "hooks.h"
#include "log.h"
#include "scrub.h"
#include "state.h"
#include "swap.h"
#include "track.h"

typedef struct pool_acct {
    CUmemoryPool pool;
    int dev;
    uint64_t counted;
} pool_acct;

static struct {
    pthread_mutex_t lock;
    pool_acct *pools;
    size_t count, cap;
} P = {.lock = PTHREAD_MUTEX_INITIALIZER};

static pool_acct *find(CUmemoryPool pool, int dev, bool add)
{
    for (size_t i = 0; i < P.count; i++)
        if (P.pools[i].pool == pool)
            return &P.pools[i];
    if (!add)
        return NULL;
    if (P.count == P.cap) {
        size_t cap = P.cap ? P.cap * 2 : 8;
        pool_acct *p = realloc(P.pools, cap * sizeof *p);
        if (p == NULL)
            return NULL;
        P.pools = p;
        P.cap = cap;
    }
    P.pools[P.count] = (pool_acct){.pool = pool, .dev = dev};
    return &P.pools[P.count++];
}

static bool reserved_now(CUmemoryPool pool, uint64_t *out)
{
    cuuint64_t v = 0;
    const gs_real_fns *R = gs_real();
    if (R->cuMemPoolGetAttribute == NULL || R->cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &v) != CUDA_SUCCESS)
        return false;
    *out = v;
    return true;
}

/* Gives back what a pool no longer holds; under P.lock. */
static void settle_shrink(pool_acct *p)
{
    uint64_t now;
    if (reserved_now(p->pool, &now) && now < p->counted) {
        gs_release(p->dev, GS_REGION_KIND_POOL, p->counted - now);
        p->counted = now;
    }
}

/* Pools of dev: observe their reserved memory and settle the accounting with it. */
static void settle_device(int dev)
{
    pthread_mutex_lock(&P.lock);
    for (size_t i = 0; i < P.count; i++)
        if (P.pools[i].dev == dev)
            settle_shrink(&P.pools[i]);
    pthread_mutex_unlock(&P.lock);
}

/* A reclaimer (state.c): at either depth, pools that shrank at a synchronization point give
 * the difference back (the pools themselves are trimmed only by the program). */
static void reclaim(int dev, gs_reclaim_depth depth)
{
    (void)depth;
    settle_device(dev);
}

__attribute__((constructor)) static void register_reclaimer(void)
{
    gs_reclaimer_register(reclaim);
}

/* The driver's allocation a policy makes: from the current pool, or from an explicit one. */
typedef struct async_alloc {
    gs_fn_cuMemAllocAsync current;          /* cuMemAllocAsync(_ptsz), or NULL */
    gs_fn_cuMemAllocFromPoolAsync from_pool; /* cuMemAllocFromPoolAsync(_ptsz), or NULL */
    bool ptsz;
} async_alloc;

static CUresult call_alloc(const async_alloc *a, CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool, CUstream s)
{
    return a->from_pool != NULL ? a->from_pool(dptr, bytesize, pool, s) : a->current(dptr, bytesize, s);
}

/* The pool of an allocation is the explicit one, or the current device's current pool. The
 * device is the current context's (a pool on another device is counted there too: a
 * deliberate simplification until cuMemPoolCreate is hooked). */
static CUresult pool_alloc(const async_alloc *a, CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool, CUstream s)
{
    const gs_real_fns *R = gs_real();
    int dev = gs_current_device();
    if (a->from_pool == NULL &&
        (dev < 0 || R->cuDeviceGetMemPool == NULL || R->cuDeviceGetMemPool(&pool, dev) != CUDA_SUCCESS))
        pool = NULL;
    if (dev < 0 || pool == NULL || !gs_dev_ok(dev))
        return call_alloc(a, dptr, bytesize, pool, s);
    pthread_mutex_lock(&P.lock);
    CUresult r = call_alloc(a, dptr, bytesize, pool, s);
    pool_acct *p = find(pool, dev, true);
    uint64_t now;
    if (r == CUDA_SUCCESS && p != NULL && reserved_now(pool, &now)) {
        if (now > p->counted) {
            gs_region_reservation res;
            int st = gs_reserve(dev, GS_REGION_KIND_POOL, now - p->counted, &res);
            if (st == 1) {
                /* Undo: free, let the free complete, and give the growth back. */
                (void)(a->ptsz ? R->cuMemFreeAsync_ptsz(*dptr, s) : R->cuMemFreeAsync(*dptr, s));
                if (R->cuStreamSynchronize != NULL)
                    (void)R->cuStreamSynchronize(s);
                (void)R->cuMemPoolTrimTo(pool, (size_t)p->counted);
                settle_shrink(p); /* the synchronization may have shrunk it further */
                if (reserved_now(pool, &now) && now > p->counted)
                    gs_log(GS_LOG_WARN, "pool could not be trimmed back to %llu bytes (holds %llu)",
                           (unsigned long long)p->counted, (unsigned long long)now);
                *dptr = 0;
                r = CUDA_ERROR_OUT_OF_MEMORY;
            } else {
                if (st == 0)
                    gs_commit(&res);
                p->counted = now;
            }
        } else if (now < p->counted) {
            gs_release(dev, GS_REGION_KIND_POOL, p->counted - now);
            p->counted = now;
        }
    }
    pthread_mutex_unlock(&P.lock);
    return r;
}

/* An allocation, and its size remembered for scrubbing. */
static CUresult alloc_noted(const async_alloc *a, CUdeviceptr *dptr, size_t bytesize, CUmemoryPool pool, CUstream s)
{
    CUresult r = pool_alloc(a, dptr, bytesize, pool, s);
    if (r == CUDA_SUCCESS && dptr != NULL) {
        gs_scrub_note_async(*dptr, bytesize);
        gs_swap_ctl_unswappable(); /* pool memory is never swapped (SWAP.md) */
    }
    return r;
}

CUresult gs_pool_alloc_async(gs_fn_cuMemAllocAsync real, bool ptsz, CUdeviceptr *dptr, size_t bytesize, CUstream hStream)
{
    return alloc_noted(&(async_alloc){.current = real, .ptsz = ptsz}, dptr, bytesize, NULL, hStream);
}

CUresult gs_pool_alloc_from_pool_async(gs_fn_cuMemAllocFromPoolAsync real, bool ptsz, CUdeviceptr *dptr, size_t bytesize,
                                       CUmemoryPool pool, CUstream hStream)
{
    return alloc_noted(&(async_alloc){.from_pool = real, .ptsz = ptsz}, dptr, bytesize, pool, hStream);
}

/* A free may let the pool shrink (at the next synchronization); look now anyway. */
CUresult gs_pool_free_async(gs_fn_cuMemFreeAsync real, bool ptsz, CUdeviceptr dptr, CUstream hStream)
{
    /* a cuMemAlloc pointer may be freed on a stream too: give its bytes back (at once, not
     * when the stream gets there: briefly under-counted by what is still queued) */
    gs_track_entry e;
    bool plain = gs_track_take(GS_SPACE_PTR, (uint64_t)dptr, &e);
    gs_scrub_before_free_async(dptr, hStream, ptsz, plain ? &e : NULL);
    CUresult r = real(dptr, hStream);
    if (plain && r == CUDA_SUCCESS)
        gs_release(e.dev, e.kind, e.bytes);
    else if (plain)
        (void)gs_track_put(GS_SPACE_PTR, (uint64_t)dptr, &e);
    int dev = gs_current_device();
    if (r == CUDA_SUCCESS && dev >= 0)
        settle_device(dev);
    return r;
}

CUresult gs_pool_trim_to(gs_fn_cuMemPoolTrimTo real, CUmemoryPool pool, size_t minBytesToKeep)
{
    CUresult r = real(pool, minBytesToKeep);
    pthread_mutex_lock(&P.lock);
    pool_acct *p = find(pool, -1, false);
    if (p != NULL)
        settle_shrink(p);
    pthread_mutex_unlock(&P.lock);
    return r;
}

/* A destroyed pool's memory goes back to the device (once its allocations are freed; a
 * pool with live allocations keeps being counted until then is not modelled). */
CUresult gs_pool_destroy(gs_fn_cuMemPoolDestroy real, CUmemoryPool pool)
{
    CUresult r = real(pool);
    if (r == CUDA_SUCCESS) {
        pthread_mutex_lock(&P.lock);
        pool_acct *p = find(pool, -1, false);
        if (p != NULL) {
            gs_release(p->dev, GS_REGION_KIND_POOL, p->counted);
            *p = P.pools[--P.count];
        }
        pthread_mutex_unlock(&P.lock);
    }
    return r;
}
