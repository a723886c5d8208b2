/*
 * shim_bench.c: the hot paths libgpushare touches, on the fake driver, for bench/shim.bench.ts
 * (which runs it with and without LD_PRELOAD, interleaved, and prints the ratios).
 *
 *     shim_bench alloc N BYTES   N x (cuMemAlloc_v2 + cuMemFree_v2): ns per pair
 *     shim_bench launch N        N x cuLaunchKernel (an empty kernel on the fake), then a
 *                                stream synchronize: launches per second
 *
 * Prints one JSON line. The fake's own costs (a mutex, an mmap per allocation, a queue per
 * launch) are in both runs; the difference is libgpushare's.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gs_cuda.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#define CHECK(call)                                                                      \
    do {                                                                                 \
        CUresult r_ = (call);                                                            \
        if (r_ != CUDA_SUCCESS) {                                                        \
            printf("{\"error\": \"%s = %d\"}\n", #call, (int)r_);                        \
            return 1;                                                                    \
        }                                                                                \
    } while (0)

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[1], "alloc") != 0 && strcmp(argv[1], "launch") != 0)) {
        fprintf(stderr, "usage: shim_bench alloc N BYTES | shim_bench launch N\n");
        return 2;
    }
    long n = strtol(argv[2], NULL, 10);
    CUdevice dev;
    CUcontext ctx;
    CHECK(cuInit(0));
    CHECK(cuDeviceGet(&dev, 0));
    CHECK(cuDevicePrimaryCtxRetain(&ctx, dev));
    CHECK(cuCtxSetCurrent(ctx));
    if (strcmp(argv[1], "alloc") == 0) {
        size_t bytes = argc > 3 ? (size_t)strtoull(argv[3], NULL, 10) : 1 << 20;
        CUdeviceptr p;
        for (long i = 0; i < n / 10; i++) { /* warm-up */
            CHECK(cuMemAlloc_v2(&p, bytes));
            CHECK(cuMemFree_v2(p));
        }
        double t0 = now_s();
        for (long i = 0; i < n; i++) {
            CHECK(cuMemAlloc_v2(&p, bytes));
            CHECK(cuMemFree_v2(p));
        }
        printf("{\"alloc_free_ns\": %.1f}\n", (now_s() - t0) * 1e9 / (double)n);
        return 0;
    }
    CUmodule mod;
    CUfunction f;
    CHECK(cuModuleLoadData(&mod, "fake image"));
    CHECK(cuModuleGetFunction(&f, mod, "empty"));
    for (long i = 0; i < n / 10; i++)
        CHECK(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, NULL, NULL));
    CHECK(cuStreamSynchronize(NULL));
    double t0 = now_s();
    for (long i = 0; i < n; i++)
        CHECK(cuLaunchKernel(f, 1, 1, 1, 32, 1, 1, 0, NULL, NULL, NULL));
    CHECK(cuStreamSynchronize(NULL));
    printf("{\"launches_per_s\": %.0f}\n", (double)n / (now_s() - t0));
    return 0;
}
