/*
 * worker.h: one remote session's state in gpushare-remote-worker (docs/remote.md). The
 * worker serves one client from one loop, so the session needs no locks; a large copy over
 * bulk lanes (worker_lanes.c) runs one thread per lane for that copy only, each touching its
 * own lane and ring, and the loop waits for all of them before it reads the next request.
 */
#ifndef GSR_WORKER_H
#define GSR_WORKER_H

#include "compress.h"
#include "cuda_extra.h"
#include "net.h"
#include "proto.h"
#include "table.h"

#define GSR_IN_BYTES (256u * 1024u)
#define GSR_RING_SLOTS 4u

/* Copy staging (docs/remote.md "Copies"): GSR_RING_SLOTS buffers of GSR_CHUNK_BYTES_V2, so
 * that receiving chunk k+1 overlaps the device copy of chunk k (and, device to host, the
 * device copy of k+1 overlaps sending k). `pageable` is always there (gsr_alloc_bulk: on huge
 * pages where the kernel gives them); `pinned` is `pageable` itself registered with the driver
 * (cuMemHostRegister, portable), or where the driver refuses that, allocated (cuMemHostAlloc,
 * portable), in the context of the first large copy; either is the driver's to drop with that
 * context: when the session drops that context it is forgotten, and the next copy pins again
 * in its own. */
typedef struct gsr_ring {
    uint8_t *pageable;
    uint8_t *pinned;
    uint64_t pinned_ctx; /* the context id pinned was allocated in */
    int registered;      /* pinned is pageable itself, registered (cuMemHostRegister), not the driver's */
    int pin_failed;      /* the driver refused once: stay on pageable staging */
} gsr_ring;

/* A bulk lane (docs/remote.md "Bulk lanes"): a data connection of its own, authenticated as
 * the control one, and its own staging ring. */
typedef struct gsr_lane {
    gsr_link link;
    gsr_ring ring;
    gsr_packer pack; /* the session's codec on this lane (COMPRESS granted), else {0} */
} gsr_lane;

/* Entry points a driver may lack, found at prepare (worker_queries.c); NULL when absent. */
enum gsr_optional {
    GSR_OPT_STREAM_CAPTURE_INFO,
    GSR_OPT_STREAM_PRIORITY,
    GSR_OPT_STREAM_FLAGS,
    GSR_OPT_STREAM_ID,
    GSR_OPT_CTX_GET_LIMIT,
    GSR_OPT_CTX_SET_LIMIT,
    GSR_OPT_CTX_GET_CACHE_CONFIG,
    GSR_OPT_CTX_SET_CACHE_CONFIG,
    GSR_OPT_CTX_FLAGS,
    GSR_OPT_CTX_API_VERSION,
    GSR_OPT_CTX_ID,
    GSR_OPT_EVENT_RECORD_FLAGS,
    GSR_OPT_MODULE_GLOBAL,
    /* cuBLAS's needs (ops 100-102, worker_queries.c) */
    GSR_OPT_OCCUPANCY_DYNAMIC_SMEM,
    GSR_OPT_OCCUPANCY_MAX_ACTIVE_CLUSTERS,
    GSR_OPT_OCCUPANCY_MAX_CLUSTER_SIZE,
    GSR_OPT_LAUNCH_KERNEL_EX,
    GSR_OPT_TENSOR_MAP_ENCODE_TILED,
    GSR_OPT_TENSOR_MAP_REPLACE_ADDRESS,
    /* Libraries (protocol version 5, LIBRARY_LOAD_DATA): without them a library is a module. */
    GSR_OPT_LIBRARY_LOAD_DATA,
    GSR_OPT_LIBRARY_UNLOAD,
    GSR_OPT_LIBRARY_GET_KERNEL,
    GSR_OPT_KERNEL_GET_FUNCTION,
    GSR_OPT_LIBRARY_GET_GLOBAL,
    GSR_OPT_COUNT
};

typedef struct gsr_session {
    gsr_link link; /* the client's connection (TLS when the session has it) */
    /* What was received and not yet taken: many small frames (batched launches) come in one
     * recv. Every wait for more bytes is bounded by timeout_ms, mid-frame too. */
    uint8_t *in;
    size_t in_pos, in_len;
    int timeout_ms;
    gsr_table table;
    uint8_t *payload;     /* the current request's payload (GSR_MAX_PAYLOAD bytes) */
    uint32_t chunk;       /* the largest DATA frame of this session (its version's, at HELLO) */
    gsr_ring ring;        /* copy staging (worker_copy.c) */
    uint64_t current_ctx; /* the context id last made current on this thread (0: none) */
    CUresult deferred;    /* first error of a call sent without reply, not yet reported */
    gsr_lane *lanes;      /* bulk lanes (LANES_OPEN), nlanes of them; copies over one chunk go there */
    unsigned nlanes;
    uint32_t version;     /* the session's protocol version (HELLO) */
    uint32_t codecs;      /* the codecs this worker offers (1 << codec; --codecs, loadable ones) */
    gsr_packer pack;      /* the granted codec on the control connection, else {0} (COMPRESS) */
    int broken;           /* the stream is out of step or closed: end the session */
    gsr_pfn_memcpy_dtod memcpy_dtod;
    gsr_pfn_memcpy_htod_async memcpy_htod_async;
    gsr_pfn_memcpy_dtoh_async memcpy_dtoh_async;
    gsr_pfn_func_get_param_info func_get_param_info;
    gsr_pfn_func_get_attribute func_get_attribute;
    gsr_pfn_func_set_attribute func_set_attribute;
    gsr_pfn_occupancy occupancy;
    gsr_pfn_stream_priority_range stream_priority_range;
    void *optional[GSR_OPT_COUNT]; /* enum gsr_optional */
} gsr_session;

/* Reads exactly n bytes of the client's stream (buffered); 0, or -1 when the link failed,
 * closed or stayed silent for timeout_ms (errno ETIMEDOUT). */
int gsr_in_read(gsr_session *s, void *dst, size_t n);
/* The next frame header, validated: 0, -1 (link), or the gsr_error. */
int gsr_in_header(gsr_session *s, gsr_header *h);
int gsr_in_discard(gsr_session *s, size_t n);

/* Resolves the optional entry points (cuda_extra.h); after cuInit. */
void gsr_session_prepare(gsr_session *s);

/* A stream id of the session (0 and the driver's special handles as they are) -> its handle;
 * CUDA_ERROR_INVALID_HANDLE when it is not one of the session's. */
CUresult gsr_find_stream(gsr_session *s, uint64_t id, CUstream *out);

/* worker_copy.c. The next DATA frame of a transfer with `left` bytes to come: its length, or
 * 0 when the stream is out of step (the caller ends the session). Never a compressed one. */
size_t gsr_next_data(gsr_session *s, uint64_t left);
/* The next chunk of a copy to the device with `left` bytes to come, raw or compressed (in a
 * session that granted COMPRESS), into dst (NULL: taken in and dropped): its raw length, or 0
 * when the stream is out of step or a compressed frame lies (the caller ends the session). */
size_t gsr_take_chunk(gsr_session *s, uint64_t left, uint8_t *dst);
/* The copy requests (a: the request's decoded fields; *status: its reply status). The data
 * is taken in or sent whatever the status; 0, or -1 when the session must end (s->broken). */
int gsr_copy_htod(gsr_session *s, const gsr_args *a, CUresult *status);
int gsr_copy_dtoh(gsr_session *s, const gsr_args *a, CUresult *status);
/* Device to device through the staging, for a driver without cuMemcpyDtoD (the fake). */
CUresult gsr_copy_dtod_staged(gsr_session *s, uint64_t dst, uint64_t src, uint64_t bytes);
/* The session dropped context ctx: pinned staging allocated in it went with it. */
void gsr_ring_forget_ctx(gsr_session *s, uint64_t ctx);
/* Frees the pinned staging in its context (before the session's contexts go). */
void gsr_ring_release(gsr_session *s);
/* Handles one request whose header is h and payload s->payload; sends its reply unless the
 * request said NO_REPLY. Returns 0, or -1 when the session must end (s->broken). */
int gsr_session_handle(gsr_session *s, const gsr_header *h);
/* worker_queries.c: finds the optional entry points (from gsr_session_prepare). */
void gsr_queries_prepare(gsr_session *s);
/* worker_queries.c: ops 100-149 (cuBLAS's needs: cluster occupancy, launches with a launch
 * configuration); the reply's scalars in *out. */
CUresult gsr_handle_cublas_op(gsr_session *s, unsigned op, const gsr_args *a, gsr_args *out);
/* The query ops (STREAM_GET, CTX_GET, CTX_SET, EVENT_RECORD_FLAGS, POINTER_GET,
 * MODULE_GET_GLOBAL): a's fields checked against the session's table; the reply's fields in *out. */
CUresult gsr_handle_query(gsr_session *s, unsigned op, const gsr_args *a, gsr_args *out);

/* worker_lanes.c. A copy striped over the session's lanes (s->nlanes > 0, bytes > s->chunk):
 * chunk i (s->chunk bytes, the last one short) travels on lane i mod nlanes. dir 0: host to
 * device (every lane's DATA frames are taken in whatever the status), 1: device to host
 * (every lane sends its frames; zeros where the copy failed, so the lanes stay in step).
 * *status: in, the request's checks (stream, range); out, the copy's. 0, or -1 when a lane
 * failed (the session ends: s->broken). */
int gsr_lanes_copy(gsr_session *s, int dir, uint64_t addr, uint64_t bytes, CUstream stream, CUresult *status);
/* Pinned (else pageable) staging of a ring, in the current context (worker_copy.c). */
uint8_t *gsr_ring_base(gsr_session *s, gsr_ring *g);
/* Wakes every thread blocked on one of the session's connections (a lane failed). */
void gsr_lanes_shutdown(gsr_session *s);
/* Frees the lanes' links and pageable rings (their pinned rings: gsr_ring_release). */
void gsr_lanes_free(gsr_session *s);

/* The pipeline of one copy over one ring (worker_copy.c): an event per slot, created on first
 * use in the copy's context, waited on before the slot is reused and when the copy ends. */
typedef struct gsr_pipeline {
    CUevent ev[GSR_RING_SLOTS];
    int busy[GSR_RING_SLOTS];
} gsr_pipeline;
void gsr_slot_wait(gsr_pipeline *p, unsigned k, CUresult *status);
CUresult gsr_slot_record(gsr_pipeline *p, unsigned k, CUstream stream);
void gsr_pipeline_end(gsr_pipeline *p, CUresult *status);

/* Frees every object and allocation of the session (modules, events, streams, memory, contexts). */
void gsr_session_release(gsr_session *s);

/* The function an id names, in the current context: a library's kernel is one function per
 * context, found there (cuKernelGetFunction) when the context changed since its last use. */
CUresult gsr_function_of(gsr_session *s, uint64_t id, CUfunction *out);

#endif /* GSR_WORKER_H */
