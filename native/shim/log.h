/*
 * log.h: stderr lines prefixed "gpushare:", filtered by GPUSHARE_LOG_LEVEL (log.c).
 */
#ifndef GS_LOG_H
#define GS_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "gs_config.h"
#include "gs_region.h"

void gs_log(gs_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One line per second at most: what was asked and why it does not fit. */
void gs_log_oom(int dev, uint64_t asked, const gs_region_over_limit *over);
/* "64 MiB", "1.50 GiB", "17 B". */
const char *gs_human_bytes(uint64_t bytes, char *buf, size_t len);

#endif /* GS_LOG_H */
