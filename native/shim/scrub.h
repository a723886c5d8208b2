/*
 * scrub.h: GPUSHARE_SCRUB=1 zeroes device memory before the driver gets it back (scrub.c);
 * each call is a no-op when it is off.
 */
#ifndef GS_SCRUB_H
#define GS_SCRUB_H

#include <stdbool.h>
#include <stdint.h>

#include "gs_cuda.h"
#include "track.h"

/* Remembers the size of a stream-ordered allocation. */
void gs_scrub_note_async(CUdeviceptr p, uint64_t bytes);
/* Before cuMemFree(_v2) of p: zero it and wait (known: its allocation map entry, or NULL). */
void gs_scrub_before_free(CUdeviceptr p, const gs_track_entry *known);
/* Before cuMemFreeAsync(_ptsz) of p on s: zero it on s (plain: its entry when p came
 * from cuMemAlloc, else NULL). */
void gs_scrub_before_free_async(CUdeviceptr p, CUstream s, bool ptsz, const gs_track_entry *plain);

#endif /* GS_SCRUB_H */
