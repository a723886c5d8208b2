/*
 * test_fake_cuda_inline.c: "inlineLaunch" (FAKE_CUDA.md): a 0 us kernel or an event onto a
 * stream with nothing queued completes inside the call; anything behind queued work keeps
 * its order, and kernels with a run time stay asynchronous. With "launchTouchBytes" (each
 * launch walks a scratch buffer, for launch-path benches) all of that holds the same.
 */
#include <stdio.h>
#include <stdlib.h>

#include "fake_cuda_test.h"

int main(void)
{
    fct_configure("{\"contextBytes\": 0, \"inlineLaunch\": true, \"launchTouchBytes\": 65536, \"devices\": [{}]}", NULL);
    CHECK_OK(cuInit(0));
    CUcontext ctx;
    CHECK_OK(cuCtxCreate_v4(&ctx, NULL, 0, 0));
    CUmodule mod;
    CUfunction kempty, k2ms, k200ms;
    CHECK_OK(cuModuleLoadData(&mod, "fake"));
    CHECK_OK(cuModuleGetFunction(&kempty, mod, "empty"));
    CHECK_OK(cuModuleGetFunction(&k2ms, mod, "sleep_2000"));
    CHECK_OK(cuModuleGetFunction(&k200ms, mod, "sleep_200000"));
    CUstream s;
    CUevent e1, e2;
    CHECK_OK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CHECK_OK(cuEventCreate(&e1, CU_EVENT_DEFAULT));
    CHECK_OK(cuEventCreate(&e2, CU_EVENT_DEFAULT));

    /* done in the call: no worker involved, so no race with it */
    CHECK_OK(cuLaunchKernel(kempty, 1, 1, 1, 32, 1, 1, 0, s, NULL, NULL));
    CHECK_OK(cuStreamQuery(s));
    CHECK_OK(cuEventRecord(e1, s));
    CHECK_OK(cuEventQuery(e1));

    /* behind queued work, an empty kernel and an event wait their turn. The queued kernel
     * runs 200 ms so that the query surely comes before it ends: with a 2 ms one, a loaded
     * machine under the sanitizers sometimes took longer than that between the launch and
     * the query (the two calls between them walk 64 KiB each), and the event was done. */
    CHECK_OK(cuLaunchKernel(k200ms, 1, 1, 1, 32, 1, 1, 0, s, NULL, NULL));
    CHECK_OK(cuLaunchKernel(kempty, 1, 1, 1, 32, 1, 1, 0, s, NULL, NULL));
    CHECK_OK(cuEventRecord(e2, s));
    CHECK_RC(cuEventQuery(e2), CUDA_ERROR_NOT_READY);
    CHECK_OK(cuEventSynchronize(e2));

    /* and they run in order: from e1 to e2 is the 2 ms kernel's time. At least 2 ms; the
     * upper bound only has to tell it from the 200 ms kernel before it (e1 recorded before
     * that one ended would read over 200): a loaded 2-core machine under the sanitizers
     * delayed the fake stream's thread past 2.5 ms (npm test, 2026-12-06). */
    CHECK_OK(cuEventRecord(e1, s));
    CHECK_OK(cuLaunchKernel(k2ms, 1, 1, 1, 32, 1, 1, 0, s, NULL, NULL));
    CHECK_OK(cuLaunchKernel(kempty, 1, 1, 1, 32, 1, 1, 0, s, NULL, NULL));
    CHECK_OK(cuEventRecord(e2, s));
    CHECK_OK(cuEventSynchronize(e2));
    float ms = -1;
    CHECK_OK(cuEventElapsedTime_v2(&ms, e1, e2));
    CHECK(ms > 1.95 && ms < 100);

    CHECK_OK(cuEventDestroy_v2(e1));
    CHECK_OK(cuEventDestroy_v2(e2));
    CHECK_OK(cuStreamDestroy_v2(s));
    CHECK_OK(cuModuleUnload(mod));
    CHECK_OK(cuCtxDestroy_v2(ctx));
    return fct_finish("fake_cuda_inline");
}
