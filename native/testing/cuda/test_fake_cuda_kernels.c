/*
 * test_fake_cuda_kernels.c: fake kernels take their stated time on the stream (measured
 * with events), launches are asynchronous, graphs and cooperative launches run, green
 * contexts scale waves with their SMs, and busy time is published.
 */

#include "fake_cuda_test.h"

int main(void)
{
    char dir[256];
    if (!fct_busy_dir(dir, sizeof dir))
        return 2;
    fct_configure("{\"contextBytes\": 0, \"devices\": [{\"multiprocessorCount\": 132}]}", NULL);
    CHECK_OK(cuInit(0));
    CUcontext ctx;
    CHECK_OK(cuCtxCreate_v4(&ctx, NULL, 0, 0));
    CUmodule mod;
    CUfunction k2ms, ksleep;
    CHECK_OK(cuModuleLoadData(&mod, "fake"));
    CHECK_OK(cuModuleGetFunction(&k2ms, mod, "sleep_2000"));
    CHECK_OK(cuModuleGetFunction(&ksleep, mod, "sleep"));
    CUstream s;
    CUevent a, b;
    CHECK_OK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CHECK_OK(cuEventCreate(&a, CU_EVENT_DEFAULT));
    CHECK_OK(cuEventCreate(&b, CU_EVENT_DEFAULT));

    /* one 2 ms kernel: ~2 ms of stream time, and the launch returns at once */
    CHECK_OK(cuEventRecord(a, s));
    uint64_t t0 = fct_now_ns();
    CHECK_OK(cuLaunchKernel(k2ms, 1, 1, 1, 32, 1, 1, 0, s, NULL, NULL));
    CHECK(fct_now_ns() - t0 < 1000000ULL);
    CHECK_OK(cuEventRecord(b, s));
    CHECK_RC(cuEventQuery(b), CUDA_ERROR_NOT_READY);
    CHECK_RC(cuStreamQuery(s), CUDA_ERROR_NOT_READY);
    CHECK_OK(cuEventSynchronize(b));
    double ms = fct_elapsed_ms(a, b);
    CHECK(ms > 1.95 && ms < 2.3);
    CHECK(fct_now_ns() - t0 >= 2000000ULL);

    /* duration from the first parameter, five back to back: 5 x 1 ms */
    unsigned long long us = 1000;
    void *params[] = {&us};
    CHECK_OK(cuEventRecord(a, s));
    for (int i = 0; i < 5; i++)
        CHECK_OK(cuLaunchKernel_ptsz(ksleep, 1, 1, 1, 1, 1, 1, 0, s, params, NULL));
    CHECK_OK(cuEventRecord(b, s));
    CHECK_OK(cuStreamSynchronize(s));
    ms = fct_elapsed_ms(a, b);
    CHECK(ms > 4.95 && ms < 5.5);

    /* waves: 264 blocks on 132 SMs = 2 waves */
    CHECK_OK(cuEventRecord(a, s));
    CHECK_OK(cuLaunchKernel(k2ms, 264, 1, 1, 128, 1, 1, 0, s, NULL, NULL));
    CHECK_OK(cuEventRecord(b, s));
    CHECK_OK(cuStreamSynchronize(s));
    ms = fct_elapsed_ms(a, b);
    CHECK(ms > 3.95 && ms < 4.4);

    /* cooperative and Ex launches; too large a cooperative grid is refused */
    CHECK_OK(cuLaunchCooperativeKernel(k2ms, 132, 1, 1, 64, 1, 1, 0, s, NULL));
    CHECK_RC(cuLaunchCooperativeKernel(k2ms, 132 * 33, 1, 1, 64, 1, 1, 0, s, NULL),
             CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE);
    CUlaunchAttribute attr = {.id = CU_LAUNCH_ATTRIBUTE_COOPERATIVE, .value.cooperative = 1};
    CUlaunchConfig cfg = {1, 1, 1, 32, 1, 1, 0, s, &attr, 1};
    CHECK_OK(cuLaunchKernelEx(&cfg, k2ms, NULL, NULL));
    CHECK_RC(cuLaunchKernel(k2ms, 1, 1, 1, 2048, 1, 1, 0, s, NULL, NULL), CUDA_ERROR_INVALID_VALUE);
    CHECK_OK(cuStreamSynchronize(s));

    /* a graph of three 2 ms kernels runs 6 ms */
    CUgraph g;
    CUgraphExec e;
    CUgraphNode n[3];
    CUDA_KERNEL_NODE_PARAMS kp = {.func = k2ms, .gridDimX = 1, .gridDimY = 1, .gridDimZ = 1,
                                  .blockDimX = 1, .blockDimY = 1, .blockDimZ = 1};
    CHECK_OK(cuGraphCreate(&g, 0));
    for (int i = 0; i < 3; i++)
        CHECK_OK(cuGraphAddKernelNode_v2(&n[i], g, i ? &n[i - 1] : NULL, i ? 1 : 0, &kp));
    CHECK_OK(cuGraphInstantiateWithFlags(&e, g, 0));
    CHECK_OK(cuEventRecord(a, s));
    CHECK_OK(cuGraphLaunch(e, s));
    CHECK_OK(cuEventRecord(b, s));
    CHECK_OK(cuCtxSynchronize());
    ms = fct_elapsed_ms(a, b);
    CHECK(ms > 5.95 && ms < 6.5);
    CHECK_OK(cuGraphDestroy(g)); /* the exec keeps its nodes */
    CHECK_OK(cuGraphLaunch_ptsz(e, s));
    CHECK_OK(cuStreamSynchronize(s));
    CHECK_OK(cuGraphExecDestroy(e));

    /* cross-stream wait: s2 waits for s's 2 ms kernel */
    CUstream s2;
    CHECK_OK(cuStreamCreate(&s2, 0));
    CHECK_OK(cuEventRecord(a, s));
    CHECK_OK(cuLaunchKernel(k2ms, 1, 1, 1, 1, 1, 1, 0, s, NULL, NULL));
    CHECK_OK(cuEventRecord(b, s));
    CUevent c;
    CHECK_OK(cuEventCreate(&c, 0));
    CHECK_OK(cuStreamWaitEvent(s2, b, 0));
    CHECK_OK(cuEventRecord(c, s2));
    CHECK_OK(cuEventSynchronize(c));
    CHECK(fct_elapsed_ms(a, c) >= 1.95);

    /* green context with 16 SMs: 132 blocks -> 9 waves of 2 ms */
    CUdevResource res, groups[1], rest;
    unsigned int count = 1;
    CHECK_OK(cuDeviceGetDevResource(0, &res, CU_DEV_RESOURCE_TYPE_SM));
    CHECK_EQ(res.sm.smCount, 132);
    CHECK_OK(cuDevSmResourceSplitByCount(groups, &count, &res, &rest, 0, 16));
    CHECK_EQ(count, 1);
    CHECK_EQ(groups[0].sm.smCount, 16);
    CHECK_EQ(rest.sm.smCount, 116);
    CUdevResourceDesc desc;
    CUgreenCtx green;
    CUcontext gctx;
    CUstream gs;
    CHECK_OK(cuDevResourceGenerateDesc(&desc, groups, 1));
    CHECK_OK(cuGreenCtxCreate(&green, desc, 0, CU_GREEN_CTX_DEFAULT_STREAM));
    CHECK_OK(cuCtxFromGreenCtx(&gctx, green));
    CHECK_OK(cuCtxPushCurrent_v2(gctx));
    CHECK_OK(cuGreenCtxStreamCreate(&gs, green, CU_STREAM_NON_BLOCKING, 0));
    CHECK_OK(cuEventRecord(a, gs));
    CHECK_OK(cuLaunchKernel(k2ms, 132, 1, 1, 1, 1, 1, 0, gs, NULL, NULL));
    CHECK_OK(cuEventRecord(b, gs));
    CHECK_OK(cuEventSynchronize(b));
    ms = fct_elapsed_ms(a, b);
    CHECK(ms > 17.9 && ms < 18.6);
    CHECK_OK(cuStreamDestroy_v2(gs));
    CUcontext popped;
    CHECK_OK(cuCtxPopCurrent_v2(&popped));
    CHECK(popped == gctx);
    CHECK_OK(cuGreenCtxDestroy(green));

    /* busy time file: every kernel above counted, ~2+5+4+2+2+2+6+6+2+18 ms */
    uint64_t busy, kernels;
    if (fct_busy_read(dir, 0, &busy, &kernels)) {
        CHECK(busy >= 47000000ULL && busy < 60000000ULL);
        CHECK_EQ(kernels, 1 + 5 + 1 + 2 + 3 + 3 + 1 + 1);
    }
    CHECK_OK(cuEventDestroy_v2(a));
    CHECK_OK(cuEventDestroy_v2(b));
    CHECK_OK(cuEventDestroy_v2(c));
    CHECK_OK(cuStreamDestroy_v2(s));
    CHECK_OK(cuStreamDestroy_v2(s2));
    CHECK_OK(cuModuleUnload(mod));
    CHECK_OK(cuCtxDestroy_v2(ctx));
    return fct_finish("fake_cuda_kernels");
}
