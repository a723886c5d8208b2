/*
 * vmm.c: when VMM physical memory really goes away. cuMemRelease of a handle that is
 * still mapped only drops the handle: the driver frees the memory at the unmap of its last
 * mapping (programs do release right after cuMemMap; the CUDA samples do). So the bytes of
 * a released-but-mapped handle stay counted until that unmap, and GPUSHARE_SCRUB zeroes it
 * then, through the mapping being removed.
 *
 * Mappings are remembered (address range -> handle) in one list under one lock: cuMemMap
 * and cuMemUnmap are rare next to kernel launches (a PyTorch expandable segment maps one
 * 2 MiB/20 MiB chunk at a time), so a linear scan is cheap.
 */
#include <pthread.h>
#include <stdlib.h>

#include "hooks.h"
#include "log.h"
#include "state.h"
#include "track.h"

typedef struct mapping {
    CUdeviceptr va;
    size_t size;
    CUmemGenericAllocationHandle handle;
} mapping;

static struct {
    pthread_mutex_t lock;
    mapping *maps;
    size_t count, cap;
} V = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* A released handle whose memory lives on in its mappings: what it still holds. */
#define DEFERRED GS_SPACE_VMM_DEFERRED

/* Live mappings of h (size 0: being removed). */
static size_t mappings_of(CUmemGenericAllocationHandle h)
{
    size_t n = 0;
    for (size_t i = 0; i < V.count; i++)
        n += V.maps[i].handle == h && V.maps[i].size != 0;
    return n;
}

/* Whether [ptr, ptr+size) is covered exactly by whole mappings we know. */
static bool exactly_mappings(CUdeviceptr ptr, size_t size)
{
    size_t covered = 0;
    for (size_t i = 0; i < V.count; i++) {
        const mapping *m = &V.maps[i];
        if (m->va < ptr + size && ptr < m->va + m->size) {
            if (m->va < ptr || m->va + m->size > ptr + size)
                return false;
            covered += m->size;
        }
    }
    return size > 0 && covered == size;
}

static void zero(CUdeviceptr va, size_t size)
{
    const gs_real_fns *R = gs_real();
    CUresult r = R->cuMemsetD8_v2(va, 0, size);
    if (r == CUDA_SUCCESS)
        r = R->cuStreamSynchronize(NULL);
    if (r != CUDA_SUCCESS)
        gs_log(GS_LOG_WARN, "scrub of a %zu-byte VMM mapping failed (%d); released unscrubbed", size, (int)r);
}

/* Zeroes a handle mapped nowhere: map it at an address of our own, set, unmap. */
static void zero_unmapped(CUmemGenericAllocationHandle h, const gs_track_entry *e)
{
    const gs_real_fns *R = gs_real();
    CUdeviceptr va = 0;
    size_t size = (size_t)e->bytes;
    CUmemAccessDesc access = {.location = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = e->dev},
                              .flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
    CUresult r = R->cuMemAddressReserve(&va, size, 0, 0, 0);
    if (r == CUDA_SUCCESS) {
        r = R->cuMemMap(va, size, 0, h, 0);
        if (r == CUDA_SUCCESS) {
            r = R->cuMemSetAccess(va, size, &access, 1);
            if (r == CUDA_SUCCESS)
                zero(va, size);
            (void)R->cuMemUnmap(va, size);
        }
        (void)R->cuMemAddressFree(va, size);
    }
    if (r != CUDA_SUCCESS)
        gs_log(GS_LOG_WARN, "scrub of a %zu-byte VMM allocation failed (%d); released unscrubbed", size, (int)r);
}

CUresult gs_vmm_map(gs_fn_cuMemMap real, CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle handle,
                    unsigned long long flags)
{
    pthread_mutex_lock(&V.lock);
    CUresult r = real(ptr, size, offset, handle, flags);
    if (r == CUDA_SUCCESS) {
        if (V.count == V.cap) {
            size_t cap = V.cap ? V.cap * 2 : 64;
            mapping *m = realloc(V.maps, cap * sizeof *m);
            if (m != NULL) {
                V.maps = m;
                V.cap = cap;
            }
        }
        if (V.count < V.cap)
            V.maps[V.count++] = (mapping){ptr, size, handle};
        else /* cannot remember it: a release of this handle then counts as an immediate free */
            gs_log(GS_LOG_WARN, "out of memory remembering a VMM mapping");
    }
    pthread_mutex_unlock(&V.lock);
    return r;
}

CUresult gs_vmm_unmap(gs_fn_cuMemUnmap real, CUdeviceptr ptr, size_t size)
{
    pthread_mutex_lock(&V.lock);
    /* Mappings inside the range; a released handle whose every mapping is among them dies.
     * Zeroed only when the range is exactly whole mappings (what the driver accepts), so an
     * unmap the driver will refuse never destroys memory still in use. */
    if (gs_cfg.scrub && exactly_mappings(ptr, size)) {
        for (size_t i = 0; i < V.count; i++) {
            mapping *m = &V.maps[i];
            if (m->va < ptr || m->va - ptr >= size)
                continue;
            gs_track_entry e;
            if (!gs_track_take(DEFERRED, m->handle, &e))
                continue;
            (void)gs_track_put(DEFERRED, m->handle, &e);
            size_t inside = 0, all = mappings_of(m->handle);
            for (size_t j = 0; j < V.count; j++)
                inside += V.maps[j].handle == m->handle && V.maps[j].va >= ptr && V.maps[j].va - ptr < size;
            if (inside == all)
                zero(m->va, m->size);
        }
    }
    CUresult r = real(ptr, size);
    if (r == CUDA_SUCCESS) {
        /* size 0 marks the mappings gone; a released handle with none left is freed */
        for (size_t i = 0; i < V.count; i++)
            if (V.maps[i].va >= ptr && V.maps[i].va - ptr < size)
                V.maps[i].size = 0;
        size_t kept = 0;
        for (size_t i = 0; i < V.count; i++) {
            gs_track_entry e;
            if (V.maps[i].size == 0 && mappings_of(V.maps[i].handle) == 0 &&
                gs_track_take(DEFERRED, V.maps[i].handle, &e))
                gs_release(e.dev, e.kind, e.bytes);
        }
        for (size_t i = 0; i < V.count; i++)
            if (V.maps[i].size != 0)
                V.maps[kept++] = V.maps[i];
        V.count = kept;
    }
    pthread_mutex_unlock(&V.lock);
    return r;
}

CUresult gs_vmm_release(gs_fn_cuMemRelease real, CUmemGenericAllocationHandle handle)
{
    pthread_mutex_lock(&V.lock);
    gs_track_entry e;
    bool known = gs_track_take(GS_SPACE_VMM, (uint64_t)handle, &e);
    bool mapped = mappings_of(handle) > 0;
    if (known && !mapped && gs_cfg.scrub)
        zero_unmapped(handle, &e);
    CUresult r = real(handle);
    if (known) {
        if (r != CUDA_SUCCESS)
            (void)gs_track_put(GS_SPACE_VMM, (uint64_t)handle, &e);
        else if (!mapped || !gs_track_put(DEFERRED, (uint64_t)handle, &e))
            gs_release(e.dev, e.kind, e.bytes);
    }
    pthread_mutex_unlock(&V.lock);
    return r;
}
