/*
 * remote_app.c: a driver-API program for the remote end-to-end tests (run_remote_tests.sh).
 * Linked against libcuda.so.1 by soname; the tests put the remote client first on the
 * library path, so every call crosses the wire to a worker on the fake driver.
 *
 *   remote_app full              every forwarded call, results and errors checked
 *   remote_app limit             1 MiB allocations until refused: prints "limit <bytes> <code> <total>"
 *   remote_app hold              64 MiB allocated and filled, prints "holding", waits to be killed
 *   remote_app bench             round trips (cuCtxGetDevice: median us), launches per second
 *                                (sleep_0, batched), copy bandwidth each way (256 MiB)
 *   remote_app lanes             copies at sizes around the chunk's and the lanes' stripe, unaligned,
 *                                from two threads at once, one on a stream of its own, one on the
 *                                per-thread default stream (GPUSHARE_REMOTE_LANES
 *                                decides how many lanes carry them), compared byte for byte
 *   remote_app lanekill          prints "copying", then 64 MiB copies both ways until one fails (the
 *                                test kills the worker meanwhile): it must be
 *                                CUDA_ERROR_DEVICE_UNAVAILABLE, and so must the next call
 *   remote_app compress          64 MiB (and 64 MiB + 12345 at +4099, async) of compressible and of
 *                                random bytes both ways, a 1 MiB and a 100-byte copy, compared byte
 *                                for byte (GPUSHARE_REMOTE_COMPRESS and _LANES decide the path)
 *   remote_app cbench KIND MIB   KIND zeros or random: MIB MiB each way, timed (best of 3 after
 *                                one untimed), "cbench KIND htod_gb_s X dtoh_gb_s Y"
 *   remote_app linkloss          prints "ready", waits for a line on stdin (the test kills the
 *                                worker meanwhile), then every call must fail with
 *                                CUDA_ERROR_DEVICE_UNAVAILABLE, quickly
 */
#define _DEFAULT_SOURCE
#include "gs_cuda.h"
#include "cuda_extra.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int failures;
#define EXPECT(call, want)                                                                          \
    do {                                                                                            \
        CUresult got_ = (call);                                                                     \
        if (got_ != (want)) {                                                                       \
            failures++;                                                                             \
            fprintf(stderr, "remote_app: FAIL line %d: %s = %d, want %d\n", __LINE__, #call, (int)got_, (int)(want)); \
        }                                                                                           \
    } while (0)
#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            failures++;                                                          \
            fprintf(stderr, "remote_app: FAIL line %d: %s\n", __LINE__, #cond);  \
        }                                                                        \
    } while (0)

static CUcontext start(void) {
    CUcontext ctx = NULL;
    EXPECT(cuInit(0), CUDA_SUCCESS);
    EXPECT(cuDevicePrimaryCtxRetain(&ctx, 0), CUDA_SUCCESS);
    EXPECT(cuCtxSetCurrent(ctx), CUDA_SUCCESS);
    return ctx;
}

static void *proc(const char *name, int version) {
    void *p = NULL;
    CUdriverProcAddressQueryResult st;
    EXPECT(cuGetProcAddress_v2(name, &p, version, 0, &st), CUDA_SUCCESS);
    return p;
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int full(void) {
    int version = 0, count = 0, sms = 0, sms2 = 0;
    EXPECT(cuDriverGetVersion(&version), CUDA_SUCCESS); /* before cuInit, as the driver allows */
    CHECK(version >= 12000);
    CUdeviceptr early;
    EXPECT(cuMemAlloc_v2(&early, 16), CUDA_ERROR_NOT_INITIALIZED);
    CUcontext ctx = start();
    EXPECT(cuDeviceGetCount(&count), CUDA_SUCCESS);
    CHECK(count >= 1);
    CUdevice dev = -1;
    EXPECT(cuDeviceGet(&dev, 0), CUDA_SUCCESS);
    CHECK(dev == 0);
    EXPECT(cuDeviceGet(&dev, count), CUDA_ERROR_INVALID_DEVICE);
    char name[128] = {0};
    EXPECT(cuDeviceGetName(name, sizeof name, 0), CUDA_SUCCESS);
    CHECK(strstr(name, "H100") != NULL); /* the fake's default machine */
    size_t total = 0;
    EXPECT(cuDeviceTotalMem_v2(&total, 0), CUDA_SUCCESS);
    CHECK(total >= (256ull << 20)); /* the whole fake GPU, or the slice under libgpushare */
    CUuuid uuid;
    memset(&uuid, 0, sizeof uuid);
    EXPECT(cuDeviceGetUuid_v2(&uuid, 0), CUDA_SUCCESS);
    CHECK(uuid.bytes[0] != 0 || uuid.bytes[1] != 0);
    EXPECT(cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0), CUDA_SUCCESS);
    EXPECT(cuDeviceGetAttribute(&sms2, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0), CUDA_SUCCESS); /* cached */
    CHECK(sms == 132 && sms2 == sms);
    CUcontext cur = NULL;
    EXPECT(cuCtxGetCurrent(&cur), CUDA_SUCCESS);
    CHECK(cur == ctx);
    EXPECT(cuCtxGetDevice(&dev), CUDA_SUCCESS);
    CHECK(dev == 0);

    /* Memory: a multi-chunk buffer each way, device to device, memset, async on a stream. */
    size_t free0 = 0, free1 = 0;
    EXPECT(cuMemGetInfo_v2(&free0, &total), CUDA_SUCCESS);
    const size_t n = (5u << 20) + 1;
    uint8_t *host = malloc(n), *back = malloc(n);
    for (size_t i = 0; i < n; i++) host[i] = (uint8_t)(i * 7 + 3);
    CUdeviceptr a = 0, b = 0;
    EXPECT(cuMemAlloc_v2(&a, n), CUDA_SUCCESS);
    EXPECT(cuMemAlloc_v2(&b, n), CUDA_SUCCESS);
    EXPECT(cuMemGetInfo_v2(&free1, &total), CUDA_SUCCESS);
    CHECK(free0 - free1 >= 2 * n);
    EXPECT(cuMemcpyHtoD_v2(a, host, n), CUDA_SUCCESS);
    memset(back, 0, n);
    EXPECT(cuMemcpyDtoH_v2(back, a, n), CUDA_SUCCESS);
    CHECK(memcmp(host, back, n) == 0);
    gsr_pfn_memcpy_dtod dtod = (gsr_pfn_memcpy_dtod)proc("cuMemcpyDtoD", 12000);
    gsr_pfn_memcpy_htod_async htod_async = (gsr_pfn_memcpy_htod_async)proc("cuMemcpyHtoDAsync", 12000);
    if (dtod) EXPECT(dtod(b, a, n), CUDA_SUCCESS);
    memset(back, 0, n);
    EXPECT(cuMemcpyDtoH_v2(back, b, n), CUDA_SUCCESS);
    CHECK(memcmp(host, back, n) == 0);
    EXPECT(cuMemsetD8_v2(b + 100, 0xab, 50), CUDA_SUCCESS);
    EXPECT(cuMemcpyDtoH_v2(back, b, 200), CUDA_SUCCESS);
    CHECK(back[99] == host[99] && back[100] == 0xab && back[149] == 0xab && back[150] == host[150]);
    CUstream stream = NULL;
    EXPECT(cuStreamCreate(&stream, 0), CUDA_SUCCESS);
    for (size_t i = 0; i < n; i++) host[i] = (uint8_t)(i * 13 + 1);
    if (htod_async) EXPECT(htod_async(a, host, n, stream), CUDA_SUCCESS);
    EXPECT(cuMemsetD8Async(a, 0x5a, 10, stream), CUDA_SUCCESS);
    EXPECT(cuStreamSynchronize(stream), CUDA_SUCCESS);
    EXPECT(cuMemcpyDtoH_v2(back, a, n), CUDA_SUCCESS);
    CHECK(back[9] == 0x5a && memcmp(host + 10, back + 10, n - 10) == 0);
    EXPECT(cuStreamQuery(stream), CUDA_SUCCESS);

    /* Bounds: ranges outside the session's allocations never reach the driver. */
    EXPECT(cuMemcpyHtoD_v2(a + n - 10, host, 20), CUDA_ERROR_INVALID_VALUE);
    EXPECT(cuMemcpyDtoH_v2(back, (CUdeviceptr)back, 16), CUDA_ERROR_INVALID_VALUE); /* a host address */
    EXPECT(cuMemsetD8_v2(a - 1, 0, 2), CUDA_ERROR_INVALID_VALUE);
    if (dtod) EXPECT(dtod(a, b + 1, n), CUDA_ERROR_INVALID_VALUE);
    EXPECT(cuMemFree_v2(a + 64), CUDA_ERROR_INVALID_VALUE);
    EXPECT(cuStreamSynchronize((CUstream)(uintptr_t)0x0400000000000999ull), CUDA_ERROR_INVALID_HANDLE);
    EXPECT(cuCtxSetCurrent((CUcontext)(uintptr_t)0x0100000000000777ull), CUDA_SUCCESS); /* checked at first use */
    EXPECT(cuCtxSynchronize(), CUDA_ERROR_INVALID_CONTEXT);
    EXPECT(cuCtxSetCurrent(ctx), CUDA_SUCCESS);

    /* Modules and launches: the fake's sleep kernel reads its microseconds from the buffer. */
    CUmodule mod = NULL;
    CUfunction fn = NULL, sleep0 = NULL;
    EXPECT(cuModuleLoadData(&mod, "// remote_app\n.version 8.0\n.target sm_90\n"), CUDA_SUCCESS);
    EXPECT(cuModuleGetFunction(&fn, mod, "sleep"), CUDA_SUCCESS);
    EXPECT(cuModuleGetFunction(&sleep0, mod, "sleep_0"), CUDA_SUCCESS);
    CUevent e0 = NULL, e1 = NULL;
    EXPECT(cuEventCreate(&e0, 0), CUDA_SUCCESS);
    EXPECT(cuEventCreate(&e1, 0), CUDA_SUCCESS);
    uint64_t us = 3000;
    size_t psize = sizeof us;
    void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, &us, CU_LAUNCH_PARAM_BUFFER_SIZE, &psize, CU_LAUNCH_PARAM_END};
    EXPECT(cuEventRecord(e0, stream), CUDA_SUCCESS);
    EXPECT(cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, stream, NULL, extra), CUDA_SUCCESS);
    EXPECT(cuEventRecord(e1, stream), CUDA_SUCCESS);
    EXPECT(cuEventSynchronize(e1), CUDA_SUCCESS);
    EXPECT(cuEventQuery(e1), CUDA_SUCCESS);
    float ms = 0;
    EXPECT(cuEventElapsedTime(&ms, e0, e1), CUDA_SUCCESS);
    CHECK(ms >= 2.9f && ms < 100.0f);
    void *args[] = {&us};
    EXPECT(cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, stream, args, NULL), CUDA_ERROR_NOT_SUPPORTED); /* the fake has no cuFuncGetParamInfo */
    double t0 = now_ms();
    for (int i = 0; i < 2000; i++) EXPECT(cuLaunchKernel(sleep0, 1, 1, 1, 1, 1, 1, 0, stream, NULL, NULL), CUDA_SUCCESS);
    EXPECT(cuStreamSynchronize(stream), CUDA_SUCCESS);
    printf("remote_app: 2000 batched launches + sync in %.1f ms\n", now_ms() - t0);

    /* An error of a call that returns nothing shows at the next synchronizing call, once. */
    EXPECT(cuLaunchKernel(sleep0, 1, 1, 1, 1, 1, 1, 0, (CUstream)(uintptr_t)0x0400000000000998ull, NULL, NULL), CUDA_SUCCESS);
    EXPECT(cuCtxSynchronize(), CUDA_ERROR_INVALID_HANDLE);
    EXPECT(cuCtxSynchronize(), CUDA_SUCCESS);

    /* A created context: current after creation, its memory its own, gone with it. */
    CUcontext mine = NULL;
    CUdeviceptr c = 0;
    EXPECT(cuCtxCreate_v2(&mine, 0, 0), CUDA_SUCCESS);
    EXPECT(cuCtxGetCurrent(&cur), CUDA_SUCCESS);
    CHECK(cur == mine && mine != ctx);
    EXPECT(cuMemAlloc_v2(&c, 4096), CUDA_SUCCESS);
    EXPECT(cuCtxDestroy_v2(mine), CUDA_SUCCESS);
    EXPECT(cuCtxSetCurrent(ctx), CUDA_SUCCESS);
    EXPECT(cuMemsetD8_v2(c, 0, 16), CUDA_ERROR_INVALID_VALUE); /* freed with its context */

    /* Local answers. */
    void *p = NULL;
    EXPECT(cuGetProcAddress("cuMemAlloc", &p, 12000, 0), CUDA_SUCCESS);
    CHECK(p == (void *)&cuMemAlloc_v2);
    EXPECT(cuGetProcAddress("cuNoSuchThing", &p, 12000, 0), CUDA_ERROR_NOT_FOUND);
    const char *str = NULL;
    EXPECT(cuGetErrorName(CUDA_ERROR_OUT_OF_MEMORY, &str), CUDA_SUCCESS);
    CHECK(str && strcmp(str, "CUDA_ERROR_OUT_OF_MEMORY") == 0);
    EXPECT(cuMemAllocManaged(&c, 4096, 1), CUDA_ERROR_NOT_SUPPORTED);

    EXPECT(cuEventDestroy_v2(e0), CUDA_SUCCESS);
    EXPECT(cuEventDestroy_v2(e1), CUDA_SUCCESS);
    EXPECT(cuEventQuery(e1), CUDA_ERROR_INVALID_HANDLE);
    EXPECT(cuStreamDestroy_v2(stream), CUDA_SUCCESS);
    EXPECT(cuModuleUnload(mod), CUDA_SUCCESS);
    EXPECT(cuMemFree_v2(a), CUDA_SUCCESS);
    EXPECT(cuMemFree_v2(a), CUDA_ERROR_INVALID_VALUE); /* twice */
    EXPECT(cuMemFree_v2(b), CUDA_SUCCESS);
    EXPECT(cuDevicePrimaryCtxRelease_v2(0), CUDA_SUCCESS);
    free(host);
    free(back);
    if (failures) return 1;
    printf("remote_app full ok\n");
    return 0;
}

static int limit(void) {
    start();
    size_t free_bytes = 0, total = 0, got = 0;
    EXPECT(cuMemGetInfo_v2(&free_bytes, &total), CUDA_SUCCESS);
    CUresult rc = CUDA_SUCCESS;
    CUdeviceptr p;
    while (got < (64ull << 30) && (rc = cuMemAlloc_v2(&p, 1u << 20)) == CUDA_SUCCESS) got += 1u << 20;
    printf("limit %zu %d %zu\n", got, (int)rc, total);
    return failures ? 1 : 0;
}

static int hold(void) {
    start();
    CUdeviceptr p;
    size_t n = 64u << 20;
    uint8_t *host = calloc(1, n);
    EXPECT(cuMemAlloc_v2(&p, n), CUDA_SUCCESS);
    EXPECT(cuMemcpyHtoD_v2(p, host, n), CUDA_SUCCESS);
    printf("holding\n");
    fflush(stdout);
    for (;;) pause();
    return 0; /* not reached: the test kills this process */
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int bench(void) {
    start();
    enum { ROUNDS = 20000, LAUNCHES = 100000 };
    static double t[ROUNDS];
    CUdevice dev;
    for (int i = 0; i < 100; i++) EXPECT(cuCtxGetDevice(&dev), CUDA_SUCCESS);
    for (int i = 0; i < ROUNDS; i++) {
        double t0 = now_ms();
        EXPECT(cuCtxGetDevice(&dev), CUDA_SUCCESS);
        t[i] = (now_ms() - t0) * 1e3;
    }
    qsort(t, ROUNDS, sizeof t[0], cmp_double);
    printf("bench round_trip_us median %.1f p99 %.1f\n", t[ROUNDS / 2], t[ROUNDS * 99 / 100]);
    CUmodule mod;
    CUfunction k;
    EXPECT(cuModuleLoadData(&mod, "// bench\n"), CUDA_SUCCESS);
    EXPECT(cuModuleGetFunction(&k, mod, "sleep_0"), CUDA_SUCCESS);
    double t0 = now_ms();
    for (int i = 0; i < LAUNCHES; i++) EXPECT(cuLaunchKernel(k, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL), CUDA_SUCCESS);
    EXPECT(cuCtxSynchronize(), CUDA_SUCCESS);
    printf("bench launches_per_s %.0f\n", LAUNCHES / ((now_ms() - t0) / 1e3));
    size_t n = 256u << 20;
    uint8_t *host = malloc(n);
    memset(host, 1, n);
    CUdeviceptr p;
    EXPECT(cuMemAlloc_v2(&p, n), CUDA_SUCCESS);
    /* Once untimed: the first touch of the fake's device pages (page faults) is not the link's. */
    EXPECT(cuMemcpyHtoD_v2(p, host, n), CUDA_SUCCESS);
    t0 = now_ms();
    EXPECT(cuMemcpyHtoD_v2(p, host, n), CUDA_SUCCESS);
    double htod = now_ms() - t0;
    t0 = now_ms();
    EXPECT(cuMemcpyDtoH_v2(host, p, n), CUDA_SUCCESS);
    double dtoh = now_ms() - t0;
    printf("bench htod_gb_s %.2f dtoh_gb_s %.2f\n", n / htod / 1e6, n / dtoh / 1e6);
    free(host);
    return failures ? 1 : 0;
}

/* One thread's copies on its own stream: host to device (async, then a synchronous one), back,
 * compared; sizes around the 4 MiB chunk and the stripe over the lanes, at an odd offset. */
typedef struct lanes_arg {
    CUcontext ctx;
    unsigned seed;
    int failed;
} lanes_arg;

static void *lanes_thread(void *p) {
    lanes_arg *a = p;
    const size_t chunk = 4u << 20;
    const size_t sizes[] = {chunk - 1, chunk, chunk + 1, 2 * chunk, 4 * chunk + 1, 8 * chunk - 3, 17 * chunk + 3};
    const size_t cap = 17 * chunk + 3 + 4099;
    uint8_t *src = malloc(cap), *back = malloc(cap);
    CUdeviceptr d = 0;
    CUstream st = NULL;
    /* The second thread copies on the per-thread default stream (the worker waits for that
     * stream's earlier work before striping, as the lanes' threads have their own). */
    if (!src || !back || cuCtxSetCurrent(a->ctx) != CUDA_SUCCESS ||
        (a->seed == 2 ? (st = CU_STREAM_PER_THREAD, CUDA_SUCCESS) : cuStreamCreate(&st, 0)) != CUDA_SUCCESS ||
        cuMemAlloc_v2(&d, cap) != CUDA_SUCCESS) {
        a->failed = 1;
        free(src);
        free(back);
        return NULL;
    }
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0] && !a->failed; i++)
        for (size_t at = 0; at <= 4099 && !a->failed; at += 4099) {
            size_t n = sizes[i];
            for (size_t b = 0; b < n; b++) src[b] = (uint8_t)((b + a->seed + i) * 2654435761u >> 11);
            memset(back, 0xee, n);
            int async = (i + at) % 2;
            CUresult rc = async ? cuMemcpyHtoDAsync_v2(d + at, src, n, st) : cuMemcpyHtoD_v2(d + at, src, n);
            if (rc == CUDA_SUCCESS && async) rc = cuStreamSynchronize(st);
            if (rc == CUDA_SUCCESS) rc = async ? cuMemcpyDtoHAsync_v2(back, d + at, n, st) : cuMemcpyDtoH_v2(back, d + at, n);
            if (rc == CUDA_SUCCESS) rc = cuStreamSynchronize(st);
            if (rc != CUDA_SUCCESS || memcmp(src, back, n) != 0) {
                fprintf(stderr, "remote_app: FAIL lanes: thread %u, %zu bytes at +%zu: %d%s\n", a->seed, n, at, (int)rc,
                        rc == CUDA_SUCCESS ? ", data differs" : "");
                a->failed = 1;
            }
        }
    /* Out of bounds over the lanes: refused, nothing written. */
    if (!a->failed && cuMemcpyHtoD_v2(d + 4100, src, 17 * chunk + 3) != CUDA_ERROR_INVALID_VALUE) a->failed = 1;
    if (!a->failed && cuMemcpyDtoH_v2(back, d + 4100, 17 * chunk + 3) != CUDA_ERROR_INVALID_VALUE) a->failed = 1;
    if (!a->failed && (cuMemcpyDtoH_v2(back, d + 4099, 17 * chunk + 3) != CUDA_SUCCESS || memcmp(src, back, 17 * chunk + 3) != 0)) {
        fprintf(stderr, "remote_app: FAIL lanes: a refused copy changed the memory\n");
        a->failed = 1;
    }
    (void)cuMemFree_v2(d);
    if (st != CU_STREAM_PER_THREAD) (void)cuStreamDestroy_v2(st);
    free(src);
    free(back);
    return NULL;
}

static int lanes(void) {
    CUcontext ctx = start();
    lanes_arg args[2] = {{ctx, 1, 0}, {ctx, 2, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) CHECK(pthread_create(&t[i], NULL, lanes_thread, &args[i]) == 0);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    CHECK(!args[0].failed && !args[1].failed);
    EXPECT(cuCtxSynchronize(), CUDA_SUCCESS);
    if (failures) return 1;
    printf("remote_app lanes ok\n");
    return 0;
}

static int lanekill(void) {
    start();
    size_t n = 64u << 20;
    uint8_t *host = malloc(n);
    CUdeviceptr p;
    EXPECT(cuMemAlloc_v2(&p, n), CUDA_SUCCESS);
    if (!host || failures) return 1;
    memset(host, 3, n);
    printf("copying\n");
    fflush(stdout);
    CUresult rc = CUDA_SUCCESS;
    double t0 = now_ms();
    for (int i = 0; rc == CUDA_SUCCESS && now_ms() - t0 < 60000; i++)
        rc = i % 2 ? cuMemcpyDtoH_v2(host, p, n) : cuMemcpyHtoD_v2(p, host, n);
    EXPECT(rc, CUDA_ERROR_DEVICE_UNAVAILABLE);
    EXPECT(cuCtxSynchronize(), CUDA_ERROR_DEVICE_UNAVAILABLE);
    free(host);
    if (failures) return 1;
    printf("lanekill ok\n");
    return 0;
}

/* Compressible: runs of a few byte values (text-like, not all zeros); random: xorshift. */
static void fill(uint8_t *b, size_t n, int random, uint64_t seed) {
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < n; i++) {
        if (random) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b[i] = (uint8_t)(x >> 24);
        } else {
            b[i] = (uint8_t)((i / 97) % 5 == 0 ? 'a' + (i % 7) : 0);
        }
    }
}

static int compress_case(CUdeviceptr d, uint8_t *src, uint8_t *back, size_t n, size_t at, int random, int async, CUstream st) {
    fill(src, n, random, n + at);
    memset(back, 0xee, n);
    CUresult rc = async ? cuMemcpyHtoDAsync_v2(d + at, src, n, st) : cuMemcpyHtoD_v2(d + at, src, n);
    if (rc == CUDA_SUCCESS) rc = async ? cuMemcpyDtoHAsync_v2(back, d + at, n, st) : cuMemcpyDtoH_v2(back, d + at, n);
    if (rc == CUDA_SUCCESS) rc = cuStreamSynchronize(st);
    if (rc != CUDA_SUCCESS || memcmp(src, back, n) != 0) {
        fprintf(stderr, "remote_app: FAIL compress: %s %zu bytes at +%zu%s: %d%s\n", random ? "random" : "compressible", n, at,
                async ? " async" : "", (int)rc, rc == CUDA_SUCCESS ? ", data differs" : "");
        return 1;
    }
    return 0;
}

static int compress(void) {
    start();
    const size_t big = 64u << 20, cap = big + 12345 + 4099;
    uint8_t *src = malloc(cap), *back = malloc(cap);
    CUdeviceptr d;
    CUstream st;
    EXPECT(cuMemAlloc_v2(&d, cap), CUDA_SUCCESS);
    EXPECT(cuStreamCreate(&st, 0), CUDA_SUCCESS);
    if (!src || !back || failures) return 1;
    for (int random = 0; random <= 1; random++) {
        failures += compress_case(d, src, back, big, 0, random, 0, st);
        failures += compress_case(d, src, back, big + 12345, 4099, random, 1, st);
        failures += compress_case(d, src, back, 1u << 20, 7, random, 0, st);
        failures += compress_case(d, src, back, 100, 3, random, 0, st);
    }
    /* Out of bounds: refused, nothing written, the stream still in step. */
    failures += compress_case(d, src, back, big + 12345, 4099, 1, 1, st);
    fill(src, big, 0, 1);
    EXPECT(cuMemcpyHtoD_v2(d + 4100 + 12345, src, big), CUDA_ERROR_INVALID_VALUE);
    EXPECT(cuMemcpyDtoH_v2(back, d + 4099, big + 12345), CUDA_SUCCESS);
    fill(src, big + 12345, 1, big + 12345 + 4099);
    CHECK(memcmp(src, back, big + 12345) == 0);
    EXPECT(cuStreamDestroy_v2(st), CUDA_SUCCESS);
    EXPECT(cuMemFree_v2(d), CUDA_SUCCESS);
    free(src);
    free(back);
    if (failures) return 1;
    printf("remote_app compress ok\n");
    return 0;
}

static int cbench(const char *kind, const char *mib) {
    start();
    size_t n = (size_t)strtoul(mib, NULL, 10) << 20;
    int random = !strcmp(kind, "random");
    uint8_t *host = malloc(n);
    CUdeviceptr p;
    EXPECT(cuMemAlloc_v2(&p, n), CUDA_SUCCESS);
    if (!host || n == 0 || failures) return 1;
    fill(host, n, random, 1);
    if (!random) memset(host, 0, n);
    double best[2] = {1e30, 1e30};
    for (int round = 0; round < 4; round++) {
        double t0 = now_ms();
        EXPECT(cuMemcpyHtoD_v2(p, host, n), CUDA_SUCCESS);
        double t1 = now_ms();
        EXPECT(cuMemcpyDtoH_v2(host, p, n), CUDA_SUCCESS);
        double t2 = now_ms();
        if (round == 0) continue; /* the fake's first touch of its pages */
        if (t1 - t0 < best[0]) best[0] = t1 - t0;
        if (t2 - t1 < best[1]) best[1] = t2 - t1;
    }
    printf("cbench %s htod_gb_s %.2f dtoh_gb_s %.2f\n", kind, n / best[0] / 1e6, n / best[1] / 1e6);
    free(host);
    return failures ? 1 : 0;
}

static int linkloss(void) {
    start();
    CUdeviceptr p;
    uint8_t buf[64] = {0};
    EXPECT(cuMemAlloc_v2(&p, sizeof buf), CUDA_SUCCESS);
    printf("ready\n");
    fflush(stdout);
    char line[16];
    if (!fgets(line, sizeof line, stdin)) return 1;
    double t0 = now_ms();
    EXPECT(cuMemcpyHtoD_v2(p, buf, sizeof buf), CUDA_ERROR_DEVICE_UNAVAILABLE);
    EXPECT(cuCtxSynchronize(), CUDA_ERROR_DEVICE_UNAVAILABLE);
    EXPECT(cuLaunchKernel(NULL, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL), CUDA_ERROR_INVALID_HANDLE);
    CHECK(now_ms() - t0 < 5000);
    if (failures) return 1;
    printf("linkloss ok\n");
    return 0;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "full";
    if (!strcmp(mode, "full")) return full();
    if (!strcmp(mode, "limit")) return limit();
    if (!strcmp(mode, "hold")) return hold();
    if (!strcmp(mode, "linkloss")) return linkloss();
    if (!strcmp(mode, "bench")) return bench();
    if (!strcmp(mode, "lanes")) return lanes();
    if (!strcmp(mode, "lanekill")) return lanekill();
    if (!strcmp(mode, "compress")) return compress();
    if (!strcmp(mode, "cbench") && argc == 4) return cbench(argv[2], argv[3]);
    fprintf(stderr, "remote_app: unknown mode %s\n", mode);
    return 2;
}
