/*
 * context.h: context memory, measured when a context is made (context.c); partition.c
 * counts its green contexts with it too.
 */
#ifndef GS_CONTEXT_H
#define GS_CONTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gs_cuda.h"
#include "gs_nvml.h"

/* What could be read of dev's memory before a context is made (to measure what it took). */
typedef struct gs_ctx_before {
    bool have_nvml, have_free;
    nvmlDevice_t nd;
    uint64_t nvml_used;
    size_t free;
} gs_ctx_before;
gs_ctx_before gs_ctx_measure_before(CUdevice dev);
/* Counts ctx (new, current) as context memory on dev; false when it passes the limit. */
bool gs_ctx_count(CUcontext ctx, CUdevice dev, const gs_ctx_before *b);

#endif /* GS_CONTEXT_H */
