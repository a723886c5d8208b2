/*
 * partition_test.c: GPUSHARE_ISOLATION=sm-partition against the fake libcuda, one scenario
 * per run (run_partition_tests.sh sets the environment each expects):
 *
 *     partition_test SCENARIO MODE [EXPECTED_SMS [DEVICE [EXPECTED_FIRST_SM]]]
 *
 * MODE: "direct" (linked against libcuda) or "procaddr" (every function through the
 * driver's cuGetProcAddress_v2, as the CUDA runtime reaches the driver). Where kernels land
 * is read from the fake's launch log (GPUSHARE_FAKE_CUDA_LAUNCH_LOG: one line per launch
 * with the SMs of its context); the SMs published for the process, from the region file
 * (GPUSHARE_REGION), read through the layout, independently of libgpushare.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gpushare_region.h"
#include "gs_cuda.h"
#include "test_check.h"

#define MIB (1024ull * 1024ull)


#define API_LIST(X) \
    X(cuInit) X(cuDeviceGet) X(cuCtxCreate_v2) X(cuCtxDestroy_v2) X(cuCtxSetCurrent) X(cuCtxGetCurrent) \
    X(cuCtxPushCurrent_v2) X(cuCtxPopCurrent_v2) X(cuDevicePrimaryCtxRetain) X(cuDevicePrimaryCtxRelease_v2) \
    X(cuDevicePrimaryCtxReset_v2) X(cuDevicePrimaryCtxGetState) X(cuCtxGetDevResource) X(cuMemAlloc_v2) \
    X(cuMemFree_v2) X(cuMemGetInfo_v2) X(cuModuleLoadData) X(cuModuleGetFunction) X(cuLaunchKernel) \
    X(cuCtxSynchronize) X(cuStreamCreate) X(cuStreamDestroy_v2)

static struct api {
#define API_FIELD(name) __typeof__(&name) name;
    API_LIST(API_FIELD)
} A;

static void load_api(void)
{
    if (strcmp(mode, "direct") == 0) {
#define API_DIRECT(name) A.name = &name;
        API_LIST(API_DIRECT)
        return;
    }
    void *h = dlopen("libcuda.so.1", RTLD_NOW);
    check(h != NULL, "dlopen libcuda.so.1");
    __typeof__(&cuGetProcAddress_v2) gpa = (__typeof__(&cuGetProcAddress_v2))dlsym(h, "cuGetProcAddress_v2");
    check(gpa != NULL, "cuGetProcAddress_v2");
    CUdriverProcAddressQueryResult st;
    char buf[64];
#define API_PROC(name) \
    (void)gpa(proc_name(#name, buf, sizeof buf), (void **)&A.name, 13000, 0, &st); \
    check(A.name != NULL, "cuGetProcAddress(%s)", buf);
    API_LIST(API_PROC)
    (void)gpa("cuCtxCreate", (void **)&A.cuCtxCreate_v2, 11000, 0, &st); /* 13000 is _v4 */
    (void)gpa("cuCtxSynchronize", (void **)&A.cuCtxSynchronize, 12000, 0, &st); /* 13000 is _v2 (takes a context) */
}

/* ---- what the fake and the region say ------------------------------------------------- */
static unsigned ctx_sms(CUcontext c)
{
    CUdevResource r;
    memset(&r, 0, sizeof r);
    CUresult e = A.cuCtxGetDevResource(c, &r, CU_DEV_RESOURCE_TYPE_SM);
    check(e == CUDA_SUCCESS, "cuCtxGetDevResource: %d", e);
    return r.sm.smCount;
}

static unsigned current_sms(void)
{
    CUcontext c = NULL;
    check(A.cuCtxGetCurrent(&c) == CUDA_SUCCESS && c != NULL, "a current context");
    return c ? ctx_sms(c) : 0;
}

static unsigned last_first; /* first SM of the last launch logged */

/* The last launch logged: its context's SMs and whether that was a green context. */
static int last_launch(unsigned *sms, int *green)
{
    const char *path = getenv("GPUSHARE_FAKE_CUDA_LAUNCH_LOG");
    FILE *f = path ? fopen(path, "r") : NULL;
    char line[256], last[256] = "";
    int n = 0;
    while (f && fgets(line, sizeof line, f)) {
        memcpy(last, line, sizeof last);
        n++;
    }
    if (f)
        fclose(f);
    const char *s = strstr(last, "sms="), *g = strstr(last, "green="), *fs = strstr(last, "first=");
    last_first = fs ? (unsigned)strtoul(fs + 6, NULL, 10) : ~0u;
    *sms = s ? (unsigned)strtoul(s + 4, NULL, 10) : 0;
    *green = g ? atoi(g + 6) : -1;
    return n;
}

/* Launches a 264-block kernel in the current context; returns the SMs it ran on. */
static unsigned launch_sms(int *green)
{
    CUmodule m;
    CUfunction fn;
    static const char image[] = "fake";
    check(A.cuModuleLoadData(&m, image) == CUDA_SUCCESS, "module");
    check(A.cuModuleGetFunction(&fn, m, "sleep_1") == CUDA_SUCCESS, "function");
    int before = last_launch(&(unsigned){0}, &(int){0});
    CUresult r = A.cuLaunchKernel(fn, 264, 1, 1, 128, 1, 1, 0, NULL, NULL, NULL);
    check(r == CUDA_SUCCESS, "cuLaunchKernel: %d", r);
    check(A.cuCtxSynchronize() == CUDA_SUCCESS, "synchronize");
    unsigned sms;
    int after = last_launch(&sms, green);
    check(after == before + 1, "one launch logged (%d -> %d)", before, after);
    return sms;
}

/* Our slot's field `sm_partition[dev]`, and its CONTEXT bytes on dev. */
static unsigned region_sms(unsigned dev, uint64_t *context_bytes)
{
    const char *path = getenv("GPUSHARE_REGION");
    int fd = path ? open(path, O_RDONLY) : -1;
    check(fd >= 0, "open region");
    if (fd < 0)
        return 0;
    const gs_region_file *f = mmap(NULL, sizeof *f, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (f == MAP_FAILED)
        return 0;
    unsigned sms = 0;
    *context_bytes = 0;
    for (uint32_t i = 0; i < atomic_load(&f->header.slots_hwm) && i < GS_REGION_MAX_SLOTS; i++)
        if (atomic_load(&f->slots[i].pid) == (uint32_t)getpid()) {
            sms = atomic_load(&f->slots[i].sm_partition[dev]);
            *context_bytes = atomic_load(&f->slots[i].dev[dev].bytes[GS_REGION_KIND_CONTEXT]);
        }
    munmap((void *)f, sizeof *f);
    return sms;
}

static size_t free_now(void)
{
    size_t f = 0, t = 0;
    check(A.cuMemGetInfo_v2(&f, &t) == CUDA_SUCCESS, "cuMemGetInfo_v2");
    return f;
}

/* ---- scenarios -------------------------------------------------------------------------- */
static unsigned want_sms;
static int want_dev, want_first = -1;

/* The primary context, as the CUDA runtime gets it, is the partition; kernels land there;
 * the region publishes it; the context memory is counted once. */
static void t_sms(void)
{
    CUcontext c1;
    CUdevice dev;
    check(A.cuInit(0) == CUDA_SUCCESS, "cuInit");
    check(A.cuDeviceGet(&dev, want_dev) == CUDA_SUCCESS, "device");
    CUresult r = A.cuDevicePrimaryCtxRetain(&c1, dev);
    check(r == CUDA_SUCCESS, "retain: %d", r);
    check(A.cuCtxSetCurrent(c1) == CUDA_SUCCESS, "set current");
    unsigned got = current_sms();
    check(got == want_sms, "primary context has %u SMs, want %u", got, want_sms);
    int green;
    unsigned ran = launch_sms(&green);
    check(ran == want_sms && green == 1, "kernel ran on %u SMs (green %d), want %u in the green context", ran, green,
          want_sms);
    check(want_first < 0 || last_first == (unsigned)want_first, "kernel ran from SM %u, want %d", last_first, want_first);
    uint64_t ctx_bytes = 0;
    unsigned pub = region_sms((unsigned)want_dev, &ctx_bytes);
    check(pub == want_sms, "region publishes %u SMs, want %u", pub, want_sms);
    check(ctx_bytes == 4 * MIB, "the green context is counted as one 4 MiB context: %llu", (unsigned long long)ctx_bytes);
    check(A.cuDevicePrimaryCtxRelease_v2(dev) == CUDA_SUCCESS, "release");
}

/* Retain/Release/Reset as on a primary context, with the memory accounting following. */
static void t_refcount(void)
{
    CUcontext c1, c2, cur;
    unsigned flags;
    int active = -1;
    check(A.cuInit(0) == CUDA_SUCCESS, "cuInit");
    check(A.cuDevicePrimaryCtxGetState(0, &flags, &active) == CUDA_SUCCESS && active == 0, "inactive at first (%d)", active);
    check(A.cuDevicePrimaryCtxRetain(&c1, 0) == CUDA_SUCCESS, "retain");
    check(A.cuDevicePrimaryCtxRetain(&c2, 0) == CUDA_SUCCESS && c1 == c2, "retain again: same context");
    check(A.cuDevicePrimaryCtxGetState(0, &flags, &active) == CUDA_SUCCESS && active == 1, "active (%d)", active);
    check(A.cuCtxSetCurrent(c1) == CUDA_SUCCESS, "set current");
    check(free_now() == 60 * MIB, "64 MiB limit, 4 MiB context: free %zu", free_now());
    CUdeviceptr p;
    check(A.cuMemAlloc_v2(&p, 10 * MIB) == CUDA_SUCCESS, "alloc");
    check(free_now() == 50 * MIB, "10 MiB more: free %zu", free_now());
    check(A.cuDevicePrimaryCtxRelease_v2(0) == CUDA_SUCCESS, "release 1 of 2");
    check(A.cuDevicePrimaryCtxGetState(0, &flags, &active) == CUDA_SUCCESS && active == 1, "still active (%d)", active);
    check(free_now() == 50 * MIB, "nothing given back yet: free %zu", free_now());
    check(A.cuDevicePrimaryCtxRelease_v2(0) == CUDA_SUCCESS, "release 2 of 2");
    check(A.cuDevicePrimaryCtxGetState(0, &flags, &active) == CUDA_SUCCESS && active == 0, "inactive (%d)", active);
    uint64_t ctx_bytes = 1;
    check(region_sms(0, &ctx_bytes) == 0 && ctx_bytes == 0, "region: no partition, no context bytes (%llu)",
          (unsigned long long)ctx_bytes);
    CUresult r = A.cuDevicePrimaryCtxRelease_v2(0);
    check(r == CUDA_ERROR_INVALID_CONTEXT, "a third release: CUDA_ERROR_INVALID_CONTEXT, got %d", r);
    /* A new stand-in after the last release; reset drops it whatever its count. */
    check(A.cuDevicePrimaryCtxRetain(&c1, 0) == CUDA_SUCCESS && A.cuCtxSetCurrent(c1) == CUDA_SUCCESS, "retain anew");
    check(free_now() == 60 * MIB, "the old allocation went with the old context: free %zu", free_now());
    check(A.cuMemAlloc_v2(&p, 20 * MIB) == CUDA_SUCCESS, "alloc");
    check(A.cuDevicePrimaryCtxRetain(&c2, 0) == CUDA_SUCCESS, "second reference");
    check(A.cuDevicePrimaryCtxReset_v2(0) == CUDA_SUCCESS, "reset");
    check(A.cuDevicePrimaryCtxGetState(0, &flags, &active) == CUDA_SUCCESS && active == 0, "inactive after reset");
    check(region_sms(0, &ctx_bytes) == 0 && ctx_bytes == 0, "region after reset: nothing");
    check(A.cuDevicePrimaryCtxRetain(&c1, 0) == CUDA_SUCCESS && A.cuCtxSetCurrent(c1) == CUDA_SUCCESS, "retain after reset");
    check(free_now() == 60 * MIB, "after reset: only the new context: free %zu", free_now());
    check(ctx_sms(c1) == want_sms, "still the partition: %u SMs", ctx_sms(c1));
    (void)A.cuCtxGetCurrent(&cur);
    check(A.cuDevicePrimaryCtxRelease_v2(0) == CUDA_SUCCESS, "last release");
}

/* cuCtxCreate makes a green context of its own, current; cuCtxDestroy gives it all back. */
static void t_create(void)
{
    CUcontext ctx, cur = NULL;
    check(A.cuInit(0) == CUDA_SUCCESS, "cuInit");
    CUresult r = A.cuCtxCreate_v2(&ctx, 0, 0);
    check(r == CUDA_SUCCESS, "cuCtxCreate_v2: %d", r);
    check(A.cuCtxGetCurrent(&cur) == CUDA_SUCCESS && cur == ctx, "the new context is current");
    check(ctx_sms(ctx) == want_sms, "created context has %u SMs, want %u", ctx_sms(ctx), want_sms);
    int green;
    unsigned ran = launch_sms(&green);
    check(ran == want_sms && green == 1, "kernel ran on %u SMs (green %d)", ran, green);
    CUstream s;
    check(A.cuStreamCreate(&s, 0) == CUDA_SUCCESS && A.cuStreamDestroy_v2(s) == CUDA_SUCCESS, "a stream in it");
    CUdeviceptr p;
    check(A.cuMemAlloc_v2(&p, 10 * MIB) == CUDA_SUCCESS, "alloc");
    check(free_now() == 50 * MIB, "4 MiB context + 10 MiB: free %zu", free_now());
    check(A.cuCtxDestroy_v2(ctx) == CUDA_SUCCESS, "destroy");
    check(A.cuCtxGetCurrent(&cur) == CUDA_SUCCESS && cur == NULL, "no context current after destroy");
    uint64_t ctx_bytes = 1;
    (void)region_sms(0, &ctx_bytes);
    check(ctx_bytes == 0, "context bytes given back: %llu", (unsigned long long)ctx_bytes);
    CUcontext c1;
    check(A.cuDevicePrimaryCtxRetain(&c1, 0) == CUDA_SUCCESS && A.cuCtxSetCurrent(c1) == CUDA_SUCCESS, "primary");
    check(free_now() == 60 * MIB, "only the primary's 4 MiB left: free %zu", free_now());
    check(A.cuDevicePrimaryCtxRelease_v2(0) == CUDA_SUCCESS, "release");
}

/* The CUDA runtime makes the driver's own primary context current by a private path; the
 * public cuCtxSetCurrent/cuCtxPushCurrent it then calls must land in the partition, on
 * every thread. */
static CUcontext g_real_primary;

static void *runtime_thread(void *arg)
{
    (void)arg;
    check(A.cuCtxSetCurrent(g_real_primary) == CUDA_SUCCESS, "thread: set the driver's primary current");
    check(current_sms() == want_sms, "thread: current context has %u SMs, want %u", current_sms(), want_sms);
    int green;
    unsigned ran = launch_sms(&green);
    check(ran == want_sms && green == 1, "thread: kernel ran on %u SMs (green %d)", ran, green);
    return NULL;
}

static void t_runtime(void)
{
    check(A.cuInit(0) == CUDA_SUCCESS, "cuInit");
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    __typeof__(&cuDevicePrimaryCtxRetain) real = h ? (__typeof__(&cuDevicePrimaryCtxRetain))libc_dlsym(h, "cuDevicePrimaryCtxRetain") : NULL;
    check(real != NULL && real(&g_real_primary, 0) == CUDA_SUCCESS, "the driver's own primary context");
    check(A.cuCtxSetCurrent(g_real_primary) == CUDA_SUCCESS, "set it current");
    check(current_sms() == want_sms, "current context has %u SMs, want %u", current_sms(), want_sms);
    int green;
    unsigned ran = launch_sms(&green);
    check(ran == want_sms && green == 1, "kernel ran on %u SMs (green %d)", ran, green);
    CUcontext popped;
    check(A.cuCtxPushCurrent_v2(g_real_primary) == CUDA_SUCCESS && current_sms() == want_sms, "push: partition too");
    check(A.cuCtxPopCurrent_v2(&popped) == CUDA_SUCCESS, "pop");
    pthread_t t;
    check(pthread_create(&t, NULL, runtime_thread, NULL) == 0 && pthread_join(t, NULL) == 0, "thread");
    /* The runtime then retains through the public call: the same stand-in. */
    CUcontext c1, cur;
    check(A.cuDevicePrimaryCtxRetain(&c1, 0) == CUDA_SUCCESS, "retain");
    check(A.cuCtxGetCurrent(&cur) == CUDA_SUCCESS && cur == c1, "the retained context is the one made current");
    check(A.cuDevicePrimaryCtxRelease_v2(0) == CUDA_SUCCESS, "release");
    check(current_sms() == want_sms, "still the partition after the runtime's release (pinned)");
    /* cudaDeviceReset: the runtime resets, then makes its primary current again. */
    unsigned flags;
    int active = -1;
    check(A.cuDevicePrimaryCtxReset_v2(0) == CUDA_SUCCESS, "reset");
    check(A.cuDevicePrimaryCtxGetState(0, &flags, &active) == CUDA_SUCCESS && active == 0, "inactive after reset");
    check(A.cuCtxSetCurrent(g_real_primary) == CUDA_SUCCESS, "set the driver's primary current again");
    check(current_sms() == want_sms, "after reset: a new partition, %u SMs", current_sms());
    check(A.cuDevicePrimaryCtxGetState(0, &flags, &active) == CUDA_SUCCESS && active == 1, "active again (pinned anew)");
    ran = launch_sms(&green);
    check(ran == want_sms && green == 1, "after reset: kernel ran on %u SMs (green %d)", ran, green);
}

/* Refused (old GPU or driver): every context-making call fails with NOT_SUPPORTED. */
static void t_refuse(void)
{
    CUcontext c = NULL;
    check(A.cuInit(0) == CUDA_SUCCESS, "cuInit");
    CUresult r = A.cuDevicePrimaryCtxRetain(&c, 0);
    check(r == CUDA_ERROR_NOT_SUPPORTED && c == NULL, "retain: CUDA_ERROR_NOT_SUPPORTED, got %d", r);
    r = A.cuCtxCreate_v2(&c, 0, 0);
    check(r == CUDA_ERROR_NOT_SUPPORTED, "cuCtxCreate_v2: CUDA_ERROR_NOT_SUPPORTED, got %d", r);
    r = A.cuDevicePrimaryCtxRetain(&c, 0);
    check(r == CUDA_ERROR_NOT_SUPPORTED, "retain again: still refused, got %d", r);
    r = A.cuDevicePrimaryCtxRelease_v2(0);
    check(r == CUDA_ERROR_INVALID_CONTEXT, "release of what was never retained: %d", r);
}

/* Control: no partition (time-slice mode, or no compute limit): the whole device. */
static void t_whole(void)
{
    CUcontext c1;
    check(A.cuInit(0) == CUDA_SUCCESS, "cuInit");
    check(A.cuDevicePrimaryCtxRetain(&c1, 0) == CUDA_SUCCESS && A.cuCtxSetCurrent(c1) == CUDA_SUCCESS, "retain");
    check(current_sms() == want_sms, "whole device: %u SMs, want %u", current_sms(), want_sms);
    int green;
    unsigned ran = launch_sms(&green);
    check(ran == want_sms && green == 0, "kernel ran on %u SMs (green %d), want the plain primary", ran, green);
    check(A.cuDevicePrimaryCtxRelease_v2(0) == CUDA_SUCCESS, "release");
}

int main(int argc, char **argv)
{
    scenario = argc > 1 ? argv[1] : "sms";
    mode = argc > 2 ? argv[2] : "direct";
    want_sms = argc > 3 ? (unsigned)atoi(argv[3]) : 64;
    want_dev = argc > 4 ? atoi(argv[4]) : 0;
    want_first = argc > 5 ? atoi(argv[5]) : -1;
    load_api();
    static const test_scenario all[] = {{"sms", t_sms},         {"refcount", t_refcount}, {"create", t_create},
               {"runtime", t_runtime}, {"refuse", t_refuse},     {"whole", t_whole}};
    return run_scenario(all, sizeof all / sizeof all[0]);
}
