/*
 * log.c: stderr lines prefixed "gpushare:", filtered by GPUSHARE_LOG_LEVEL, and the one
 * rate-limited out-of-memory line. Each line is formatted whole and written with a single
 * write(2), so lines of concurrent threads and processes never interleave.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "state.h"

static struct {
    _Atomic int64_t last_oom_s; /* CLOCK_MONOTONIC second of the last OOM line */
    atomic_uint suppressed;
} L = {.last_oom_s = -1};

static void emit(const char *line, int len)
{
    if (len <= 0)
        return;
    ssize_t w = write(STDERR_FILENO, line, (size_t)len);
    (void)w;
}

void gs_log(gs_log_level level, const char *fmt, ...)
{
    if (level > gs_cfg.log_level)
        return;
    char line[640];
    int n = snprintf(line, sizeof line, "gpushare: ");
    va_list ap;
    va_start(ap, fmt);
    (void)vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    n = (int)strlen(line);
    line[n++] = '\n';
    emit(line, n);
}

const char *gs_human_bytes(uint64_t bytes, char *buf, size_t len)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    unsigned u = 0;
    while (u + 1 < sizeof units / sizeof units[0] && bytes >= (1ull << (10 * (u + 1))))
        u++;
    if (u == 0 || bytes % (1ull << (10 * u)) == 0)
        (void)snprintf(buf, len, "%llu %s", (unsigned long long)(bytes >> (10 * u)), units[u]);
    else /* exact bytes too: at the limit edge, 64 MiB and 64 MiB + 1 B must not read alike */
        (void)snprintf(buf, len, "%.2f %s (%llu B)", (double)bytes / (double)(1ull << (10 * u)), units[u],
                       (unsigned long long)bytes);
    return buf;
}

void gs_log_oom(int dev, uint64_t asked, const gs_region_over_limit *over)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t now = (int64_t)ts.tv_sec;
    int64_t last = atomic_load(&L.last_oom_s);
    if (last == now || !atomic_compare_exchange_strong(&L.last_oom_s, &last, now)) {
        atomic_fetch_add(&L.suppressed, 1);
        return;
    }
    char a[48], l[48], u[48], s[48];
    unsigned skipped = atomic_exchange(&L.suppressed, 0);
    char more[64] = "";
    if (skipped > 0)
        (void)snprintf(more, sizeof more, " [%u similar lines suppressed]", skipped);
    uint64_t in_use = over ? over->used : 0;
    char line[512];
    int n = snprintf(line, sizeof line, "gpushare: out of memory on device %d: asked %s, limit %s, in use %s (this process %s)%s\n",
                     dev, gs_human_bytes(asked, a, sizeof a), gs_human_bytes(over ? over->limit : 0, l, sizeof l),
                     gs_human_bytes(in_use, u, sizeof u), gs_human_bytes(over ? over->self : 0, s, sizeof s), more);
    emit(line, n < (int)sizeof line ? n : (int)sizeof line - 1);
}
