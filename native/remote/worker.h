/*
 * worker.h: one remote session's state in gpushare-remote-worker (docs/remote.md). The
 * worker is single-threaded: one client, one loop, so the session needs no locks.
 */
#ifndef GSR_WORKER_H
#define GSR_WORKER_H

#include "cuda_extra.h"
#include "net.h"
#include "proto.h"
#include "table.h"

#define GSR_IN_BYTES (256u * 1024u)

typedef struct gsr_session {
    gsr_link link; /* the client's connection (TLS when the session has it) */
    /* What was received and not yet taken: many small frames (batched launches) come in one
     * recv. Every wait for more bytes is bounded by timeout_ms, mid-frame too. */
    uint8_t *in;
    size_t in_pos, in_len;
    int timeout_ms;
    gsr_table table;
    uint8_t *payload;     /* the current request's payload (GSR_MAX_PAYLOAD bytes) */
    uint8_t *staging;     /* copy staging: pinned (cuMemAllocHost) when the driver allows */
    int staging_pinned;
    uint64_t current_ctx; /* the context id last made current on this thread (0: none) */
    CUresult deferred;    /* first error of a call sent without reply, not yet reported */
    int broken;           /* the stream is out of step or closed: end the session */
    gsr_pfn_memcpy_dtod memcpy_dtod;
    gsr_pfn_memcpy_htod_async memcpy_htod_async;
    gsr_pfn_memcpy_dtoh_async memcpy_dtoh_async;
    gsr_pfn_func_get_param_info func_get_param_info;
    gsr_pfn_func_get_attribute func_get_attribute;
    gsr_pfn_func_set_attribute func_set_attribute;
    gsr_pfn_occupancy occupancy;
    gsr_pfn_stream_priority_range stream_priority_range;
} gsr_session;

/* Reads exactly n bytes of the client's stream (buffered); 0, or -1 when the link failed,
 * closed or stayed silent for timeout_ms (errno ETIMEDOUT). */
int gsr_in_read(gsr_session *s, void *dst, size_t n);
/* The next frame header, validated: 0, -1 (link), or the gsr_error. */
int gsr_in_header(gsr_session *s, gsr_header *h);
int gsr_in_discard(gsr_session *s, size_t n);

/* Resolves the optional entry points (cuda_extra.h) and the staging buffer; after cuInit. */
void gsr_session_prepare(gsr_session *s);
/* Handles one request whose header is h and payload s->payload; sends its reply unless the
 * request said NO_REPLY. Returns 0, or -1 when the session must end (s->broken). */
int gsr_session_handle(gsr_session *s, const gsr_header *h);
/* Frees every object and allocation of the session (modules, events, streams, memory, contexts). */
void gsr_session_release(gsr_session *s);

#endif /* GSR_WORKER_H */
