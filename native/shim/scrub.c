/*
 * scrub.c: GPUSHARE_SCRUB=1 zeroes device memory before the driver gets it back, so the
 * next tenant (a later allocation of another process) cannot read what this one left.
 *
 *   cuMemFree(_v2)        cuMemsetD8_v2 over the allocation, then synchronize the stream
 *                         it ran on (the legacy default stream), then the free;
 *   cuMemFreeAsync(_ptsz) cuMemsetD8Async on the freeing stream, so the set is ordered
 *                         before the free without blocking the host;
 *   VMM physical memory   zeroed when it really goes away (vmm.c): at the unmap of its last
 *                         mapping after cuMemRelease, or at cuMemRelease when it is mapped
 *                         nowhere, through a mapping of our own.
 * Not scrubbed: host-backed memory of GPUSHARE_OVERSUBSCRIBE (host pages; the kernel zeroes
 * pages before another process gets them), arrays (opaque layouts: no memset reaches them),
 * memory of a context destroyed with allocations still in it (the driver frees it without
 * a call per allocation), and graph memory nodes. Stream-ordered allocations are
 * remembered (pointer -> size) only while scrubbing is on.
 */
#include "gs_common.h"
#include "log.h"
#include "scrub.h"
#include "state.h"
#include "track.h"

void gs_scrub_note_async(CUdeviceptr p, uint64_t bytes)
{
    if (!gs_cfg.scrub || p == 0 || bytes == 0)
        return;
    gs_track_entry stale, e = {.dev = -1, .bytes = bytes};
    (void)gs_track_take(GS_SPACE_ASYNC, (uint64_t)p, &stale); /* a freed pointer handed out again */
    (void)gs_track_put(GS_SPACE_ASYNC, (uint64_t)p, &e);
}

static uint64_t take_async(CUdeviceptr p)
{
    gs_track_entry e;
    return gs_track_take(GS_SPACE_ASYNC, (uint64_t)p, &e) ? e.bytes : 0;
}

void gs_scrub_before_free(CUdeviceptr p, const gs_track_entry *known)
{
    if (!gs_cfg.scrub || p == 0)
        return;
    uint64_t bytes = take_async(p); /* a stream-ordered allocation freed with cuMemFree */
    if (known != NULL)
        bytes = known->kind == GS_REGION_KIND_HOST ? 0 : known->bytes;
    if (bytes == 0)
        return;
    const gs_real_fns *R = gs_real();
    CUresult r = R->cuMemsetD8_v2(p, 0, (size_t)bytes);
    if (r == CUDA_SUCCESS)
        r = R->cuStreamSynchronize(NULL);
    if (r != CUDA_SUCCESS)
        gs_log(GS_LOG_WARN, "scrub of %llu bytes at 0x%llx failed (%d); freed unscrubbed", (unsigned long long)bytes,
               (unsigned long long)p, (int)r);
}

void gs_scrub_before_free_async(CUdeviceptr p, CUstream s, bool ptsz, const gs_track_entry *plain)
{
    if (!gs_cfg.scrub)
        return;
    uint64_t bytes = take_async(p);
    if (plain != NULL) /* cuMemFreeAsync of a cuMemAlloc pointer */
        bytes = plain->kind == GS_REGION_KIND_HOST ? 0 : plain->bytes;
    if (bytes == 0)
        return;
    const gs_real_fns *R = gs_real();
    CUresult r = ptsz ? R->cuMemsetD8Async_ptsz(p, 0, (size_t)bytes, s) : R->cuMemsetD8Async(p, 0, (size_t)bytes, s);
    if (r != CUDA_SUCCESS)
        gs_log(GS_LOG_WARN, "scrub of %llu bytes at 0x%llx failed (%d); freed unscrubbed", (unsigned long long)bytes,
               (unsigned long long)p, (int)r);
}
