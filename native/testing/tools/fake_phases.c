/*
 * fake-phases: a stand-in GPU job that goes through phases, for the daemon's memory overcommit
 * and time-sharing tests on the fake driver. It fills MIB MiB of device memory with a pattern
 * from SEED, prints "ready", then runs its phases in order:
 *   idle:MS   no GPU call for MS milliseconds
 *   work:MS   a 1 ms kernel launched and waited for, over and over, for MS milliseconds
 *             (wall time: a swapped-out slice waits inside a launch)
 *   until:PATH  the same work until the file PATH exists (a test says when it has seen what
 *             it waits for, so a loaded machine's slowness cannot end the work first)
 *   grow:MIB  MIB MiB more device memory, filled from the pattern
 * printing "phase N ..." at each start and "work N launches in MS ms" at each work phase's end.
 * At the end it reads every buffer back: "result ok" when every byte survived, "result CORRUPT"
 * (exit 1) otherwise. Linked against the fake libcuda.so.1 beside it (rpath $ORIGIN).
 *
 *   fake-phases MIB SEED PHASE...
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gs_cuda.h"

#define MAX_BUFS 16

static void check(const char *what, CUresult r)
{
    if (r != CUDA_SUCCESS) {
        fprintf(stderr, "fake-phases: %s failed: CUresult %d\n", what, (int)r);
        exit(2);
    }
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static struct {
    CUdeviceptr dev;
    size_t bytes;
    unsigned int seed;
} bufs[MAX_BUFS];
static int nbufs;

static unsigned char pattern(size_t i, unsigned int seed)
{
    return (unsigned char)((i * 2654435761u + seed) >> 13);
}

static void add_buffer(size_t mib, unsigned int seed)
{
    if (nbufs == MAX_BUFS || mib == 0) {
        fprintf(stderr, "fake-phases: at most %d buffers of at least 1 MiB\n", MAX_BUFS);
        exit(2);
    }
    size_t bytes = mib << 20;
    unsigned char *host = malloc(bytes);
    if (host == NULL)
        exit(2);
    for (size_t i = 0; i < bytes; i++)
        host[i] = pattern(i, seed);
    check("cuMemAlloc_v2", cuMemAlloc_v2(&bufs[nbufs].dev, bytes));
    check("cuMemcpyHtoD_v2", cuMemcpyHtoD_v2(bufs[nbufs].dev, host, bytes));
    bufs[nbufs].bytes = bytes;
    bufs[nbufs].seed = seed;
    nbufs++;
    free(host);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: fake-phases MIB SEED PHASE... (idle:MS, work:MS, until:PATH, grow:MIB)\n");
        return 2;
    }
    unsigned int seed = (unsigned int)atol(argv[2]);
    CUcontext ctx;
    CUmodule mod;
    CUfunction kernel;
    check("cuInit", cuInit(0));
    check("cuCtxCreate_v2", cuCtxCreate_v2(&ctx, 0, 0));
    check("cuModuleLoadData", cuModuleLoadData(&mod, "fake"));
    check("cuModuleGetFunction", cuModuleGetFunction(&kernel, mod, "sleep_1000"));
    add_buffer((size_t)atol(argv[1]), seed);
    printf("ready\n");
    fflush(stdout);
    for (int p = 3; p < argc; p++) {
        long n = 0;
        printf("phase %d %s\n", p - 2, argv[p]);
        fflush(stdout);
        if (sscanf(argv[p], "idle:%ld", &n) == 1) {
            struct timespec ts = {n / 1000, (n % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        } else if (sscanf(argv[p], "work:%ld", &n) == 1) {
            double start = now_ms();
            long launches = 0;
            while (now_ms() - start < (double)n) {
                check("cuLaunchKernel", cuLaunchKernel(kernel, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL));
                check("cuCtxSynchronize", cuCtxSynchronize());
                launches++;
            }
            printf("work %ld launches in %.0f ms\n", launches, now_ms() - start);
        } else if (strncmp(argv[p], "until:", 6) == 0 && argv[p][6] != '\0') {
            double start = now_ms();
            long launches = 0;
            while (access(argv[p] + 6, F_OK) != 0) {
                check("cuLaunchKernel", cuLaunchKernel(kernel, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL));
                check("cuCtxSynchronize", cuCtxSynchronize());
                launches++;
            }
            printf("work %ld launches in %.0f ms\n", launches, now_ms() - start);
        } else if (sscanf(argv[p], "grow:%ld", &n) == 1 && n > 0) {
            add_buffer((size_t)n, seed + (unsigned int)p);
        } else {
            fprintf(stderr, "fake-phases: \"%s\" is not idle:MS, work:MS, until:PATH or grow:MIB\n", argv[p]);
            return 2;
        }
        fflush(stdout);
    }
    for (int b = 0; b < nbufs; b++) {
        unsigned char *back = malloc(bufs[b].bytes);
        if (back == NULL)
            return 2;
        check("cuMemcpyDtoH_v2", cuMemcpyDtoH_v2(back, bufs[b].dev, bufs[b].bytes));
        for (size_t i = 0; i < bufs[b].bytes; i++) {
            if (back[i] != pattern(i, bufs[b].seed)) {
                printf("result CORRUPT in buffer %d at %zu\n", b, i);
                return 1;
            }
        }
        free(back);
        check("cuMemFree_v2", cuMemFree_v2(bufs[b].dev));
    }
    check("cuCtxDestroy_v2", cuCtxDestroy_v2(ctx));
    printf("result ok\n");
    return 0;
}
