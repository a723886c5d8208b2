/*
 * test_fake_cuda_shared.c: shared-GPU mode ("sharedGpu", FAKE_CUDA.md): the streams of one
 * process run side by side (a kernel joins the process's running claim of the device, as
 * one context's streams overlap on a GPU), and busy time is their union.
 */

#include "fake_cuda_test.h"

int main(void)
{
    char dir[256];
    if (!fct_busy_dir(dir, sizeof dir))
        return 2;
    fct_configure("{\"contextBytes\": 0, \"sharedGpu\": true, \"devices\": [{\"uuid\": "
                  "\"GPU-5ead0000-0000-4000-8000-000000000000\"}]}",
                  NULL);
    CHECK_OK(cuInit(0));
    CUcontext ctx;
    CHECK_OK(cuCtxCreate_v4(&ctx, NULL, 0, 0));
    CUmodule mod;
    CUfunction k10;
    CHECK_OK(cuModuleLoadData(&mod, "fake"));
    CHECK_OK(cuModuleGetFunction(&k10, mod, "sleep_10000"));
    CUstream s1, s2;
    CUevent a, b1, b2;
    CHECK_OK(cuStreamCreate(&s1, CU_STREAM_NON_BLOCKING));
    CHECK_OK(cuStreamCreate(&s2, CU_STREAM_NON_BLOCKING));
    CHECK_OK(cuEventCreate(&a, CU_EVENT_DEFAULT));
    CHECK_OK(cuEventCreate(&b1, CU_EVENT_DEFAULT));
    CHECK_OK(cuEventCreate(&b2, CU_EVENT_DEFAULT));

    /* two 10 ms kernels on two streams at once: both end ~10 ms after the start (one after
     * the other would take 20), whenever the workers wake (claims use the enqueue time) */
    CHECK_OK(cuEventRecord(a, s1));
    CHECK_OK(cuLaunchKernel(k10, 1, 1, 1, 32, 1, 1, 0, s1, NULL, NULL));
    CHECK_OK(cuLaunchKernel(k10, 1, 1, 1, 32, 1, 1, 0, s2, NULL, NULL));
    CHECK_OK(cuEventRecord(b1, s1));
    CHECK_OK(cuEventRecord(b2, s2));
    CHECK_OK(cuEventSynchronize(b1));
    CHECK_OK(cuEventSynchronize(b2));
    double m1 = fct_elapsed_ms(a, b1), m2 = fct_elapsed_ms(a, b2);
    CHECK(m1 > 9.9 && m1 < 15);
    CHECK(m2 > 9.9 && m2 < 15);

    /* busy time: the union (~10 ms), not the sum (20 ms); both kernels counted */
    uint64_t busy, kernels;
    if (fct_busy_read(dir, 0, &busy, &kernels)) {
        CHECK(busy >= 9900000ULL && busy < 15000000ULL);
        CHECK_EQ(kernels, 2);
    }
    CHECK_OK(cuEventDestroy_v2(a));
    CHECK_OK(cuEventDestroy_v2(b1));
    CHECK_OK(cuEventDestroy_v2(b2));
    CHECK_OK(cuStreamDestroy_v2(s1));
    CHECK_OK(cuStreamDestroy_v2(s2));
    CHECK_OK(cuModuleUnload(mod));
    CHECK_OK(cuCtxDestroy_v2(ctx));
    return fct_finish("fake_cuda_shared");
}
