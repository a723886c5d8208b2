/* alloc_bench.c: what a device allocation and its free cost the calling program, per size (1 MiB
 * to 1 GiB), for the overhead harness's `alloc` workload (scripts/gpu-check-overhead.sh): with
 * GPUSHARE_SWAP set (variant memswap) every cuMemAlloc_v2 of 2 MiB and up is four driver calls
 * (reserve, create, map, set access) and its free waits for the context and unmaps (native/shim/
 * SWAP.md), against one call each without. Wall time (the driver's own work included: that is
 * what a program waits), per call: the median of BATCHES batches of PAIRS allocations then their
 * frees (frees in reverse order, as a caching allocator's trim would), after one warm-up batch.
 * Prints one JSON line: {"alloc_us": {"1": us, ...}, "free_us": {...}} keyed by MiB.
 * Built with gcc against native/include/gs_cuda.h and linked by soname against the fake
 * libcuda.so.1, so it runs on the fake here and on the real driver on a GPU machine. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "gs_cuda.h"

#define BATCHES 7
#define PAIRS 16

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* One batch of `pairs` allocations of `bytes`, then their frees: each's mean per call, in us. */
static int batch(size_t bytes, int pairs, double *alloc_us, double *free_us)
{
    CUdeviceptr p[PAIRS];
    double t0 = now_us();
    for (int i = 0; i < pairs; i++) {
        CUresult r = cuMemAlloc_v2(&p[i], bytes);
        if (r != CUDA_SUCCESS) {
            printf("{\"error\": \"cuMemAlloc_v2 of %zu bytes -> %d\"}\n", bytes, (int)r);
            for (int k = i - 1; k >= 0; k--)
                (void)cuMemFree_v2(p[k]);
            return 1;
        }
    }
    double t1 = now_us();
    for (int i = pairs - 1; i >= 0; i--)
        if (cuMemFree_v2(p[i]) != CUDA_SUCCESS) {
            printf("{\"error\": \"cuMemFree_v2 failed\"}\n");
            return 1;
        }
    double t2 = now_us();
    *alloc_us = (t1 - t0) / pairs;
    *free_us = (t2 - t1) / pairs;
    return 0;
}

int main(void)
{
    static const int mib[] = {1, 4, 16, 64, 256, 1024};
    enum { NSIZES = sizeof mib / sizeof mib[0] };
    CUdevice dev;
    CUcontext ctx;
    if (cuInit(0) != CUDA_SUCCESS || cuDeviceGet(&dev, 0) != CUDA_SUCCESS || cuDevicePrimaryCtxRetain(&ctx, dev) != CUDA_SUCCESS ||
        cuCtxSetCurrent(ctx) != CUDA_SUCCESS) {
        printf("{\"error\": \"no CUDA device\"}\n");
        return 1;
    }
    size_t free_b = 0, total = 0;
    (void)cuMemGetInfo_v2(&free_b, &total);
    double a[NSIZES], f[NSIZES];
    for (int s = 0; s < NSIZES; s++) {
        size_t bytes = (size_t)mib[s] << 20;
        /* at most PAIRS, 4 GiB (well within the harness's 16 GiB memory limit) and half the free memory */
        size_t cap = free_b / 2 < ((size_t)4 << 30) ? free_b / 2 : ((size_t)4 << 30);
        int pairs = cap / bytes < PAIRS ? (int)(cap / bytes) : PAIRS;
        if (pairs < 1)
            pairs = 1;
        double ab[BATCHES], fb[BATCHES], wa, wf;
        if (batch(bytes, pairs, &wa, &wf) != 0)
            return 1;
        for (int b = 0; b < BATCHES; b++)
            if (batch(bytes, pairs, &ab[b], &fb[b]) != 0)
                return 1;
        a[s] = median(ab, BATCHES);
        f[s] = median(fb, BATCHES);
    }
    printf("{\"alloc_us\": {");
    for (int s = 0; s < NSIZES; s++)
        printf("%s\"%d\": %.2f", s ? ", " : "", mib[s], a[s]);
    printf("}, \"free_us\": {");
    for (int s = 0; s < NSIZES; s++)
        printf("%s\"%d\": %.2f", s ? ", " : "", mib[s], f[s]);
    printf("}}\n");
    (void)cuDevicePrimaryCtxRelease(dev);
    return 0;
}
