/* driver_cost.c: what one call of each driver function the compute gate uses costs the calling
 * thread (CPU time per call, best of 9 batches of 100,000), so the gate's cost per launch can be
 * budgeted call by call. Prints one JSON line. Linked by soname against libcuda.so.1. */
#define _GNU_SOURCE
#include <cuda.h>
#include <dlfcn.h>
#include <stdio.h>
#include <time.h>

#define N 100000
#define REPS 9

static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

#define MEASURE(name, body)                                                                                            \
    do {                                                                                                               \
        double best = 1e30;                                                                                            \
        for (int rep = 0; rep < REPS; rep++) {                                                                         \
            double t0 = cpu_ns();                                                                                      \
            for (int i = 0; i < N; i++) {                                                                              \
                body;                                                                                                  \
            }                                                                                                          \
            double per = (cpu_ns() - t0) / N;                                                                          \
            if (per < best)                                                                                            \
                best = per;                                                                                            \
        }                                                                                                              \
        printf("%s\"%s\": %.1f", first ? "" : ", ", name, best);                                                       \
        first = 0;                                                                                                     \
    } while (0)

#define OK(call)                                                                                                       \
    do {                                                                                                               \
        CUresult r_ = (call);                                                                                          \
        if (r_ != CUDA_SUCCESS) {                                                                                      \
            printf("{\"error\": \"%s -> %d\"}\n", #call, (int)r_);                                                     \
            return 1;                                                                                                  \
        }                                                                                                              \
    } while (0)

int main(int argc, char **argv)
{
    CUdevice dev;
    CUcontext ctx, cur;
    CUstream s;
    CUevent a, b, rec, plain;
    CUmodule mod;
    CUfunction empty;
    OK(cuInit(0));
    OK(cuDeviceGet(&dev, 0));
    OK(cuDevicePrimaryCtxRetain(&ctx, dev));
    OK(cuCtxSetCurrent(ctx));
    OK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    OK(cuEventCreate(&a, CU_EVENT_DEFAULT));
    OK(cuEventCreate(&b, CU_EVENT_DEFAULT));
    OK(cuEventCreate(&rec, CU_EVENT_DEFAULT));
    OK(cuEventCreate(&plain, CU_EVENT_DISABLE_TIMING));
    /* looked up, not linked: the build links against the fake driver, which has no modules */
    CUresult (*load)(CUmodule *, const char *) = (CUresult(*)(CUmodule *, const char *))dlsym(RTLD_DEFAULT, "cuModuleLoad");
    CUresult (*get)(CUfunction *, CUmodule, const char *) =
        (CUresult(*)(CUfunction *, CUmodule, const char *))dlsym(RTLD_DEFAULT, "cuModuleGetFunction");
    if (load == NULL || get == NULL) {
        printf("{\"error\": \"this driver has no cuModuleLoad\"}\n");
        return 1;
    }
    OK(load(&mod, argc > 1 ? argv[1] : "build/gpu/empty.cubin"));
    OK(get(&empty, mod, "empty_kernel"));
    void *noargs[] = {NULL};
    CUdeviceptr nullp = 0;
    noargs[0] = &nullp;
    OK(cuEventRecord(a, s));
    OK(cuEventRecord(b, s));
    OK(cuStreamSynchronize(s));
    int first = 1;
    volatile long sink = 0;
    printf("{");
    MEASURE("clock_monotonic", {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        sink += ts.tv_nsec;
    });
    MEASURE("clock_coarse", {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
        sink += ts.tv_nsec;
    });
    MEASURE("cuCtxGetCurrent", { (void)cuCtxGetCurrent(&cur); });
    MEASURE("capture_mode_exchange_pair", {
        CUstreamCaptureMode m = CU_STREAM_CAPTURE_MODE_RELAXED;
        (void)cuThreadExchangeStreamCaptureMode(&m);
        (void)cuThreadExchangeStreamCaptureMode(&m);
    });
    MEASURE("cuStreamIsCapturing", {
        CUstreamCaptureStatus st;
        (void)cuStreamIsCapturing(s, &st);
    });
    MEASURE("cuEventQuery_done", { sink += (long)cuEventQuery(a); });
    MEASURE("cuEventElapsedTime", {
        float ms;
        (void)cuEventElapsedTime(&ms, a, b);
    });
    OK(cuStreamSynchronize(s));
    MEASURE("cuEventRecord", { (void)cuEventRecord(rec, s); });
    OK(cuStreamSynchronize(s));
    MEASURE("cuEventRecord_notiming", { (void)cuEventRecord(plain, s); });
    OK(cuStreamSynchronize(s));
    MEASURE("cuStreamQuery", { sink += (long)cuStreamQuery(s); });
    MEASURE("launch", { (void)cuLaunchKernel(empty, 1, 1, 1, 32, 1, 1, 0, s, noargs, NULL); });
    OK(cuStreamSynchronize(s));
    MEASURE("launch_record", {
        (void)cuLaunchKernel(empty, 1, 1, 1, 32, 1, 1, 0, s, noargs, NULL);
        (void)cuEventRecord(rec, s);
    });
    OK(cuStreamSynchronize(s));
    MEASURE("launch_record_notiming", {
        (void)cuLaunchKernel(empty, 1, 1, 1, 32, 1, 1, 0, s, noargs, NULL);
        (void)cuEventRecord(plain, s);
    });
    OK(cuStreamSynchronize(s));
    MEASURE("launch_query", {
        (void)cuLaunchKernel(empty, 1, 1, 1, 32, 1, 1, 0, s, noargs, NULL);
        sink += (long)cuEventQuery(a);
    });
    OK(cuStreamSynchronize(s));
    printf("}\n");
    (void)sink;
    return 0;
}
