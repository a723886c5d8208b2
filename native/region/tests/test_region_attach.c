/*
 * test_region_attach.c: how long gs_region_open (map + attach, reclaim pass included) takes
 * with 1, 64 and 512 processes attached to one region. Also a benchmark: built in release
 * as build/native/region/region_attach_bench (make ... region-bench).
 *   sequential: processes attach one after another, each while all before it stay
 *               attached (the k-th attach sees k-1 live slots to check);
 *   burst:      all processes attach at the same instant.
 * Checks: every attach succeeds, slots are distinct, detaching frees them all. Prints a
 * table and one JSON line ("region_attach_json: {...}") for bench/region.bench.ts.
 * Usage: [counts...] (default 1 64 512).
 */
#define _DEFAULT_SOURCE

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "region_test.h"

typedef struct report {
    uint64_t ns;
    int32_t slot;
    int32_t rc;
} report;

static void write_all(int fd, const void *p, size_t n)
{
    if (write(fd, p, n) != (ssize_t)n)
        _exit(3);
}

/* Child: waits for `go` (burst) to close, opens, reports, waits for `release` to close. */
static void child(const char *path, int go_fd, int report_fd, int release_fd)
{
    char c;
    if (go_fd >= 0 && read(go_fd, &c, 1) < 0)
        _exit(3);
    gs_region_options o = rt_options(path, 1u << 30);
    char err[256];
    uint64_t t0 = rt_now_ns();
    int rc = gs_region_open(&o, err, sizeof err);
    report r = {rt_now_ns() - t0, gs_region_slot_index(), rc};
    write_all(report_fd, &r, sizeof r);
    if (read(release_fd, &c, 1) < 0)
        _exit(3);
    _exit(gs_region_close() == GS_REGION_OK ? 0 : 1);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

typedef struct stats {
    double median_us, p99_us, max_us, last_us, total_ms;
} stats;

static stats run(unsigned n, bool burst, const char *path)
{
    int go[2], rep[2], rel[2];
    CHECK(pipe(go) == 0 && pipe(rep) == 0 && pipe(rel) == 0);
    pid_t *kids = calloc(n, sizeof *kids);
    uint64_t *ns = calloc(n, sizeof *ns);
    char *seen = calloc(GS_REGION_MAX_SLOTS, 1);
    uint64_t t0 = rt_now_ns();
    for (unsigned i = 0; i < n; i++) {
        kids[i] = fork();
        if (kids[i] == 0) {
            close(go[1]);
            close(rep[0]);
            close(rel[1]);
            child(path, burst ? go[0] : -1, rep[1], rel[0]);
        }
        CHECK(kids[i] > 0);
        if (!burst) { /* wait for this one before starting the next */
            report r;
            CHECK_EQ(read(rep[0], &r, sizeof r), sizeof r);
            CHECK_EQ(r.rc, GS_REGION_OK);
            CHECK(r.slot >= 0 && r.slot < (int)GS_REGION_MAX_SLOTS && !seen[r.slot]);
            if (r.slot >= 0 && r.slot < (int)GS_REGION_MAX_SLOTS)
                seen[r.slot] = 1;
            ns[i] = r.ns;
        }
    }
    close(go[0]);
    close(go[1]); /* burst: everyone starts now */
    if (burst) {
        t0 = rt_now_ns();
        for (unsigned i = 0; i < n; i++) {
            report r;
            CHECK_EQ(read(rep[0], &r, sizeof r), sizeof r);
            CHECK_EQ(r.rc, GS_REGION_OK);
            CHECK(r.slot >= 0 && r.slot < (int)GS_REGION_MAX_SLOTS && !seen[r.slot]);
            if (r.slot >= 0 && r.slot < (int)GS_REGION_MAX_SLOTS)
                seen[r.slot] = 1;
            ns[i] = r.ns;
        }
    }
    stats s = {.total_ms = (double)(rt_now_ns() - t0) / 1e6, .last_us = (double)ns[n - 1] / 1e3};
    /* all attached at once: the region says so */
    gs_region_file *f = rt_map(path);
    unsigned active = 0;
    for (unsigned i = 0; i < GS_REGION_MAX_SLOTS; i++)
        active += atomic_load(&f->slots[i].owner) != 0;
    CHECK_EQ(active, n);
    CHECK(atomic_load(&f->header.slots_hwm) >= n && atomic_load(&f->header.slots_hwm) <= GS_REGION_MAX_SLOTS);
    close(rel[1]);
    for (unsigned i = 0; i < n; i++) {
        int st;
        CHECK_EQ(waitpid(kids[i], &st, 0), kids[i]);
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    }
    active = 0;
    for (unsigned i = 0; i < GS_REGION_MAX_SLOTS; i++)
        active += atomic_load(&f->slots[i].owner) != 0;
    CHECK_EQ(active, 0);
    rt_unmap(f);
    close(rel[0]);
    close(rep[0]);
    close(rep[1]);
    qsort(ns, n, sizeof *ns, cmp_u64);
    s.median_us = (double)ns[n / 2] / 1e3;
    s.p99_us = (double)ns[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1] / 1e3;
    s.max_us = (double)ns[n - 1] / 1e3;
    free(kids);
    free(ns);
    free(seen);
    return s;
}

int main(int argc, char **argv)
{
    rt_begin("test_region_attach");
    unsigned counts[8] = {1, 64, 512};
    unsigned nc = 3;
    if (argc > 1) {
        nc = 0;
        for (int i = 1; i < argc && nc < 8; i++)
            counts[nc++] = (unsigned)atoi(argv[i]);
    }
    char json[4096];
    size_t jl = (size_t)snprintf(json, sizeof json, "{\"unit\":\"us\",\"results\":[");
    printf("%-10s %9s %10s %10s %10s %12s %10s\n", "mode", "processes", "median_us", "p99_us", "max_us",
           "last_us", "total_ms");
    for (unsigned c = 0; c < nc; c++) {
        for (int burst = 0; burst < 2; burst++) {
            char path[512], name[64];
            (void)snprintf(name, sizeof name, "attach-%u-%s", counts[c], burst ? "burst" : "seq");
            rt_path(path, sizeof path, name);
            rt_section(name);
            stats s = run(counts[c], burst, path);
            printf("%-10s %9u %10.1f %10.1f %10.1f %12.1f %10.1f\n", burst ? "burst" : "sequential", counts[c],
                   s.median_us, s.p99_us, s.max_us, burst ? 0.0 : s.last_us, s.total_ms);
            jl += (size_t)snprintf(json + jl, sizeof json - jl,
                                   "%s{\"mode\":\"%s\",\"processes\":%u,\"median\":%.1f,\"p99\":%.1f,\"max\":%.1f,"
                                   "\"totalMs\":%.1f}",
                                   c + burst ? "," : "", burst ? "burst" : "sequential", counts[c], s.median_us,
                                   s.p99_us, s.max_us, s.total_ms);
        }
    }
    (void)snprintf(json + jl, sizeof json - jl, "]}");
    printf("region_attach_json: %s\n", json);
    return rt_end();
}
