/* launch_ab.c: what libgpushare adds to one kernel launch, measured inside one process.
 *
 * Separate processes of the same launch loop differ by 20-30% in CPU time per launch (whole
 * runs are fast or slow), far more than the 2% budget, so comparing runs with and without the
 * library cannot settle it. Here one process launches an empty kernel alternately through the
 * driver's own cuLaunchKernel (found with libc's dlsym, which libgpushare does not interpose)
 * and through the cuLaunchKernel the program links against (libgpushare's hook when it is
 * preloaded), in batches of BATCH launches, PAIRS pairs in alternating order. Each pair's
 * difference (hooked - direct, CPU time of the thread per launch) is the hook's cost at that
 * moment; the median over all pairs is the result. Without the library both paths are the
 * driver's: the same numbers then give the method's noise floor.
 *
 * Prints one JSON line. Linked by soname against libcuda.so.1; needs build/gpu/empty.cubin. */
#define _GNU_SOURCE
#include <cuda.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define BATCH 1000
#define PAIRS 400

typedef CUresult (*launch_fn)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                              CUstream, void **, void **);
typedef void *(*dlsym_fn)(void *, const char *);

static double cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define OK(call)                                                                                                       \
    do {                                                                                                               \
        CUresult r_ = (call);                                                                                          \
        if (r_ != CUDA_SUCCESS) {                                                                                      \
            printf("{\"error\": \"%s -> %d\"}\n", #call, (int)r_);                                                     \
            return 1;                                                                                                  \
        }                                                                                                              \
    } while (0)

/* One batch through f: CPU ns per launch, or a negative value when a launch failed. */
static double batch(launch_fn f, CUfunction k, CUstream s, void **args)
{
    double t0 = cpu_ns();
    for (int i = 0; i < BATCH; i++)
        if (f(k, 1, 1, 1, 32, 1, 1, 0, s, args, NULL) != CUDA_SUCCESS)
            return -1;
    return (cpu_ns() - t0) / BATCH;
}

int main(int argc, char **argv)
{
    /* libc's own dlsym: libgpushare exports an unversioned dlsym, libc's is GLIBC_2.34 (2.2.5 before) */
    dlsym_fn libc_dlsym = (dlsym_fn)dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
    if (libc_dlsym == NULL)
        libc_dlsym = (dlsym_fn)dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (libc_dlsym == NULL || h == NULL) {
        printf("{\"error\": \"no libc dlsym or libcuda handle\"}\n");
        return 1;
    }
    launch_fn direct = (launch_fn)libc_dlsym(h, "cuLaunchKernel");
    launch_fn hooked = (launch_fn)cuLaunchKernel;
    CUresult (*load)(CUmodule *, const char *) = (CUresult(*)(CUmodule *, const char *))libc_dlsym(h, "cuModuleLoad");
    CUresult (*get)(CUfunction *, CUmodule, const char *) =
        (CUresult(*)(CUfunction *, CUmodule, const char *))libc_dlsym(h, "cuModuleGetFunction");
    if (direct == NULL || load == NULL || get == NULL) {
        printf("{\"error\": \"this driver has no cuLaunchKernel or cuModuleLoad\"}\n");
        return 1;
    }
    CUdevice dev;
    CUcontext ctx;
    CUstream s;
    CUmodule mod;
    CUfunction k;
    OK(cuInit(0));
    OK(cuDeviceGet(&dev, 0));
    OK(cuDevicePrimaryCtxRetain(&ctx, dev));
    OK(cuCtxSetCurrent(ctx));
    OK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    OK(load(&mod, argc > 1 ? argv[1] : "build/gpu/empty.cubin"));
    OK(get(&k, mod, "empty_kernel"));
    CUdeviceptr nullp = 0;
    void *args[] = {&nullp};
    for (int i = 0; i < 20; i++) /* warm both paths */
        if (batch(direct, k, s, args) < 0 || batch(hooked, k, s, args) < 0) {
            printf("{\"error\": \"a launch failed\"}\n");
            return 1;
        }
    OK(cuStreamSynchronize(s));
    static double d[PAIRS], a[PAIRS], b[PAIRS];
    for (int p = 0; p < PAIRS; p++) {
        double x, y;
        if (p % 2 == 0) {
            x = batch(direct, k, s, args);
            y = batch(hooked, k, s, args);
        } else {
            y = batch(hooked, k, s, args);
            x = batch(direct, k, s, args);
        }
        if (x < 0 || y < 0) {
            printf("{\"error\": \"a launch failed\"}\n");
            return 1;
        }
        a[p] = x;
        b[p] = y;
        d[p] = y - x;
    }
    OK(cuStreamSynchronize(s));
    qsort(d, PAIRS, sizeof d[0], cmp);
    qsort(a, PAIRS, sizeof a[0], cmp);
    qsort(b, PAIRS, sizeof b[0], cmp);
    double base = a[PAIRS / 2], diff = d[PAIRS / 2];
    printf("{\"interposed\": %s, \"pairs\": %d, \"batch\": %d, \"direct_ns\": %.1f, \"hooked_ns\": %.1f, "
           "\"added_ns\": %.1f, \"added_ns_p25\": %.1f, \"added_ns_p75\": %.1f, \"added_pct\": %.2f}\n",
           direct != hooked ? "true" : "false", PAIRS, BATCH, base, b[PAIRS / 2], diff, d[PAIRS / 4],
           d[3 * PAIRS / 4], 100.0 * diff / base);
    return 0;
}
