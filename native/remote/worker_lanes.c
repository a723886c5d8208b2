/*
 * worker_lanes.c: copies striped over a session's bulk lanes (docs/remote.md "Bulk lanes").
 * One loopback TCP connection carries a few GB/s; a 1 GiB copy at half of an H100's pinned
 * bandwidth needs several. A copy of more than one chunk is cut into chunks of s->chunk
 * bytes, chunk i travelling on lane i mod nlanes as one DATA frame of exactly its length
 * (compressed, docs/remote.md "Compression": one that decompresses to exactly that length);
 * each lane runs in its own thread for the copy, through its own staging ring, pipelined as
 * the control connection's copies are (worker_copy.c). The request and its status reply stay
 * on the control connection, so the order of copies, launches and synchronizes is the
 * control stream's; the loop waits for every lane's thread (and every lane's device copies)
 * before it reads the next request, so nothing is in flight between requests.
 *
 * A lane that fails (closed, reset, silent past the idle timeout, a frame out of step) ends
 * the session: it shuts every connection of the session down, which wakes the other lanes'
 * threads and the loop, and the worker frees everything as for any lost client.
 */
#define _DEFAULT_SOURCE
#include "net.h"
#include "worker.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef struct lane_job {
    gsr_session *s;
    unsigned lane;
    int dir; /* 0 host to device, 1 device to host */
    uint64_t addr, bytes;
    CUstream stream;
    CUcontext ctx;
    uint8_t *ring;
    CUresult status; /* in: the request's; out: this lane's part of the copy */
    int failed;      /* the lane's link failed or went out of step */
} lane_job;

void gsr_lanes_shutdown(gsr_session *s) {
    for (unsigned i = 0; i < s->nlanes; i++)
        if (s->lanes[i].link.fd >= 0) (void)shutdown(s->lanes[i].link.fd, SHUT_RDWR);
    if (s->link.fd >= 0) (void)shutdown(s->link.fd, SHUT_RDWR);
}

void gsr_lanes_free(gsr_session *s) {
    for (unsigned i = 0; i < s->nlanes; i++) {
        gsr_link_close(&s->lanes[i].link);
        free(s->lanes[i].ring.pageable);
        gsr_packer_free(&s->lanes[i].pack);
    }
    free(s->lanes);
    s->lanes = NULL;
    s->nlanes = 0;
}

static size_t chunk_len(const lane_job *j, uint64_t off) {
    uint64_t chunk = j->s->chunk;
    return (size_t)(j->bytes - off > chunk ? chunk : j->bytes - off);
}

static int lane_fail(lane_job *j) {
    j->failed = 1;
    gsr_lanes_shutdown(j->s);
    return -1;
}

/* Host to device: this lane's chunks into its ring, each copied to the device on the request's
 * stream while the next one is received. */
static void lane_htod(lane_job *j) {
    gsr_session *s = j->s;
    gsr_link *l = &s->lanes[j->lane].link;
    gsr_pipeline p;
    memset(&p, 0, sizeof p);
    unsigned k = 0;
    uint64_t stride = (uint64_t)s->chunk * s->nlanes;
    for (uint64_t off = (uint64_t)j->lane * s->chunk; off < j->bytes; off += stride) {
        size_t n = chunk_len(j, off);
        uint8_t *slot = j->ring + (size_t)k * GSR_CHUNK_BYTES_V2;
        gsr_slot_wait(&p, k, &j->status);
        gsr_header d;
        int got = gsr_recv_header(l, &d) == 0 && d.op == GSR_OP_DATA;
        if (got && (d.flags & GSR_FLAG_COMPRESSED))
            got = gsr_recv_packed(l, &s->lanes[j->lane].pack, &d, s->chunk, slot, n) == 0;
        else if (got)
            got = d.length == n && gsr_read_full(l, slot, n) == 0;
        if (!got) {
            gsr_pipeline_end(&p, &j->status);
            (void)lane_fail(j);
            return;
        }
        if (j->status == CUDA_SUCCESS) {
            if (s->memcpy_htod_async) {
                j->status = s->memcpy_htod_async(j->addr + off, slot, n, j->stream);
                if (j->status == CUDA_SUCCESS) j->status = gsr_slot_record(&p, k, j->stream);
            } else {
                j->status = cuMemcpyHtoD_v2(j->addr + off, slot, n);
            }
        }
        k = (k + 1) % GSR_RING_SLOTS;
    }
    gsr_pipeline_end(&p, &j->status);
}

/* Device to host: the device fills this lane's next slots while one is sent, DTOH_AHEAD chunks
 * ahead. Not the whole ring at once: the lanes' first device copies all queue on the request's
 * one stream, so with 16 lanes x 4 slots the last lane's first chunk would wait behind 64 device
 * copies (256 MiB, about 4.6 ms on an H100) before its first send, and the copy ends with that
 * lane; two ahead halves the wait and still keeps a device copy behind every send (a 4 MiB
 * device copy is a small fraction of a lane's 4 MiB send). After a failure the rest of the
 * lane's frames carry zeros (never stale staging), so the client's lanes stay in step and the
 * status reply says what failed. */
#define DTOH_AHEAD 2u
_Static_assert(DTOH_AHEAD < GSR_RING_SLOTS, "the slot refilled holds a chunk already sent");

/* Queues the device copy of the chunk at *issue into slot *slot (stream-ordered after earlier
 * work), then moves both on. */
static void dtoh_issue(lane_job *j, gsr_pipeline *p, uint64_t *issue, unsigned *slot) {
    uint64_t stride = (uint64_t)j->s->chunk * j->s->nlanes;
    j->status = j->s->memcpy_dtoh_async(j->ring + (size_t)*slot * GSR_CHUNK_BYTES_V2, j->addr + *issue, chunk_len(j, *issue), j->stream);
    if (j->status == CUDA_SUCCESS) j->status = gsr_slot_record(p, *slot, j->stream);
    *issue += stride;
    *slot = (*slot + 1) % GSR_RING_SLOTS;
}

static void lane_dtoh(lane_job *j) {
    gsr_session *s = j->s;
    gsr_link *l = &s->lanes[j->lane].link;
    gsr_pipeline p;
    memset(&p, 0, sizeof p);
    uint64_t stride = (uint64_t)s->chunk * s->nlanes;
    uint64_t first = (uint64_t)j->lane * s->chunk;
    uint64_t issue = first, send = first;
    unsigned issue_slot = 0;
    int zeroed = 0;
    unsigned k = 0;
    int piped = s->memcpy_dtoh_async != NULL;
    for (unsigned q = 0; piped && q < DTOH_AHEAD && issue < j->bytes && j->status == CUDA_SUCCESS; q++) dtoh_issue(j, &p, &issue, &issue_slot);
    for (; send < j->bytes; send += stride, k = (k + 1) % GSR_RING_SLOTS) {
        size_t n = chunk_len(j, send);
        uint8_t *slot = j->ring + (size_t)k * GSR_CHUNK_BYTES_V2;
        if (piped) {
            gsr_slot_wait(&p, k, &j->status);
            /* The next chunk's slot held one already sent (DTOH_AHEAD < GSR_RING_SLOTS): refill it
             * while this one is sent. */
            if (j->status == CUDA_SUCCESS && issue < j->bytes) dtoh_issue(j, &p, &issue, &issue_slot);
        } else if (j->status == CUDA_SUCCESS) {
            j->status = cuMemcpyDtoH_v2(slot, j->addr + send, n);
        }
        if (j->status != CUDA_SUCCESS) {
            if (!zeroed) {
                gsr_pipeline_end(&p, &j->status); /* nothing of the ring in flight before it is cleared */
                memset(j->ring, 0, (size_t)GSR_RING_SLOTS * GSR_CHUNK_BYTES_V2);
                zeroed = 1;
            }
        }
        uint16_t flags = (uint16_t)(GSR_FLAG_REPLY | (send + stride < j->bytes ? GSR_FLAG_MORE : 0));
        if (gsr_send_chunk(l, &s->lanes[j->lane].pack, flags, slot, n) != 0) {
            gsr_pipeline_end(&p, &j->status);
            (void)lane_fail(j);
            return;
        }
    }
    gsr_pipeline_end(&p, &j->status);
}

static void *lane_main(void *arg) {
    lane_job *j = arg;
    /* The copy's context on this thread too (contexts are per thread). */
    if (j->status == CUDA_SUCCESS && j->ctx) j->status = cuCtxSetCurrent(j->ctx);
    if (j->dir == 0)
        lane_htod(j);
    else
        lane_dtoh(j);
    return NULL;
}

int gsr_lanes_copy(gsr_session *s, int dir, uint64_t addr, uint64_t bytes, CUstream stream, CUresult *status) {
    lane_job jobs[GSR_MAX_LANES];
    pthread_t threads[GSR_MAX_LANES];
    int started[GSR_MAX_LANES] = {0};
    uint64_t nchunks = (bytes + s->chunk - 1) / s->chunk;
    unsigned used = nchunks < s->nlanes ? (unsigned)nchunks : s->nlanes;
    CUcontext ctx = NULL;
    if (*status == CUDA_SUCCESS && cuCtxGetCurrent(&ctx) != CUDA_SUCCESS) ctx = NULL;
    /* The per-thread default stream is this thread's own: on a lane's thread it would be another
     * stream, unordered with the work queued here before the copy. That work is waited for
     * first; the copy's chunks then go on the lanes' threads' own per-thread streams, and they
     * are all done before the next request is read, so later work is ordered after them. */
    if (*status == CUDA_SUCCESS && stream == CU_STREAM_PER_THREAD) *status = cuStreamSynchronize(stream);
    for (unsigned i = 0; i < used; i++) {
        /* Staging pinned in the current context, here on the loop's thread, once per lane. */
        uint8_t *ring = *status == CUDA_SUCCESS ? gsr_ring_base(s, &s->lanes[i].ring) : s->lanes[i].ring.pageable;
        jobs[i] = (lane_job){s, i, dir, addr, bytes, stream, ctx, ring, *status, 0};
    }
    /* Lane 0 on this thread; the others on threads of their own (the last copy's if none can start:
     * then one after another on this one, still correct, the client's lanes buffered by TCP). */
    for (unsigned i = 1; i < used; i++) started[i] = pthread_create(&threads[i], NULL, lane_main, &jobs[i]) == 0;
    if (used > 0) (void)lane_main(&jobs[0]);
    for (unsigned i = 1; i < used; i++) {
        if (started[i])
            (void)pthread_join(threads[i], NULL);
        else
            (void)lane_main(&jobs[i]);
    }
    int failed = 0;
    for (unsigned i = 0; i < used; i++) {
        failed |= jobs[i].failed;
        if (*status == CUDA_SUCCESS && jobs[i].status != CUDA_SUCCESS) *status = jobs[i].status;
    }
    /* This thread's context is the one the loop made current (the lanes set it on their own). */
    if (failed) {
        s->broken = 1;
        return -1;
    }
    return 0;
}
