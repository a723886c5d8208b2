/*
 * remote_check.c: one driver-API program, run natively and through the remote client
 * (scripts/gpu-check-remote.sh): results of a real kernel (PTX below, loaded with
 * cuModuleLoadData, launched with kernelParams; then the CUDA runtime's path to it:
 * cuGetProcAddress, cuLibraryLoadData, cuLibraryGetKernel, its function's attributes and
 * occupancy, a launch through the kernel handle itself on the per-thread stream), a small call's round trip, launches
 * per second, 1 GiB copy bandwidth each way. Prints one JSON line.
 *
 *   remote_check MODE [fill|hold]    MODE names the run in the output (native, remote)
 *   fill: 256 MiB allocations until refused; hold: 4 GiB allocated, "holding", wait to be killed;
 *   copies: only the 1 GiB copies each way (best of 5, the first round's bytes checked), with
 *   "lanes" the client's GPUSHARE_REMOTE_LANES as given ("" when unset); copies-zeros: the same
 *   with zeros (compressible), "compress" the client's GPUSHARE_REMOTE_COMPRESS ("" when unset)
 * Built with our own declarations (native/include), linked against libcuda.so.1 by soname.
 */
#define _DEFAULT_SOURCE
#include "gs_cuda.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *PTX =
    ".version 7.0\n.target sm_50\n.address_size 64\n"
    ".visible .entry add_one(.param .u64 p, .param .u32 n)\n{\n"
    "  .reg .pred %pr;\n  .reg .b32 %r<6>;\n  .reg .b64 %rd<4>;\n  .reg .b16 %h<3>;\n"
    "  ld.param.u64 %rd1, [p];\n  ld.param.u32 %r1, [n];\n"
    "  mov.u32 %r2, %ctaid.x;\n  mov.u32 %r3, %ntid.x;\n  mov.u32 %r4, %tid.x;\n"
    "  mad.lo.s32 %r5, %r2, %r3, %r4;\n  setp.ge.u32 %pr, %r5, %r1;\n  @%pr bra DONE;\n"
    "  cvta.to.global.u64 %rd2, %rd1;\n  cvt.u64.u32 %rd3, %r5;\n  add.s64 %rd2, %rd2, %rd3;\n"
    "  ld.global.u8 %h1, [%rd2];\n  add.u16 %h2, %h1, 1;\n  st.global.u8 [%rd2], %h2;\n"
    "DONE:\n  ret;\n}\n"
    ".visible .entry empty()\n{\n  ret;\n}\n";

#define TRY(call)                                                                   \
    do {                                                                            \
        CUresult rc_ = (call);                                                      \
        if (rc_ != CUDA_SUCCESS) {                                                  \
            printf("{\"mode\":\"%s\",\"error\":\"%s = %d\"}\n", mode, #call, (int)rc_); \
            return 1;                                                               \
        }                                                                           \
    } while (0)

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Pinned host memory where the driver gives it (natively), else plain (the remote client). */
static void *host_buffer(size_t n, int *pinned) {
    void *p = NULL;
    *pinned = cuMemAllocHost_v2(&p, n) == CUDA_SUCCESS;
    return *pinned ? p : malloc(n);
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "native";
    const char *what = argc > 2 ? argv[2] : "check";
    CUcontext ctx;
    CUdevice dev;
    char name[128];
    TRY(cuInit(0));
    TRY(cuDeviceGet(&dev, 0));
    TRY(cuDeviceGetName(name, sizeof name, dev));
    TRY(cuDevicePrimaryCtxRetain(&ctx, dev));
    TRY(cuCtxSetCurrent(ctx));
    if (!strcmp(what, "fill")) {
        size_t got = 0, free_b = 0, total = 0;
        CUdeviceptr p;
        CUresult rc;
        TRY(cuMemGetInfo_v2(&free_b, &total));
        while ((rc = cuMemAlloc_v2(&p, 256u << 20)) == CUDA_SUCCESS) got += 256u << 20;
        printf("{\"mode\":\"%s\",\"fill_bytes\":%zu,\"fill_rc\":%d,\"total\":%zu}\n", mode, got, (int)rc, total);
        return 0;
    }
    if (!strcmp(what, "hold")) {
        CUdeviceptr p;
        TRY(cuMemAlloc_v2(&p, 4ull << 30));
        TRY(cuMemsetD8_v2(p, 1, 4ull << 30));
        TRY(cuCtxSynchronize());
        printf("holding\n");
        fflush(stdout);
        for (;;) pause();
    }
    if (!strcmp(what, "copies") || !strcmp(what, "copies-zeros")) {
        size_t big = 1ull << 30;
        int pinned, zeros = !strcmp(what, "copies-zeros");
        uint8_t *hb = host_buffer(big, &pinned), *back = malloc(big);
        if (!hb || !back) return 1;
        for (size_t i = 0; i < big; i++) hb[i] = zeros ? 0 : (uint8_t)(i * 2654435761u >> 13);
        if (zeros) memset(back, 0xee, big);
        CUdeviceptr db;
        TRY(cuMemAlloc_v2(&db, big));
        double htod = 1e9, dtoh = 1e9;
        int data_ok = 1;
        /* REMOTE_CHECK_COPY_ROUNDS (1 to 20, default 5): the best of that many (the fake driver's
         * lane benchmark, native/remote/tests/bench_lanes.sh, takes fewer). */
        const char *rounds_env = getenv("REMOTE_CHECK_COPY_ROUNDS");
        int rounds = rounds_env ? atoi(rounds_env) : 5;
        if (rounds < 1 || rounds > 20) rounds = 5;
        for (int r = 0; r < rounds; r++) {
            double t0 = now_s();
            TRY(cuMemcpyHtoD_v2(db, hb, big));
            double a = now_s() - t0;
            t0 = now_s();
            TRY(cuMemcpyDtoH_v2(r == 0 ? back : hb, db, big));
            double b = now_s() - t0;
            if (r == 0) data_ok = memcmp(hb, back, big) == 0;
            if (a < htod) htod = a;
            if (b < dtoh) dtoh = b;
        }
        const char *lanes = getenv("GPUSHARE_REMOTE_LANES"), *compress = getenv("GPUSHARE_REMOTE_COMPRESS");
        printf("{\"mode\":\"%s\",\"copies\":true,\"zeros\":%s,\"lanes\":\"%s\",\"compress\":\"%s\",\"htod_gb_s\":%.2f,\"dtoh_gb_s\":%.2f,\"pinned\":%s,\"data_ok\":%s}\n",
               mode, zeros ? "true" : "false", lanes ? lanes : "", compress ? compress : "", big / htod / 1e9, big / dtoh / 1e9, pinned ? "true" : "false",
               data_ok ? "true" : "false");
        return data_ok ? 0 : 1;
    }
    CUmodule mod;
    CUfunction add_one, empty;
    TRY(cuModuleLoadData(&mod, PTX));
    TRY(cuModuleGetFunction(&add_one, mod, "add_one"));
    TRY(cuModuleGetFunction(&empty, mod, "empty"));

    /* Results: 64 MiB of a pattern, +1 by the kernel three times, back and checked. */
    unsigned n = 64u << 20;
    uint8_t *h = malloc(n);
    for (unsigned i = 0; i < n; i++) h[i] = (uint8_t)(i * 31 + 7);
    CUdeviceptr d;
    TRY(cuMemAlloc_v2(&d, n));
    TRY(cuMemcpyHtoD_v2(d, h, n));
    void *args[] = {&d, &n};
    for (int k = 0; k < 3; k++) TRY(cuLaunchKernel(add_one, (n + 255) / 256, 1, 1, 256, 1, 1, 0, NULL, args, NULL));
    TRY(cuMemcpyDtoH_v2(h, d, n));
    unsigned long long sum = 0;
    int ok = 1;
    for (unsigned i = 0; i < n; i++) {
        ok &= h[i] == (uint8_t)(i * 31 + 7 + 3);
        sum = sum * 1099511628211ull + h[i];
    }

    /* The CUDA runtime's path to the same kernel (what CuPy and PyTorch take): entry points
     * through cuGetProcAddress, the image as a CUDA 12 library, the kernel handle's attributes
     * and occupancy, launched as a function with kernelParams on the per-thread stream. */
    typedef CUresult (*pfn_library_load)(void **, const void *, void *, void **, unsigned, void *, void **, unsigned);
    typedef CUresult (*pfn_library_get_kernel)(void **, void *, const char *);
    typedef CUresult (*pfn_func_get_attribute)(int *, int, void *);
    typedef CUresult (*pfn_occupancy)(int *, void *, int, size_t);
    typedef CUresult (*pfn_launch)(void *, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, CUstream, void **, void **);
    typedef CUresult (*pfn_sync)(CUstream);
    typedef CUresult (*pfn_kernel_function)(void **, void *);
    void *fp[7] = {0};
    static const char *const names[7] = {"cuLibraryLoadData", "cuLibraryGetKernel", "cuFuncGetAttribute",
                                         "cuOccupancyMaxActiveBlocksPerMultiprocessor", "cuLaunchKernel", "cuStreamSynchronize",
                                         "cuKernelGetFunction"};
    for (int i = 0; i < 7; i++) {
        CUdriverProcAddressQueryResult st;
        cuuint64_t flags = i == 4 || i == 5 ? CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM : 0;
        if (cuGetProcAddress_v2(names[i], &fp[i], 12080, flags, &st) != CUDA_SUCCESS || !fp[i]) {
            printf("{\"mode\":\"%s\",\"error\":\"cuGetProcAddress(%s) status %d\"}\n", mode, names[i], (int)st);
            return 1;
        }
    }
    void *library = NULL, *kernel = NULL, *kernel_fn = NULL;
    int max_threads = 0, occupancy = 0;
    TRY(((pfn_library_load)fp[0])(&library, PTX, NULL, NULL, 0, NULL, NULL, 0));
    TRY(((pfn_library_get_kernel)fp[1])(&kernel, library, "add_one"));
    TRY(((pfn_kernel_function)fp[6])(&kernel_fn, kernel));
    TRY(((pfn_func_get_attribute)fp[2])(&max_threads, 0 /* MAX_THREADS_PER_BLOCK */, kernel_fn));
    TRY(((pfn_occupancy)fp[3])(&occupancy, kernel_fn, 256, 0));
    CUdeviceptr d2;
    TRY(cuMemAlloc_v2(&d2, n));
    for (unsigned i = 0; i < n; i++) h[i] = (uint8_t)(i * 31 + 7);
    TRY(cuMemcpyHtoD_v2(d2, h, n));
    void *args2[] = {&d2, &n};
    for (int k = 0; k < 3; k++) TRY(((pfn_launch)fp[4])(kernel, (n + 255) / 256, 1, 1, 256, 1, 1, 0, NULL, args2, NULL));
    TRY(((pfn_sync)fp[5])(NULL));
    TRY(cuMemcpyDtoH_v2(h, d2, n));
    int runtime_ok = 1;
    for (unsigned i = 0; i < n; i++) runtime_ok &= h[i] == (uint8_t)(i * 31 + 7 + 3);

    /* A small synchronous call's round trip: cuCtxSynchronize with nothing queued. */
    enum { ROUNDS = 20000, LAUNCHES = 200000 };
    static double t[ROUNDS];
    for (int i = 0; i < ROUNDS; i++) {
        double t0 = now_s();
        TRY(cuCtxSynchronize());
        t[i] = (now_s() - t0) * 1e6;
    }
    qsort(t, ROUNDS, sizeof t[0], cmp);
    double t0 = now_s();
    for (int i = 0; i < LAUNCHES; i++) TRY(cuLaunchKernel(empty, 1, 1, 1, 32, 1, 1, 0, NULL, NULL, NULL));
    TRY(cuCtxSynchronize());
    double launches = LAUNCHES / (now_s() - t0);

    /* 1 GiB each way, best of 3. */
    size_t big = 1ull << 30;
    int pinned;
    uint8_t *hb = host_buffer(big, &pinned);
    memset(hb, 3, big);
    CUdeviceptr db;
    TRY(cuMemAlloc_v2(&db, big));
    double htod = 1e9, dtoh = 1e9;
    for (int r = 0; r < 3; r++) {
        t0 = now_s();
        TRY(cuMemcpyHtoD_v2(db, hb, big));
        double a = now_s() - t0;
        t0 = now_s();
        TRY(cuMemcpyDtoH_v2(hb, db, big));
        double b = now_s() - t0;
        if (a < htod) htod = a;
        if (b < dtoh) dtoh = b;
    }
    printf("{\"mode\":\"%s\",\"gpu\":\"%s\",\"results_ok\":%s,\"checksum\":\"%016llx\",\"rt_us_median\":%.2f,\"rt_us_p99\":%.2f,"
           "\"launches_per_s\":%.0f,\"htod_gb_s\":%.2f,\"dtoh_gb_s\":%.2f,\"pinned\":%s,\"runtime_path_ok\":%s,"
           "\"max_threads\":%d,\"occupancy_256\":%d}\n",
           mode, name, ok ? "true" : "false", sum, t[ROUNDS / 2], t[ROUNDS * 99 / 100], launches, big / htod / 1e9, big / dtoh / 1e9,
           pinned ? "true" : "false", runtime_ok ? "true" : "false", max_threads, occupancy);
    return ok && runtime_ok ? 0 : 1;
}
