/* driver_fill.c: a plain driver-API program (linked with -lcuda) that allocates 1 MiB at a time
 * until the driver says no, then prints how far it got as one JSON line. Built on the GPU machine. */
#include <cuda.h>
#include <stdio.h>

int main(void) {
    CUdevice dev;
    CUcontext ctx;
    if (cuInit(0) != CUDA_SUCCESS || cuDeviceGet(&dev, 0) != CUDA_SUCCESS || cuCtxCreate(&ctx, NULL, 0, dev) != CUDA_SUCCESS) {
        printf("{\"error\": \"init failed\"}\n");
        return 1;
    }
    size_t free_b = 0, total_b = 0;
    CUresult info = cuMemGetInfo(&free_b, &total_b);
    size_t got = 0;
    CUresult last = CUDA_SUCCESS;
    CUdeviceptr p;
    while (got < ((size_t)8 << 30) && (last = cuMemAlloc(&p, 1 << 20)) == CUDA_SUCCESS) got += 1 << 20;
    printf("{\"meminfo_rc\": %d, \"total\": %zu, \"free\": %zu, \"allocated\": %zu, \"last_rc\": %d}\n", (int)info, total_b, free_b, got, (int)last);
    cuCtxDestroy(ctx);
    return 0;
}
