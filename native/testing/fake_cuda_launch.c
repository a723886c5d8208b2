/*
 * fake_cuda_launch.c: modules, functions and kernel launches.
 *
 * Any image loads, but one starting "nobinary", which cuModuleLoadData refuses with
 * CUDA_ERROR_NO_BINARY_FOR_GPU as the driver refuses a fatbin with no code for the GPU (a
 * library takes it: fake_cuda_library.c); cuModuleGetFunction finds every name. What a kernel does is its run
 * time: "sleep_<us>" runs <us> microseconds; "sleep" reads its run time in microseconds
 * from its first parameter (a uint64_t, through kernelParams[0] or the first 8 bytes of
 * an `extra` buffer); any other name runs `defaultKernelMicros`. That time is per wave:
 * a grid of B blocks on a context with S SMs takes ceil(B / S) waves, so a green context
 * with fewer SMs runs a wide grid proportionally longer.
 */
#include <stdlib.h>
#include <string.h>

#include "fake_cuda_state.h"

FAKE_EXPORT CUresult cuModuleLoadData(CUmodule *module, const void *image)
{
    struct CUctx_st *ctx;
    CUresult r = fake_enter("cuModuleLoadData");
    if (r == CUDA_SUCCESS && (!module || !image))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS)
        r = fake_need_ctx(&ctx);
    if (r == CUDA_SUCCESS && strncmp(image, "nobinary", 8) == 0)
        r = CUDA_ERROR_NO_BINARY_FOR_GPU;
    if (r == CUDA_SUCCESS) {
        struct CUmod_st *m = calloc(1, sizeof *m);
        if (!m)
            return fake_leave(CUDA_ERROR_OUT_OF_MEMORY);
        fake_list_add(&fake_state()->modules, m);
        *module = m;
    }
    return fake_leave(r);
}

void fake_module_free(struct CUmod_st *m)
{
    fake_list_remove(&fake_state()->modules, m);
    for (struct CUfunc_st *f = m->functions, *next; f; f = next) {
        next = f->next;
        free(f);
    }
    free(m);
}

FAKE_EXPORT CUresult cuModuleUnload(CUmodule hmod)
{
    CUresult r = fake_enter("cuModuleUnload");
    if (r == CUDA_SUCCESS && (!fake_list_has(&fake_state()->modules, hmod) || hmod->library))
        r = CUDA_ERROR_INVALID_HANDLE;
    if (r == CUDA_SUCCESS)
        fake_module_free(hmod);
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuModuleGetFunction(CUfunction *hfunc, CUmodule hmod, const char *name)
{
    CUresult r = fake_enter("cuModuleGetFunction");
    if (r == CUDA_SUCCESS && (!hfunc || !name))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && (!fake_list_has(&fake_state()->modules, hmod) || hmod->library))
        r = CUDA_ERROR_INVALID_HANDLE;
    if (r != CUDA_SUCCESS)
        return fake_leave(r);
    return fake_leave(fake_module_function(hmod, name, hfunc));
}

CUresult fake_module_function(struct CUmod_st *hmod, const char *name, struct CUfunc_st **hfunc)
{
    for (struct CUfunc_st *f = hmod->functions; f; f = f->next)
        if (strncmp(f->name, name, sizeof f->name - 1) == 0) {
            *hfunc = f;
            return CUDA_SUCCESS;
        }
    struct CUfunc_st *f = calloc(1, sizeof *f);
    if (!f)
        return CUDA_ERROR_OUT_OF_MEMORY;
    strncpy(f->name, name, sizeof f->name - 1);
    f->duration_us = fake_state()->config.default_kernel_us;
    if (strcmp(name, "sleep") == 0) {
        f->duration_from_param = true;
    } else if (strncmp(name, "sleep_", 6) == 0 && name[6]) {
        char *end;
        unsigned long long us = strtoull(name + 6, &end, 10);
        if (*end == '\0')
            f->duration_us = us;
    }
    f->next = hmod->functions;
    hmod->functions = f;
    *hfunc = f;
    return CUDA_SUCCESS;
}

bool fake_function_valid(const struct CUfunc_st *f)
{
    if (!f)
        return false;
    FAKE_FOREACH(struct CUmod_st, m, &fake_state()->modules)
    for (const struct CUfunc_st *g = m->functions; g; g = g->next)
        if (g == f)
            return true;
    return false;
}

uint64_t fake_kernel_ns(const struct CUfunc_st *f, const struct CUctx_st *ctx, unsigned long long blocks,
                        void **params, void **extra)
{
    uint64_t us = f->duration_us;
    if (f->duration_from_param) {
        us = 0;
        if (params && params[0]) {
            memcpy(&us, params[0], sizeof us);
        } else if (extra) {
            for (size_t i = 0; extra[i] != CU_LAUNCH_PARAM_END && i < 16; i += 2)
                if (extra[i] == CU_LAUNCH_PARAM_BUFFER_POINTER && extra[i + 1])
                    memcpy(&us, extra[i + 1], sizeof us);
        }
    }
    unsigned long long sms = ctx->sm_count ? ctx->sm_count : 1;
    unsigned long long waves = (blocks + sms - 1) / sms;
    return us * 1000ULL * (waves ? waves : 1);
}

/*
 * "launchTouchBytes": a launch walks through that many bytes (one write per cache line) of a
 * private buffer four times as large, a new part each launch, as a real driver's launch works
 * through its own state and evicts its caller's cache lines: a launch-path bench then sees what
 * the caller's code costs when its data is no longer in the cache (FAKE_CUDA.md). Under the
 * state's lock (fake_enter).
 */
static void touch_cache(void)
{
    static unsigned char *buf;  /* the fake's own scratch: allocated once, for the process */
    static unsigned long long at;
    unsigned long long n = fake_state()->config.launch_touch_bytes, size = 4 * n;
    if (n == 0 || (buf == NULL && (buf = malloc(size)) == NULL))
        return;
    for (unsigned long long i = 0; i < n; i += 64)
        buf[(at + i) % size]++;
    at = (at + n) % size;
}

/* Shared by every launch entry point: validates, then queues one kernel op. */
static CUresult launch(const char *fn, CUfunction f, unsigned int gx, unsigned int gy, unsigned int gz,
                       unsigned int bx, unsigned int by, unsigned int bz, CUstream h, void **params, void **extra,
                       bool cooperative)
{
    struct CUctx_st *ctx;
    fake_stream_t *s = NULL;
    CUresult r = fake_enter(fn);
    if (r == CUDA_SUCCESS)
        r = fake_need_ctx(&ctx);
    if (r == CUDA_SUCCESS && !fake_function_valid(f))
        r = CUDA_ERROR_INVALID_HANDLE;
    if (r == CUDA_SUCCESS && (!gx || !gy || !gz || !bx || !by || !bz || (unsigned long long)bx * by * bz > 1024))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && params && extra)
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS)
        r = fake_stream_resolve(h, &s);
    unsigned long long blocks = (unsigned long long)gx * gy * gz;
    /* A cooperative grid must be resident at once: at most 32 blocks per SM here. */
    if (r == CUDA_SUCCESS && cooperative && blocks > 32ULL * s->ctx->sm_count)
        r = CUDA_ERROR_COOPERATIVE_LAUNCH_TOO_LARGE;
    if (r != CUDA_SUCCESS)
        return fake_leave(r);
    fake_op_t *op = fake_op_new(FAKE_OP_KERNEL);
    if (!op)
        return fake_leave(CUDA_ERROR_OUT_OF_MEMORY);
    op->duration_ns = fake_kernel_ns(f, s->ctx, blocks, params, extra);
    op->kernels = 1;
    fake_stream_push(s, op);
    fake_launch_log(fn, f, s->ctx, blocks);
    touch_cache();
    return fake_leave(CUDA_SUCCESS);
}

FAKE_EXPORT CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ,
                                    unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ,
                                    unsigned int sharedMemBytes, CUstream hStream, void **kernelParams, void **extra)
{
    (void)sharedMemBytes;
    return launch("cuLaunchKernel", f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, hStream,
                  kernelParams, extra, false);
}

FAKE_EXPORT CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                         unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
                                         unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
                                         void **kernelParams, void **extra)
{
    (void)sharedMemBytes;
    return launch("cuLaunchKernel_ptsz", f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, hStream,
                  kernelParams, extra, false);
}

static CUresult launch_ex(const char *fn, const CUlaunchConfig *c, CUfunction f, void **params, void **extra)
{
    if (!c || (c->numAttrs && !c->attrs))
        return CUDA_ERROR_INVALID_VALUE;
    bool cooperative = false;
    for (unsigned int i = 0; i < c->numAttrs; i++)
        if (c->attrs[i].id == CU_LAUNCH_ATTRIBUTE_COOPERATIVE)
            cooperative = c->attrs[i].value.cooperative != 0;
    return launch(fn, f, c->gridDimX, c->gridDimY, c->gridDimZ, c->blockDimX, c->blockDimY, c->blockDimZ, c->hStream,
                  params, extra, cooperative);
}

FAKE_EXPORT CUresult cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra)
{
    return launch_ex("cuLaunchKernelEx", config, f, kernelParams, extra);
}

FAKE_EXPORT CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig *config, CUfunction f, void **kernelParams,
                                           void **extra)
{
    return launch_ex("cuLaunchKernelEx_ptsz", config, f, kernelParams, extra);
}

FAKE_EXPORT CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                               unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
                                               unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
                                               void **kernelParams)
{
    (void)sharedMemBytes;
    return launch("cuLaunchCooperativeKernel", f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ,
                  hStream, kernelParams, NULL, true);
}

FAKE_EXPORT CUresult cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                                    unsigned int gridDimZ, unsigned int blockDimX,
                                                    unsigned int blockDimY, unsigned int blockDimZ,
                                                    unsigned int sharedMemBytes, CUstream hStream, void **kernelParams)
{
    (void)sharedMemBytes;
    return launch("cuLaunchCooperativeKernel_ptsz", f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ,
                  hStream, kernelParams, NULL, true);
}

FAKE_EXPORT CUresult cuLaunchCooperativeKernelMultiDevice(CUDA_LAUNCH_PARAMS *launchParamsList, unsigned int numDevices,
                                                          unsigned int flags)
{
    if (!launchParamsList || numDevices == 0 || flags > 3)
        return CUDA_ERROR_INVALID_VALUE;
    /* One launch per entry, each on its own stream (the fake does not check devices). */
    for (unsigned int i = 0; i < numDevices; i++) {
        const CUDA_LAUNCH_PARAMS *p = &launchParamsList[i];
        CUresult r = launch("cuLaunchCooperativeKernelMultiDevice", p->function, p->gridDimX, p->gridDimY,
                            p->gridDimZ, p->blockDimX, p->blockDimY, p->blockDimZ, p->hStream, p->kernelParams, NULL,
                            true);
        if (r != CUDA_SUCCESS)
            return r;
    }
    return CUDA_SUCCESS;
}
