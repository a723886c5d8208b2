/*
 * fake_cuda_context.c: regular and primary contexts, the per-thread context stack, and
 * what a context costs: `contextBytes` of the device's memory while it exists, as the
 * real driver takes (cuMemGetInfo shows it).
 */
#include <stdlib.h>

#include "fake_cuda_state.h"

#define CTX_STACK_MAX 64

/* Thread-local, not in the state struct: CUDA's current context is per-thread state. */
static _Thread_local struct {
    struct CUctx_st *stack[CTX_STACK_MAX];
    int depth;
} tls;

bool fake_ctx_valid(const struct CUctx_st *ctx)
{
    fake_cuda_state_t *st = fake_state();
    if (!ctx)
        return false;
    for (unsigned int i = 0; i < st->device_count; i++)
        if (ctx == &st->devices[i].primary)
            return ctx->active;
    if (fake_list_has(&st->contexts, ctx))
        return true;
    FAKE_FOREACH(struct CUgreenCtx_st, g, &st->greens)
    if (&g->ctx == ctx)
        return true;
    return false;
}

struct CUctx_st *fake_current_ctx(void)
{
    struct CUctx_st *c = tls.depth > 0 ? tls.stack[tls.depth - 1] : NULL;
    return fake_ctx_valid(c) ? c : NULL;
}

CUresult fake_need_ctx(struct CUctx_st **out)
{
    *out = fake_current_ctx();
    return *out ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT;
}

void fake_ctx_teardown(struct CUctx_st *ctx)
{
    fake_cuda_state_t *st = fake_state();
    fake_streams_close_ctx(ctx);
    FAKE_FOREACH(fake_alloc_t, a, &st->allocs)
    if (a->ctx == ctx)
        fake_alloc_release(a);
    FAKE_FOREACH(struct CUarray_st, a, &st->arrays)
    if (a->ctx == ctx) {
        fake_uncharge(a->device, a->charged);
        fake_list_remove(&st->arrays, a);
        free(a);
    }
    FAKE_FOREACH(struct CUmipmappedArray_st, a, &st->mipmaps)
    if (a->ctx == ctx) {
        fake_uncharge(a->device, a->charged);
        fake_list_remove(&st->mipmaps, a);
        free(a);
    }
}

void fake_ctx_sync(struct CUctx_st *ctx)
{
    fake_cuda_state_t *st = fake_state();
    for (;;) {
        bool busy = false;
        FAKE_FOREACH(fake_stream_t, s, &st->streams)
        busy = busy || (s->ctx == ctx && s->pending > 0);
        FAKE_FOREACH(fake_stream_t, s, &st->dying_streams)
        busy = busy || (s->ctx == ctx && s->pending > 0);
        if (!busy)
            break;
        (void)pthread_cond_wait(&st->changed, &st->lock);
    }
    fake_pools_on_sync(ctx->device);
}

static void push(struct CUctx_st *ctx)
{
    if (tls.depth < CTX_STACK_MAX)
        tls.stack[tls.depth++] = ctx;
}

/* Removes ctx from the calling thread's stack when it is on top. */
static void pop_if_top(const struct CUctx_st *ctx)
{
    if (tls.depth > 0 && tls.stack[tls.depth - 1] == ctx)
        tls.depth--;
}

static CUresult create(const char *fn, CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    fake_cuda_state_t *st = fake_state();
    CUresult r = fake_enter(fn);
    if (r == CUDA_SUCCESS && (!pctx || (flags & ~(unsigned int)CU_CTX_FLAGS_MASK)))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && !fake_device_valid(dev))
        r = CUDA_ERROR_INVALID_DEVICE;
    if (r != CUDA_SUCCESS)
        return fake_leave(r);
    struct CUctx_st *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return fake_leave(CUDA_ERROR_OUT_OF_MEMORY);
    r = fake_charge(dev, st->devices[dev].cfg.context_bytes);
    if (r != CUDA_SUCCESS) {
        free(ctx);
        return fake_leave(r);
    }
    ctx->device = dev;
    ctx->flags = flags;
    ctx->sm_count = st->devices[dev].cfg.sm_count;
    fake_list_add(&st->contexts, ctx);
    push(ctx); /* cuCtxCreate makes the new context current */
    *pctx = ctx;
    return fake_leave(CUDA_SUCCESS);
}

FAKE_EXPORT CUresult cuCtxCreate(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    return create("cuCtxCreate", pctx, flags, dev);
}

FAKE_EXPORT CUresult cuCtxCreate_v2(CUcontext *pctx, unsigned int flags, CUdevice dev)
{
    return create("cuCtxCreate_v2", pctx, flags, dev);
}

FAKE_EXPORT CUresult cuCtxCreate_v3(CUcontext *pctx, CUexecAffinityParam *paramsArray, int numParams,
                                    unsigned int flags, CUdevice dev)
{
    if (numParams < 0 || (numParams > 0 && !paramsArray))
        return CUDA_ERROR_INVALID_VALUE;
    return create("cuCtxCreate_v3", pctx, flags, dev);
}

FAKE_EXPORT CUresult cuCtxCreate_v4(CUcontext *pctx, CUctxCreateParams *ctxCreateParams, unsigned int flags,
                                    CUdevice dev)
{
    /* NULL params are allowed; exec-affinity and CIG parameters are accepted and ignored. */
    if (ctxCreateParams && ctxCreateParams->numExecAffinityParams > 0 && !ctxCreateParams->execAffinityParams)
        return CUDA_ERROR_INVALID_VALUE;
    return create("cuCtxCreate_v4", pctx, flags, dev);
}

static CUresult destroy(const char *fn, CUcontext ctx)
{
    fake_cuda_state_t *st = fake_state();
    CUresult r = fake_enter(fn);
    if (r == CUDA_SUCCESS && !fake_list_has(&st->contexts, ctx))
        r = CUDA_ERROR_INVALID_CONTEXT; /* also primary and green contexts: not ours to destroy */
    if (r != CUDA_SUCCESS)
        return fake_leave(r);
    fake_list_remove(&st->contexts, ctx); /* invalid from now on, for every thread */
    fake_ctx_teardown(ctx);
    fake_uncharge(ctx->device, st->devices[ctx->device].cfg.context_bytes);
    pop_if_top(ctx);
    free(ctx);
    return fake_leave(CUDA_SUCCESS);
}

FAKE_EXPORT CUresult cuCtxDestroy(CUcontext ctx)
{
    return destroy("cuCtxDestroy", ctx);
}

FAKE_EXPORT CUresult cuCtxDestroy_v2(CUcontext ctx)
{
    return destroy("cuCtxDestroy_v2", ctx);
}

FAKE_EXPORT CUresult cuCtxGetCurrent(CUcontext *pctx)
{
    CUresult r = fake_enter("cuCtxGetCurrent");
    if (r == CUDA_SUCCESS && !pctx)
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS)
        *pctx = fake_current_ctx();
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuCtxSetCurrent(CUcontext ctx)
{
    CUresult r = fake_enter("cuCtxSetCurrent");
    if (r == CUDA_SUCCESS && ctx && !fake_ctx_valid(ctx))
        r = CUDA_ERROR_INVALID_CONTEXT;
    if (r == CUDA_SUCCESS) {
        if (!ctx) {
            if (tls.depth > 0)
                tls.depth--;
        } else if (tls.depth > 0) {
            tls.stack[tls.depth - 1] = ctx;
        } else {
            push(ctx);
        }
    }
    return fake_leave(r);
}

static CUresult push_current(const char *fn, CUcontext ctx)
{
    CUresult r = fake_enter(fn);
    if (r == CUDA_SUCCESS && !fake_ctx_valid(ctx))
        r = CUDA_ERROR_INVALID_CONTEXT;
    if (r == CUDA_SUCCESS && tls.depth >= CTX_STACK_MAX)
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS)
        push(ctx);
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuCtxPushCurrent(CUcontext ctx)
{
    return push_current("cuCtxPushCurrent", ctx);
}

FAKE_EXPORT CUresult cuCtxPushCurrent_v2(CUcontext ctx)
{
    return push_current("cuCtxPushCurrent_v2", ctx);
}

static CUresult pop_current(const char *fn, CUcontext *pctx)
{
    CUresult r = fake_enter(fn);
    if (r == CUDA_SUCCESS && tls.depth == 0)
        r = CUDA_ERROR_INVALID_CONTEXT;
    if (r == CUDA_SUCCESS) {
        struct CUctx_st *top = tls.stack[--tls.depth];
        if (pctx)
            *pctx = top;
    }
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuCtxPopCurrent(CUcontext *pctx)
{
    return pop_current("cuCtxPopCurrent", pctx);
}

FAKE_EXPORT CUresult cuCtxPopCurrent_v2(CUcontext *pctx)
{
    return pop_current("cuCtxPopCurrent_v2", pctx);
}

static CUresult get_device(const char *fn, CUdevice *device, CUcontext ctx)
{
    CUresult r = fake_enter(fn);
    if (r == CUDA_SUCCESS && !device)
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && !ctx)
        r = fake_need_ctx(&ctx);
    if (r == CUDA_SUCCESS && !fake_ctx_valid(ctx))
        r = CUDA_ERROR_INVALID_CONTEXT;
    if (r == CUDA_SUCCESS)
        *device = ctx->device;
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuCtxGetDevice(CUdevice *device)
{
    return get_device("cuCtxGetDevice", device, NULL);
}

FAKE_EXPORT CUresult cuCtxGetDevice_v2(CUdevice *device, CUcontext ctx)
{
    return get_device("cuCtxGetDevice_v2", device, ctx);
}

static CUresult synchronize(const char *fn, CUcontext ctx)
{
    CUresult r = fake_enter(fn);
    if (r == CUDA_SUCCESS && !ctx)
        r = fake_need_ctx(&ctx);
    if (r == CUDA_SUCCESS && !fake_ctx_valid(ctx))
        r = CUDA_ERROR_INVALID_CONTEXT;
    if (r == CUDA_SUCCESS)
        fake_ctx_sync(ctx);
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuCtxSynchronize(void)
{
    return synchronize("cuCtxSynchronize", NULL);
}

FAKE_EXPORT CUresult cuCtxSynchronize_v2(CUcontext ctx)
{
    return synchronize("cuCtxSynchronize_v2", ctx);
}

/* ---- primary contexts --------------------------------------------------------------- */
FAKE_EXPORT CUresult cuDevicePrimaryCtxRetain(CUcontext *pctx, CUdevice dev)
{
    fake_cuda_state_t *st = fake_state();
    CUresult r = fake_enter("cuDevicePrimaryCtxRetain");
    if (r == CUDA_SUCCESS && !pctx)
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && !fake_device_valid(dev))
        r = CUDA_ERROR_INVALID_DEVICE;
    if (r != CUDA_SUCCESS)
        return fake_leave(r);
    struct CUctx_st *p = &st->devices[dev].primary;
    if (!p->active) {
        r = fake_charge(dev, st->devices[dev].cfg.context_bytes);
        if (r != CUDA_SUCCESS)
            return fake_leave(r);
        p->active = true;
    }
    p->primary_refs++;
    *pctx = p;
    return fake_leave(CUDA_SUCCESS);
}

/* Deactivates a primary context: its memory and everything allocated in it go back. */
static void primary_down(int dev)
{
    fake_cuda_state_t *st = fake_state();
    struct CUctx_st *p = &st->devices[dev].primary;
    fake_ctx_teardown(p);
    fake_uncharge(dev, st->devices[dev].cfg.context_bytes);
    p->active = false;
    p->primary_refs = 0;
}

static CUresult primary_release(const char *fn, CUdevice dev)
{
    CUresult r = fake_enter(fn);
    if (r == CUDA_SUCCESS && !fake_device_valid(dev))
        r = CUDA_ERROR_INVALID_DEVICE;
    if (r == CUDA_SUCCESS && fake_state()->devices[dev].primary.primary_refs == 0)
        r = CUDA_ERROR_INVALID_CONTEXT;
    if (r == CUDA_SUCCESS && --fake_state()->devices[dev].primary.primary_refs == 0)
        primary_down(dev);
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuDevicePrimaryCtxRelease(CUdevice dev)
{
    return primary_release("cuDevicePrimaryCtxRelease", dev);
}

FAKE_EXPORT CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev)
{
    return primary_release("cuDevicePrimaryCtxRelease_v2", dev);
}

static CUresult primary_reset(const char *fn, CUdevice dev)
{
    CUresult r = fake_enter(fn);
    if (r == CUDA_SUCCESS && !fake_device_valid(dev))
        r = CUDA_ERROR_INVALID_DEVICE;
    if (r == CUDA_SUCCESS && fake_state()->devices[dev].primary.active)
        primary_down(dev);
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuDevicePrimaryCtxReset(CUdevice dev)
{
    return primary_reset("cuDevicePrimaryCtxReset", dev);
}

FAKE_EXPORT CUresult cuDevicePrimaryCtxReset_v2(CUdevice dev)
{
    return primary_reset("cuDevicePrimaryCtxReset_v2", dev);
}

FAKE_EXPORT CUresult cuDevicePrimaryCtxGetState(CUdevice dev, unsigned int *flags, int *active)
{
    CUresult r = fake_enter("cuDevicePrimaryCtxGetState");
    if (r == CUDA_SUCCESS && (!flags || !active))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && !fake_device_valid(dev))
        r = CUDA_ERROR_INVALID_DEVICE;
    if (r == CUDA_SUCCESS) {
        *flags = fake_state()->devices[dev].primary.flags;
        *active = fake_state()->devices[dev].primary.active;
    }
    return fake_leave(r);
}

static CUresult primary_set_flags(const char *fn, CUdevice dev, unsigned int flags)
{
    CUresult r = fake_enter(fn);
    if (r == CUDA_SUCCESS && (flags & ~(unsigned int)CU_CTX_FLAGS_MASK))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && !fake_device_valid(dev))
        r = CUDA_ERROR_INVALID_DEVICE;
    if (r == CUDA_SUCCESS)
        fake_state()->devices[dev].primary.flags = flags;
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuDevicePrimaryCtxSetFlags(CUdevice dev, unsigned int flags)
{
    return primary_set_flags("cuDevicePrimaryCtxSetFlags", dev, flags);
}

FAKE_EXPORT CUresult cuDevicePrimaryCtxSetFlags_v2(CUdevice dev, unsigned int flags)
{
    return primary_set_flags("cuDevicePrimaryCtxSetFlags_v2", dev, flags);
}
