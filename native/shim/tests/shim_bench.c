/*
 * shim_bench.c: the hot paths libgpushare touches, on the fake driver, for bench/shim.bench.ts
 * (which runs it with and without LD_PRELOAD, interleaved, and prints the ratios).
 *
 *     shim_bench alloc N BYTES   N x (cuMemAlloc_v2 + cuMemFree_v2): ns per pair
 *     shim_bench launch N        N x cuLaunchKernel (an empty kernel on the fake), then a
 *                                stream synchronize: launches per second
 *     shim_bench launch_ab PAIRS [IMAGE FUNCTION]
 *                                what libgpushare adds to one launch, inside one process: an
 *                                empty kernel launched alternately through the driver's own
 *                                cuLaunchKernel (found with libc's dlsym, which libgpushare does
 *                                not interpose) and through the linked one (libgpushare's hook
 *                                when preloaded), PAIRS pairs of 1,000-launch batches in
 *                                alternating order; the median of the pairs' differences in
 *                                thread CPU time. Separate processes of one launch loop differ
 *                                by 20-30% on a GPU machine (whole runs fast or slow), far more
 *                                than the 2% budget; pairs inside one process do not. IMAGE and
 *                                FUNCTION: a cubin and its kernel for a real driver
 *                                (build/gpu/empty.cubin empty_kernel); the fake takes any image.
 *
 * Prints one JSON line. The fake's own costs (a mutex, an mmap per allocation, a queue per
 * launch) are in both runs; the difference is libgpushare's.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdbool.h>
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

static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef CUresult (*launch_fn)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                              CUstream, void **, void **);
typedef void *(*dlsym_fn)(void *, const char *);
#define AB_BATCH 1000
#define AB_MAX_PAIRS 10000

/* One batch of launches through f: CPU ns per launch; negative when a launch failed. */
static double ab_batch(launch_fn f, CUfunction k, CUstream s, void **args)
{
    double t0 = cpu_ns();
    for (int i = 0; i < AB_BATCH; i++)
        if (f(k, 1, 1, 1, 32, 1, 1, 0, s, args, NULL) != CUDA_SUCCESS)
            return -1;
    return (cpu_ns() - t0) / AB_BATCH;
}

static int launch_ab(long pairs, const char *image_path, const char *function)
{
    /* libc's dlsym: libgpushare exports an unversioned dlsym, libc's is GLIBC_2.34 (2.2.5 before) */
    dlsym_fn libc_dlsym = (dlsym_fn)dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
    if (libc_dlsym == NULL)
        libc_dlsym = (dlsym_fn)dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    launch_fn direct = libc_dlsym != NULL && h != NULL ? (launch_fn)libc_dlsym(h, "cuLaunchKernel") : NULL;
    if (direct == NULL || pairs < 1 || pairs > AB_MAX_PAIRS) {
        printf("{\"error\": \"no driver cuLaunchKernel through libc's dlsym, or PAIRS not in 1..%d\"}\n", AB_MAX_PAIRS);
        return 1;
    }
    launch_fn hooked = cuLaunchKernel;
    static char image[1 << 20] = "fake image";
    if (image_path != NULL) {
        FILE *fp = fopen(image_path, "rb");
        size_t got = fp ? fread(image, 1, sizeof image - 1, fp) : 0;
        if (fp)
            fclose(fp);
        if (got == 0) {
            printf("{\"error\": \"cannot read %s\"}\n", image_path);
            return 1;
        }
    }
    CUmodule mod;
    CUfunction k;
    CUstream s;
    CUdeviceptr nullp = 0;
    void *args[] = {&nullp};
    CHECK(cuModuleLoadData(&mod, image));
    CHECK(cuModuleGetFunction(&k, mod, function != NULL ? function : "empty"));
    CHECK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    for (int i = 0; i < 20; i++) /* warm both paths */
        if (ab_batch(direct, k, s, args) < 0 || ab_batch(hooked, k, s, args) < 0) {
            printf("{\"error\": \"a launch failed\"}\n");
            return 1;
        }
    CHECK(cuStreamSynchronize(s));
    static double d[AB_MAX_PAIRS], a[AB_MAX_PAIRS], b[AB_MAX_PAIRS];
    for (long p = 0; p < pairs; p++) {
        bool direct_first = p % 2 == 0;
        double x = ab_batch(direct_first ? direct : hooked, k, s, args);
        double y = ab_batch(direct_first ? hooked : direct, k, s, args);
        if (x < 0 || y < 0) {
            printf("{\"error\": \"a launch failed\"}\n");
            return 1;
        }
        a[p] = direct_first ? x : y;
        b[p] = direct_first ? y : x;
        d[p] = b[p] - a[p];
    }
    CHECK(cuStreamSynchronize(s));
    qsort(d, (size_t)pairs, sizeof d[0], cmp_double);
    qsort(a, (size_t)pairs, sizeof a[0], cmp_double);
    qsort(b, (size_t)pairs, sizeof b[0], cmp_double);
    printf("{\"interposed\": %s, \"pairs\": %ld, \"batch\": %d, \"direct_ns\": %.1f, \"hooked_ns\": %.1f, "
           "\"added_ns\": %.1f, \"added_ns_p25\": %.1f, \"added_ns_p75\": %.1f, \"added_pct\": %.2f}\n",
           direct != hooked ? "true" : "false", pairs, AB_BATCH, a[pairs / 2], b[pairs / 2], d[pairs / 2], d[pairs / 4],
           d[3 * pairs / 4], 100.0 * d[pairs / 2] / a[pairs / 2]);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[1], "alloc") != 0 && strcmp(argv[1], "launch") != 0 &&
                     strcmp(argv[1], "launch_ab") != 0)) {
        fprintf(stderr, "usage: shim_bench alloc N BYTES | shim_bench launch N | shim_bench launch_ab PAIRS [IMAGE FUNCTION]\n");
        return 2;
    }
    long n = strtol(argv[2], NULL, 10);
    CUdevice dev;
    CUcontext ctx;
    CHECK(cuInit(0));
    CHECK(cuDeviceGet(&dev, 0));
    CHECK(cuDevicePrimaryCtxRetain(&ctx, dev));
    CHECK(cuCtxSetCurrent(ctx));
    if (strcmp(argv[1], "launch_ab") == 0)
        return launch_ab(n, argc > 4 ? argv[3] : NULL, argc > 4 ? argv[4] : NULL);
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
