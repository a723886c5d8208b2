// partition_check.cu: an ordinary CUDA runtime program (it knows nothing of gpushare) used by
// scripts/gpu-check-partition.sh to check GPUSHARE_ISOLATION=sm-partition on a real GPU.
//
//   partition_check SECONDS [START_EPOCH_MS]
//
// 1. Records the SM (%smid) of every block of a large grid and counts the distinct SMs:
//    under a partition, kernels must run on the partition's SMs only.
// 2. Runs a compute-bound kernel (register FMA chains, no memory traffic) back to back for
//    SECONDS, from START_EPOCH_MS when given (so two processes measure the same window), and
//    reports kernels per second. Throughput should scale with the SMs granted.
// Prints one JSON line (with `sm_set`, the SMs step 1 saw, as ranges). Every CUDA call is checked; a failure prints {"error": ...}.
#include <cuda.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define CHECK(call)                                                                                          \
    do {                                                                                                     \
        cudaError_t e_ = (call);                                                                             \
        if (e_ != cudaSuccess) {                                                                             \
            printf("{\"error\": \"%s: %s (%d)\"}\n", #call, cudaGetErrorString(e_), (int)e_);                \
            fflush(stdout);                                                                                  \
            exit(1);                                                                                         \
        }                                                                                                    \
    } while (0)

static double now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return tv.tv_sec * 1e3 + tv.tv_usec / 1e3;
}

__device__ unsigned int smid(void)
{
    unsigned int id;
    asm volatile("mov.u32 %0, %%smid;" : "=r"(id));
    return id;
}

// Each block stays ~20 us, so the grid spreads over every SM it may use.
__global__ void where(unsigned int *sm_of_block)
{
    long long start = clock64();
    while (clock64() - start < 40000) {
    }
    if (threadIdx.x == 0)
        sm_of_block[blockIdx.x] = smid();
}

// Eight independent FMA chains per thread: bound by the SMs' FP32 pipes, not memory.
__global__ void burn(float *out, int iters)
{
    float a = threadIdx.x * 1e-3f, b = a + 1, c = a + 2, d = a + 3, e = a + 4, f = a + 5, g = a + 6, h = a + 7;
    const float m = 0.9999f, k = 1e-4f;
    for (int i = 0; i < iters; i++) {
        a = fmaf(a, m, k); b = fmaf(b, m, k); c = fmaf(c, m, k); d = fmaf(d, m, k);
        e = fmaf(e, m, k); f = fmaf(f, m, k); g = fmaf(g, m, k); h = fmaf(h, m, k);
    }
    float s = a + b + c + d + e + f + g + h;
    if (s == 12345.678f) // never true; keeps the chains alive
        out[blockIdx.x] = s;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 3;
    double start_at = argc > 2 ? atof(argv[2]) : 0;
    int dev = 0, sms = 0;
    CHECK(cudaSetDevice(dev));
    CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    CHECK(cudaFree(0)); // the runtime retains the primary context here

    // The SMs of the context the runtime runs in, as the driver reports them.
    CUcontext ctx = NULL;
    CUdevResource res;
    memset(&res, 0, sizeof res);
    int ctx_sms = -1;
    if (cuCtxGetCurrent(&ctx) == CUDA_SUCCESS && ctx != NULL &&
        cuCtxGetDevResource(ctx, &res, CU_DEV_RESOURCE_TYPE_SM) == CUDA_SUCCESS)
        ctx_sms = (int)res.sm.smCount;
    // The primary context as a driver-API user gets it (the runtime should be running in it).
    CUcontext primary = NULL;
    int primary_sms = -1;
    if (cuDevicePrimaryCtxRetain(&primary, dev) == CUDA_SUCCESS) {
        if (cuCtxGetDevResource(primary, &res, CU_DEV_RESOURCE_TYPE_SM) == CUDA_SUCCESS)
            primary_sms = (int)res.sm.smCount;
        (void)cuDevicePrimaryCtxRelease(dev);
    }

    const int blocks = sms * 64;
    unsigned int *d_sm = NULL, *h_sm = (unsigned int *)calloc(blocks, sizeof *h_sm);
    float *d_out = NULL;
    CHECK(cudaMalloc(&d_sm, blocks * sizeof *d_sm));
    CHECK(cudaMalloc(&d_out, 65536 * sizeof(float)));
    where<<<blocks, 128>>>(d_sm);
    CHECK(cudaGetLastError());
    CHECK(cudaMemcpy(h_sm, d_sm, blocks * sizeof *h_sm, cudaMemcpyDeviceToHost));
    int seen[1024] = {0}, distinct = 0, max_sm = -1;
    for (int i = 0; i < blocks; i++) {
        unsigned int s = h_sm[i] < 1024 ? h_sm[i] : 1023;
        if (!seen[s]++)
            distinct++;
        if ((int)s > max_sm)
            max_sm = (int)s;
    }

    // 16 full waves of the whole device per kernel (2048 threads per SM at 256 per block).
    const int grid = sms * 8 * 16, iters = 4096;
    for (int i = 0; i < 3; i++)
        burn<<<grid, 256>>>(d_out, iters);
    CHECK(cudaDeviceSynchronize());
    if (start_at > 0) {
        double wait = start_at - now_ms();
        if (wait > 0)
            usleep((useconds_t)(wait * 1e3));
    }
    double t0 = now_ms(), end = t0 + seconds * 1e3, t = t0;
    long kernels = 0;
    while (t < end) {
        burn<<<grid, 256>>>(d_out, iters);
        CHECK(cudaGetLastError());
        CHECK(cudaDeviceSynchronize());
        kernels++;
        t = now_ms();
    }
    double rate = kernels / ((t - t0) / 1e3);
    // The SMs seen, as ranges ("0-63" or "64-127"): two partitions side by side must not share one.
    static char sm_set[8192];
    size_t used = 0;
    for (int i = 0; i < 1024 && used < sizeof sm_set - 32; i++) {
        if (!seen[i] || (i > 0 && seen[i - 1]))
            continue;
        int j = i;
        while (j + 1 < 1024 && seen[j + 1])
            j++;
        used += (size_t)snprintf(sm_set + used, sizeof sm_set - used, used ? ",%d-%d" : "%d-%d", i, j);
    }
    printf("{\"device_sms\": %d, \"ctx_sms\": %d, \"distinct_sms\": %d, \"max_smid\": %d, \"blocks\": %d, "
           "\"primary_sms\": %d, \"primary_is_current\": %d, \"kernels\": %ld, \"seconds\": %.3f, \"rate\": %.3f, \"kernel_ms\": %.3f, \"window_start_ms\": %.0f, "
           "\"sm_set\": \"%s\"}\n",
           sms, ctx_sms, distinct, max_sm, blocks, primary_sms, primary == ctx, kernels, (t - t0) / 1e3, rate, 1e3 / rate, t0, sm_set);
    CHECK(cudaFree(d_sm));
    CHECK(cudaFree(d_out));
    free(h_sm);
    return 0;
}
