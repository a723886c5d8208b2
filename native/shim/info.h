/*
 * info.h: the slice as the program sees it (info.c), for the driver's and NVML's memory
 * queries.
 */
#ifndef GS_INFO_H
#define GS_INFO_H

#include <stdbool.h>
#include <stdint.h>

/* The slice of dev as the program should see it, given the driver's physical total:
 * total = min(limit, physical), used = the group's committed device bytes. false when dev
 * has no limit (report the driver's numbers unchanged). */
bool gs_slice_view(int dev, uint64_t physical_total, uint64_t *total, uint64_t *used);

#endif /* GS_INFO_H */
