/*
 * region_fixture.c: makes a region with known contents for the TypeScript reader's test.
 * Usage: region_fixture PATH. Creates PATH (limits: device 0 = 64 MiB, compute 40%,
 * priority 2; device 1 = 1 GiB), then two processes allocate:
 *   parent: dev 0: context 3000000, alloc 1048576, and one reservation of 4096 in flight
 *           (granted, not committed); dev 0 compute: 10 kernels, busy 5000 ns, share 1/2
 *   child:  dev 1: vmm 2097152, array 12345, pool 777, host 999999;
 *           dev 0: alloc 65536; dev 1 compute: 3 kernels, throttle 42 ns; dev 1: SM partition of 64
 * Prints one JSON line {"ready":true,"parent":PID,"child":PID} when both are done and keeps
 * both attached until stdin closes (or a line is read), then detaches and exits 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gs_region.h"

static void must(int rc, const char *what)
{
    if (rc != GS_REGION_OK) {
        fprintf(stderr, "region_fixture: %s: %s\n", what, gs_region_strerror(rc));
        exit(1);
    }
}

static void alloc(uint32_t dev, gs_region_kind kind, uint64_t bytes)
{
    gs_region_reservation r;
    must(gs_region_reserve(dev, kind, bytes, &r, NULL), "reserve");
    must(gs_region_commit(&r), "commit");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: region_fixture PATH\n");
        return 2;
    }
    gs_region_options o = {.path = argv[1], .has_limits = 1, .device_count = 2};
    o.mem_limit[0] = 64u << 20;
    o.core_limit_pct[0] = 40;
    o.priority[0] = 2;
    o.mem_limit[1] = 1u << 30;
    char err[256];
    int rc = gs_region_open(&o, err, sizeof err);
    if (rc != GS_REGION_OK) {
        fprintf(stderr, "region_fixture: %s\n", err);
        return 1;
    }
    alloc(0, GS_REGION_KIND_CONTEXT, 3000000);
    alloc(0, GS_REGION_KIND_ALLOC, 1048576);
    gs_region_reservation pending;
    must(gs_region_reserve(0, GS_REGION_KIND_ALLOC, 4096, &pending, NULL), "reserve in flight");
    must(gs_region_compute_add(0, 10, 5000, 0), "compute");
    must(gs_region_compute_set_share(0, GS_REGION_SHARE_ONE / 2), "share");
    must(gs_region_compute_set_policy(0, GS_REGION_SHARE_ONE / 4, 2, GS_REGION_POLICY_HARD), "policy");

    int ready[2], quit[2];
    if (pipe(ready) != 0 || pipe(quit) != 0) {
        perror("pipe");
        return 1;
    }
    fflush(stdout);
    pid_t child = fork();
    if (child < 0) {
        perror("fork");
        return 1;
    }
    if (child == 0) {
        if (close(quit[1]) != 0 || close(ready[0]) != 0) /* or the quit pipe never reads EOF */
            _exit(1);
        alloc(1, GS_REGION_KIND_VMM, 2097152);
        alloc(1, GS_REGION_KIND_ARRAY, 12345);
        alloc(1, GS_REGION_KIND_POOL, 777);
        alloc(1, GS_REGION_KIND_HOST, 999999);
        alloc(0, GS_REGION_KIND_ALLOC, 65536);
        must(gs_region_compute_add(1, 3, 0, 42), "compute");
        must(gs_region_partition_set(1, 64), "partition");
        char c = 1;
        if (write(ready[1], &c, 1) != 1)
            _exit(1);
        if (read(quit[0], &c, 1) < 0)
            _exit(1);
        _exit(gs_region_close() == GS_REGION_OK ? 0 : 1);
    }
    if (close(quit[0]) != 0 || close(ready[1]) != 0) {
        perror("close");
        return 1;
    }
    char c;
    if (read(ready[0], &c, 1) != 1) {
        fprintf(stderr, "region_fixture: child failed\n");
        return 1;
    }
    printf("{\"ready\":true,\"parent\":%d,\"child\":%d}\n", (int)getpid(), (int)child);
    fflush(stdout);
    char line[64];
    if (fgets(line, sizeof line, stdin) == NULL && ferror(stdin))
        perror("stdin");
    if (close(quit[1]) != 0)
        perror("close");
    int st = 0;
    if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        fprintf(stderr, "region_fixture: child exited badly\n");
        return 1;
    }
    must(gs_region_cancel(&pending), "cancel");
    must(gs_region_close(), "close");
    return 0;
}
