/*
 * track.h: the allocation map (track.c): what each pointer or handle took, so its free gives
 * back exactly that.
 */
#ifndef GS_TRACK_H
#define GS_TRACK_H

#include <stdbool.h>
#include <stdint.h>

#include "gs_cuda.h"
#include "gs_region.h"

/* GS_SPACE_ASYNC: sizes of stream-ordered allocations, kept only for scrubbing (never
 * released: the pools' reserved memory is what is counted). */
/* GS_SPACE_VMM_DEFERRED: handles released while still mapped (vmm.c). */
typedef enum gs_space {
    GS_SPACE_PTR = 0, GS_SPACE_VMM, GS_SPACE_ARRAY, GS_SPACE_MIPMAP, GS_SPACE_CTX, GS_SPACE_ASYNC, GS_SPACE_VMM_DEFERRED
} gs_space;

typedef struct gs_track_entry {
    int dev;
    gs_region_kind kind;
    uint64_t bytes;
    CUcontext ctx; /* the context it belongs to (freed with it), NULL: none */
} gs_track_entry;

/* Remembers key -> entry; false when out of memory (the bytes are then never given back,
 * so callers release them at once). */
bool gs_track_put(gs_space space, uint64_t key, const gs_track_entry *e);
/* Forgets key, copying what it held into *out; false when unknown. */
bool gs_track_take(gs_space space, uint64_t key, gs_track_entry *out);
/* Forgets every entry of ctx (destroyed with it) and releases its bytes. */
void gs_track_drop_ctx(CUcontext ctx);

#endif /* GS_TRACK_H */
