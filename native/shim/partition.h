/*
 * partition.h: GPUSHARE_ISOLATION=sm-partition (partition.c, PARTITION.md), as the
 * context-making policies of context.c ask it.
 */
#ifndef GS_PARTITION_H
#define GS_PARTITION_H

#include <stdbool.h>

#include "gs_cuda.h"

/* Each gs_partition_* call but the first returns false when the call is not ours (time-slice mode, or a
 * device without a compute limit: the caller goes on as usual), else true with *out set. */
bool gs_partition_mode(void);
bool gs_partition_primary_retain(CUcontext *pctx, CUdevice dev, CUresult *out);
bool gs_partition_primary_down(CUdevice dev, bool reset, CUresult *out);
bool gs_partition_primary_state(CUdevice dev, unsigned int *flags, int *active, CUresult *out);
bool gs_partition_ctx_create(CUcontext *pctx, CUdevice dev, CUresult *out);
bool gs_partition_ctx_destroy(CUcontext ctx, CUresult *out);

#endif /* GS_PARTITION_H */
