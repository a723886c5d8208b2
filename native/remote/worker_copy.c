/*
 * worker_copy.c: the worker's copies between the client's connection and device memory
 * (docs/remote.md "Copies"). A copy of more than one chunk is a pipeline over a ring of
 * staging buffers: host to device, chunk k is received into its slot while the device copies
 * chunk k-1 out of the previous one (cuMemcpyHtoDAsync on the request's stream, an event per
 * slot); device to host, the device fills the next slots while chunk k is sent. Each slot's
 * event is waited on before the slot is used again, and every copy waits for all of its
 * slots before it returns, so nothing is in flight between requests (the ring needs no
 * state across them, and a context can go away between any two).
 *
 * The copies run on the request's own stream (the legacy stream for a synchronous copy), not
 * on a worker stream: the order the program sees against its other work on that stream stays
 * the driver's, with no cross-stream events.
 */
#define _DEFAULT_SOURCE
#include "net.h"
#include "worker.h"

#include <string.h>

static int ends_session(gsr_session *s) {
    s->broken = 1;
    return -1;
}

size_t gsr_next_data(gsr_session *s, uint64_t left) {
    gsr_header d;
    if (gsr_in_header(s, &d) != 0) return 0;
    if (d.op != GSR_OP_DATA || (d.flags & GSR_FLAG_COMPRESSED) || d.length == 0 || d.length > s->chunk || d.length > left) return 0;
    return d.length;
}

size_t gsr_take_chunk(gsr_session *s, uint64_t left, uint8_t *dst) {
    gsr_header d;
    if (gsr_in_header(s, &d) != 0 || d.op != GSR_OP_DATA || d.length == 0 || d.length > s->chunk) return 0;
    if (!(d.flags & GSR_FLAG_COMPRESSED)) {
        if (d.length > left) return 0;
        if (dst ? gsr_in_read(s, dst, d.length) != 0 : gsr_in_discard(s, d.length) != 0) return 0;
        return d.length;
    }
    /* Compressed: only where granted; the declared raw length checked before anything is
     * decompressed, into exactly that many bytes. */
    if (s->pack.codec == GSR_CODEC_NONE || gsr_in_read(s, s->pack.buf, d.length) != 0) return 0;
    uint32_t raw = gsr_packed_raw_len(s->pack.buf, d.length);
    if (raw == 0 || raw > s->chunk || raw > left) return 0;
    if (dst && gsr_unpack(&s->pack, s->pack.buf, d.length, dst, raw) != 0) return 0;
    return raw;
}

/* Pinned staging for this copy when the driver gives it (once per context), else pageable.
 * The ring's own memory (huge pages where the kernel gives them: gsr_alloc_bulk) is pinned in
 * place (cuMemHostRegister, portable), so every recv into it and send out of it walks 2 MiB
 * pages; a driver that refuses that gives its own pinned memory (cuMemHostAlloc) as before. */
uint8_t *gsr_ring_base(gsr_session *s, gsr_ring *g) {
    if (!g->pinned && !g->pin_failed && s->current_ctx != 0 && s->current_ctx != UINT64_MAX) {
        size_t size = (size_t)GSR_RING_SLOTS * GSR_CHUNK_BYTES_V2;
        CUresult rc = cuMemHostRegister_v2(g->pageable, size, CU_MEMHOSTREGISTER_PORTABLE);
        void *p = NULL;
        /* Already registered: a context that went away left it so (the driver keeps it). */
        if (rc == CUDA_SUCCESS || rc == CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED) {
            g->pinned = g->pageable;
            g->registered = 1;
            g->pinned_ctx = s->current_ctx;
        } else if (cuMemHostAlloc(&p, size, CU_MEMHOSTALLOC_PORTABLE) == CUDA_SUCCESS && p) {
            g->pinned = p;
            g->registered = 0;
            g->pinned_ctx = s->current_ctx;
        } else {
            g->pin_failed = 1; /* e.g. a slice whose host-memory limit refuses it: copies still work */
        }
    }
    return g->pinned ? g->pinned : g->pageable;
}

static uint8_t *ring_base(gsr_session *s) { return gsr_ring_base(s, &s->ring); }

void gsr_ring_forget_ctx(gsr_session *s, uint64_t ctx) {
    if (s->ring.pinned && s->ring.pinned_ctx == ctx) s->ring.pinned = NULL;
    for (unsigned i = 0; i < s->nlanes; i++)
        if (s->lanes[i].ring.pinned && s->lanes[i].ring.pinned_ctx == ctx) s->lanes[i].ring.pinned = NULL;
}

static void ring_release(gsr_session *s, gsr_ring *g) {
    if (!g->pinned) return;
    gsr_obj *c = gsr_table_find(&s->table, g->pinned_ctx, GSR_KIND_CONTEXT);
    if (c && cuCtxSetCurrent(c->handle) == CUDA_SUCCESS) (void)(g->registered ? cuMemHostUnregister(g->pinned) : cuMemFreeHost(g->pinned));
    g->pinned = NULL;
    s->current_ctx = UINT64_MAX;
}

void gsr_ring_release(gsr_session *s) {
    ring_release(s, &s->ring);
    for (unsigned i = 0; i < s->nlanes; i++) ring_release(s, &s->lanes[i].ring);
}

/* Waits until slot k's device copy is done; a failure becomes the copy's status. */
void gsr_slot_wait(gsr_pipeline *p, unsigned k, CUresult *status) {
    if (!p->busy[k]) return;
    p->busy[k] = 0;
    CUresult rc = cuEventSynchronize(p->ev[k]);
    if (rc != CUDA_SUCCESS && *status == CUDA_SUCCESS) *status = rc;
}

/* Marks slot k in flight on stream: 0, or the copy's error. */
CUresult gsr_slot_record(gsr_pipeline *p, unsigned k, CUstream stream) {
    CUresult rc = CUDA_SUCCESS;
    if (!p->ev[k]) {
        CUevent made = NULL;
        rc = cuEventCreate(&made, CU_EVENT_DISABLE_TIMING);
        if (rc == CUDA_SUCCESS) p->ev[k] = made; /* on failure the handle is not the driver's */
    }
    if (rc == CUDA_SUCCESS) rc = cuEventRecord(p->ev[k], stream);
    if (rc == CUDA_SUCCESS) {
        p->busy[k] = 1;
        return CUDA_SUCCESS;
    }
    /* No event (none left, say): the slot cannot be tracked, so the copy waits for its stream
     * here instead; only the copy's own outcome is the status. */
    return cuStreamSynchronize(stream);
}

void gsr_pipeline_end(gsr_pipeline *p, CUresult *status) {
    for (unsigned k = 0; k < GSR_RING_SLOTS; k++) {
        gsr_slot_wait(p, k, status);
        if (p->ev[k]) (void)cuEventDestroy_v2(p->ev[k]);
        p->ev[k] = NULL;
    }
}

int gsr_copy_htod(gsr_session *s, const gsr_args *a, CUresult *status) {
    uint64_t dst = a->v[0], bytes = a->v[1];
    int async = a->v[3] != 0;
    CUstream stream = NULL;
    *status = gsr_find_stream(s, a->v[2], &stream);
    if (*status == CUDA_SUCCESS && !gsr_table_range_ok(&s->table, dst, bytes)) *status = CUDA_ERROR_INVALID_VALUE;
    if (s->nlanes > 0 && bytes > s->chunk) { /* striped over the bulk lanes (worker_lanes.c) */
        if (*status == CUDA_SUCCESS && async && !s->memcpy_htod_async) *status = cuStreamSynchronize(stream);
        return gsr_lanes_copy(s, 0, dst, bytes, stream, status);
    }
    /* One chunk: no pipeline to fill, and no events to pay for on the small copies frameworks
     * make all the time. */
    int piped = *status == CUDA_SUCCESS && s->memcpy_htod_async && bytes > s->chunk;
    if (*status == CUDA_SUCCESS && async && !s->memcpy_htod_async) *status = cuStreamSynchronize(stream);
    uint8_t *ring = ring_base(s);
    gsr_pipeline p;
    memset(&p, 0, sizeof p);
    unsigned k = 0;
    for (uint64_t off = 0; off < bytes;) {
        uint8_t *slot = ring + (size_t)k * GSR_CHUNK_BYTES_V2;
        gsr_slot_wait(&p, k, status);
        size_t n = gsr_take_chunk(s, bytes - off, slot);
        if (n == 0) {
            gsr_pipeline_end(&p, status);
            return ends_session(s);
        }
        if (*status == CUDA_SUCCESS) {
            if (piped) {
                *status = s->memcpy_htod_async(dst + off, slot, n, stream);
                if (*status == CUDA_SUCCESS) *status = gsr_slot_record(&p, k, stream);
            } else if (async && s->memcpy_htod_async) {
                *status = s->memcpy_htod_async(dst + off, slot, n, stream);
                if (*status == CUDA_SUCCESS) *status = cuStreamSynchronize(stream); /* staging is reused */
            } else {
                *status = cuMemcpyHtoD_v2(dst + off, slot, n);
            }
        }
        off += n;
        k = (k + 1) % GSR_RING_SLOTS;
    }
    gsr_pipeline_end(&p, status);
    return 0;
}

/* Queues the device copy of the next chunk (from *issued) into slot k; its length in *len. */
static CUresult dtoh_issue(gsr_session *s, gsr_pipeline *p, unsigned k, uint8_t *ring, uint64_t src, uint64_t bytes, uint64_t *issued,
                           size_t *len, CUstream stream) {
    size_t n = bytes - *issued > s->chunk ? s->chunk : (size_t)(bytes - *issued);
    CUresult rc = s->memcpy_dtoh_async(ring + (size_t)k * GSR_CHUNK_BYTES_V2, src + *issued, n, stream);
    if (rc == CUDA_SUCCESS) rc = gsr_slot_record(p, k, stream);
    len[k] = n;
    *issued += n;
    return rc;
}

/* DATA frames out of the device range, then the status reply (sent by the caller). */
int gsr_copy_dtoh(gsr_session *s, const gsr_args *a, CUresult *status) {
    uint64_t src = a->v[0], bytes = a->v[1];
    CUstream stream = NULL;
    *status = gsr_find_stream(s, a->v[2], &stream);
    if (*status == CUDA_SUCCESS && !gsr_table_range_ok(&s->table, src, bytes)) *status = CUDA_ERROR_INVALID_VALUE;
    if (s->nlanes > 0 && bytes > s->chunk) { /* every lane's frames come whatever the status */
        if (*status == CUDA_SUCCESS && a->v[3] && !s->memcpy_dtoh_async) *status = cuStreamSynchronize(stream);
        return gsr_lanes_copy(s, 1, src, bytes, stream, status);
    }
    if (*status != CUDA_SUCCESS) return 0;
    uint8_t *ring = ring_base(s);
    if (s->memcpy_dtoh_async && bytes > s->chunk) {
        /* Stream-ordered from the start: the copies wait for the stream's earlier work. */
        gsr_pipeline p;
        memset(&p, 0, sizeof p);
        size_t len[GSR_RING_SLOTS] = {0};
        uint64_t issued = 0, off = 0;
        for (unsigned k = 0; k < GSR_RING_SLOTS && issued < bytes && *status == CUDA_SUCCESS; k++)
            *status = dtoh_issue(s, &p, k, ring, src, bytes, &issued, len, stream);
        for (unsigned k = 0; off < bytes && *status == CUDA_SUCCESS; k = (k + 1) % GSR_RING_SLOTS) {
            gsr_slot_wait(&p, k, status);
            if (*status != CUDA_SUCCESS) break;
            off += len[k];
            uint16_t flags = (uint16_t)(GSR_FLAG_REPLY | (off < bytes ? GSR_FLAG_MORE : 0));
            if (gsr_send_chunk(&s->link, &s->pack, flags, ring + (size_t)k * GSR_CHUNK_BYTES_V2, len[k]) != 0) {
                gsr_pipeline_end(&p, status);
                return ends_session(s);
            }
            if (issued < bytes) *status = dtoh_issue(s, &p, k, ring, src, bytes, &issued, len, stream);
        }
        gsr_pipeline_end(&p, status);
        return 0;
    }
    if (a->v[3]) *status = cuStreamSynchronize(stream);
    for (uint64_t off = 0; off < bytes && *status == CUDA_SUCCESS;) {
        size_t n = bytes - off > s->chunk ? s->chunk : (size_t)(bytes - off);
        *status = cuMemcpyDtoH_v2(ring, src + off, n);
        if (*status != CUDA_SUCCESS) break;
        off += n;
        if (gsr_send_chunk(&s->link, &s->pack, (uint16_t)(GSR_FLAG_REPLY | (off < bytes ? GSR_FLAG_MORE : 0)), ring, n) != 0)
            return ends_session(s);
    }
    return 0;
}

CUresult gsr_copy_dtod_staged(gsr_session *s, uint64_t dst, uint64_t src, uint64_t bytes) {
    /* Overlapping ranges copy forward 1 MiB at a time (as before version 2), like memmove
     * only when dst < src. */
    uint8_t *ring = ring_base(s);
    CUresult rc = CUDA_SUCCESS;
    for (uint64_t off = 0; off < bytes && rc == CUDA_SUCCESS;) {
        size_t n = bytes - off > GSR_CHUNK_BYTES ? GSR_CHUNK_BYTES : (size_t)(bytes - off);
        rc = cuMemcpyDtoH_v2(ring, src + off, n);
        if (rc == CUDA_SUCCESS) rc = cuMemcpyHtoD_v2(dst + off, ring, n);
        off += n;
    }
    return rc;
}
