/*
 * cudart_probe.c: the CUDA runtime itself (libcudart from a CUDA toolkit) over the remote
 * client, without a GPU: cudart_probe.sh runs it against a worker on the fake driver with
 * GPUSHARE_REMOTE_LOG=1, so its stderr shows what the runtime asks that the client does not
 * serve (entry point names, export tables). Each step prints its result; it stops at the first
 * failure, which names how far the runtime got.
 */
#include <cuda_runtime_api.h>
#include <stdio.h>

#define STEP(call)                                                                             \
    do {                                                                                       \
        cudaError_t e_ = (call);                                                               \
        printf("cudart_probe: %s -> %d %s\n", #call, (int)e_, cudaGetErrorName(e_));          \
        if (e_ != cudaSuccess) return 1;                                                       \
    } while (0)

int main(void) {
    int runtime = 0, driver = 0, count = 0;
    void *p = NULL;
    char h[16] = "gpushare", g[16] = {0};
    STEP(cudaRuntimeGetVersion(&runtime));
    STEP(cudaDriverGetVersion(&driver));
    STEP(cudaGetDeviceCount(&count));
    STEP(cudaMalloc(&p, 1 << 20));
    STEP(cudaMemcpy(p, h, sizeof h, cudaMemcpyHostToDevice));
    STEP(cudaMemcpy(g, p, sizeof g, cudaMemcpyDeviceToHost));
    STEP(cudaFree(p));
    printf("cudart_probe: runtime %d, driver %d, %d device(s), copy round trip %s\n", runtime, driver, count,
           g[0] == 'g' ? "ok" : "WRONG");
    return 0;
}
