/*
 * fake_cuda_green.c: green contexts (SM partitions). Supported when the device is
 * Hopper or newer (compute capability >= 9) and the configured driver is >= 12.4;
 * otherwise CUDA_ERROR_NOT_SUPPORTED, so callers' refusal paths can be tested. Kernels
 * launched in a green context see only its SMs (fake_kernel_ns counts waves with them).
 *
 * Which SMs: a resource carries the index of its first SM in its opaque padding (bytes
 * 0-3 of _internal_padding, private to the fake; bytes 4-7 its device); the device's starts at 0, a split's
 * groups follow each other from the input's first SM, the remainder after them, and a
 * descriptor of several groups starts at the lowest. So two processes that each take "the
 * first group" get the same SMs, as on a GPU; the launch log shows it (first=).
 */
#include <stdlib.h>
#include <string.h>

#include "fake_cuda_state.h"

static bool supported(int dev)
{
    const fake_cuda_state_t *st = fake_state();
    return st->config.driver_version >= 12040 && st->devices[dev].cfg.cc_major >= 9;
}

static unsigned int first_sm(const CUdevResource *res)
{
    unsigned int first;
    memcpy(&first, res->_internal_padding, sizeof first);
    return first;
}

static void set_first_sm(CUdevResource *res, unsigned int first)
{
    memcpy(res->_internal_padding, &first, sizeof first);
}

/* The device a resource came from: bytes 4-7 of the padding (splits copy it from their input). */
static unsigned int device_of(const CUdevResource *res)
{
    unsigned int dev;
    memcpy(&dev, res->_internal_padding + 4, sizeof dev);
    return dev < FAKE_CUDA_MAX_DEVICES ? dev : 0;
}

static void sm_resource(CUdevResource *res, unsigned int dev, const fake_cuda_device_config_t *c, unsigned int sms,
                        unsigned int first)
{
    memset(res, 0, sizeof *res);
    res->type = CU_DEV_RESOURCE_TYPE_SM;
    res->sm.smCount = sms;
    res->sm.minSmPartitionSize = c->sm_partition_min;
    res->sm.smCoscheduledAlignment = c->sm_alignment;
    set_first_sm(res, first);
    memcpy(res->_internal_padding + 4, &dev, sizeof dev);
}

FAKE_EXPORT CUresult cuDeviceGetDevResource(CUdevice device, CUdevResource *resource, CUdevResourceType type)
{
    CUresult r = fake_enter("cuDeviceGetDevResource");
    if (r == CUDA_SUCCESS && (!resource || type != CU_DEV_RESOURCE_TYPE_SM))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && !fake_device_valid(device))
        r = CUDA_ERROR_INVALID_DEVICE;
    if (r == CUDA_SUCCESS && !supported(device))
        r = CUDA_ERROR_NOT_SUPPORTED;
    if (r == CUDA_SUCCESS) {
        const fake_cuda_device_config_t *c = &fake_state()->devices[device].cfg;
        sm_resource(resource, (unsigned int)device, c, c->sm_count, 0);
    }
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuDevSmResourceSplitByCount(CUdevResource *result, unsigned int *nbGroups,
                                                 const CUdevResource *input, CUdevResource *remaining,
                                                 unsigned int useFlags, unsigned int minCount)
{
    CUresult r = fake_enter("cuDevSmResourceSplitByCount");
    if (r == CUDA_SUCCESS && (!nbGroups || !input || input->type != CU_DEV_RESOURCE_TYPE_SM || useFlags > 3 ||
                              (result && *nbGroups == 0)))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r != CUDA_SUCCESS)
        return fake_leave(r);
    unsigned int align = input->sm.smCoscheduledAlignment ? input->sm.smCoscheduledAlignment : 1;
    unsigned int min = input->sm.minSmPartitionSize ? input->sm.minSmPartitionSize : 1;
    if (useFlags & CU_DEV_SM_RESOURCE_SPLIT_IGNORE_SM_COSCHEDULING)
        align = min = 1;
    unsigned int size = minCount > min ? minCount : min;
    size = (size + align - 1) / align * align;
    /* only the device's first smGroupable SMs can be grouped (the GPCs a GPU's floor-sweeping
     * left with enough SMs); the rest of the input can only be remainder */
    unsigned int groupable = fake_state()->devices[device_of(input)].cfg.sm_groupable;
    unsigned int usable = first_sm(input) >= groupable ? 0 : groupable - first_sm(input);
    if (usable > input->sm.smCount)
        usable = input->sm.smCount;
    unsigned int possible = size ? usable / size : 0;
    unsigned int groups = result ? (*nbGroups < possible ? *nbGroups : possible) : possible;
    if (groups == 0)
        return fake_leave(CUDA_ERROR_INVALID_RESOURCE_CONFIGURATION);
    CUdevResource proto = *input;
    for (unsigned int i = 0; result && i < groups; i++) {
        result[i] = proto;
        result[i].sm.smCount = size;
        set_first_sm(&result[i], first_sm(input) + i * size);
    }
    if (remaining) {
        *remaining = proto;
        remaining->sm.smCount = input->sm.smCount - groups * size;
        set_first_sm(remaining, first_sm(input) + groups * size);
    }
    *nbGroups = groups;
    return fake_leave(CUDA_SUCCESS);
}

FAKE_EXPORT CUresult cuDevResourceGenerateDesc(CUdevResourceDesc *phDesc, CUdevResource *resources,
                                               unsigned int nbResources)
{
    CUresult r = fake_enter("cuDevResourceGenerateDesc");
    if (r == CUDA_SUCCESS && (!phDesc || !resources || nbResources == 0))
        r = CUDA_ERROR_INVALID_VALUE;
    unsigned int sms = 0, first = ~0u;
    for (unsigned int i = 0; r == CUDA_SUCCESS && i < nbResources; i++) {
        if (resources[i].type != CU_DEV_RESOURCE_TYPE_SM) {
            r = CUDA_ERROR_INVALID_RESOURCE_TYPE;
        } else {
            sms += resources[i].sm.smCount;
            first = first_sm(&resources[i]) < first ? first_sm(&resources[i]) : first;
        }
    }
    if (r == CUDA_SUCCESS && sms == 0)
        r = CUDA_ERROR_INVALID_RESOURCE_CONFIGURATION;
    if (r == CUDA_SUCCESS) {
        struct CUdevResourceDesc_st *d = calloc(1, sizeof *d);
        if (!d)
            return fake_leave(CUDA_ERROR_OUT_OF_MEMORY);
        d->sm_count = sms;
        d->sm_first = first;
        fake_list_add(&fake_state()->descs, d); /* descriptors live until exit, as in CUDA */
        *phDesc = d;
    }
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuGreenCtxCreate(CUgreenCtx *phCtx, CUdevResourceDesc desc, CUdevice dev, unsigned int flags)
{
    fake_cuda_state_t *st = fake_state();
    CUresult r = fake_enter("cuGreenCtxCreate");
    if (r == CUDA_SUCCESS && (!phCtx || !fake_list_has(&st->descs, desc) || flags != CU_GREEN_CTX_DEFAULT_STREAM))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && !fake_device_valid(dev))
        r = CUDA_ERROR_INVALID_DEVICE;
    if (r == CUDA_SUCCESS && !supported(dev))
        r = CUDA_ERROR_NOT_SUPPORTED;
    if (r == CUDA_SUCCESS && desc->sm_count > st->devices[dev].cfg.sm_count)
        r = CUDA_ERROR_INVALID_RESOURCE_CONFIGURATION;
    if (r != CUDA_SUCCESS)
        return fake_leave(r);
    /* A green context retains the device's primary context (and so its memory). */
    struct CUctx_st *p = &st->devices[dev].primary;
    if (!p->active) {
        r = fake_charge(dev, st->devices[dev].cfg.context_bytes);
        if (r != CUDA_SUCCESS)
            return fake_leave(r);
        p->active = true;
    }
    struct CUgreenCtx_st *g = calloc(1, sizeof *g);
    if (!g) {
        if (p->primary_refs == 0) {
            p->active = false;
            fake_uncharge(dev, st->devices[dev].cfg.context_bytes);
        }
        return fake_leave(CUDA_ERROR_OUT_OF_MEMORY);
    }
    p->primary_refs++;
    g->ctx.device = dev;
    g->ctx.sm_count = desc->sm_count;
    g->ctx.sm_first = desc->sm_first;
    g->ctx.green = g;
    fake_list_add(&st->greens, g);
    *phCtx = g;
    return fake_leave(CUDA_SUCCESS);
}

FAKE_EXPORT CUresult cuGreenCtxDestroy(CUgreenCtx hCtx)
{
    fake_cuda_state_t *st = fake_state();
    CUresult r = fake_enter("cuGreenCtxDestroy");
    if (r == CUDA_SUCCESS && !fake_list_has(&st->greens, hCtx))
        r = CUDA_ERROR_INVALID_HANDLE;
    if (r != CUDA_SUCCESS)
        return fake_leave(r);
    fake_list_remove(&st->greens, hCtx);
    fake_ctx_teardown(&hCtx->ctx);
    int dev = hCtx->ctx.device;
    free(hCtx);
    struct CUctx_st *p = &st->devices[dev].primary;
    if (p->primary_refs > 0 && --p->primary_refs == 0) {
        fake_ctx_teardown(p);
        fake_uncharge(dev, st->devices[dev].cfg.context_bytes);
        p->active = false;
    }
    return fake_leave(CUDA_SUCCESS);
}

FAKE_EXPORT CUresult cuCtxFromGreenCtx(CUcontext *pContext, CUgreenCtx hCtx)
{
    CUresult r = fake_enter("cuCtxFromGreenCtx");
    if (r == CUDA_SUCCESS && !pContext)
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && !fake_list_has(&fake_state()->greens, hCtx))
        r = CUDA_ERROR_INVALID_HANDLE;
    if (r == CUDA_SUCCESS)
        *pContext = &hCtx->ctx;
    return fake_leave(r);
}

static CUresult ctx_resource(const char *fn, struct CUctx_st *ctx, CUdevResource *resource, CUdevResourceType type)
{
    CUresult r = fake_enter(fn);
    if (r == CUDA_SUCCESS && (!resource || type != CU_DEV_RESOURCE_TYPE_SM))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && !fake_ctx_valid(ctx))
        r = CUDA_ERROR_INVALID_CONTEXT;
    if (r == CUDA_SUCCESS)
        sm_resource(resource, (unsigned int)ctx->device, &fake_state()->devices[ctx->device].cfg, ctx->sm_count, ctx->sm_first);
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuGreenCtxGetDevResource(CUgreenCtx hCtx, CUdevResource *resource, CUdevResourceType type)
{
    /* Validated inside under the lock (a green context's CUcontext is valid iff it is). */
    return ctx_resource("cuGreenCtxGetDevResource", hCtx ? &hCtx->ctx : NULL, resource, type);
}

FAKE_EXPORT CUresult cuCtxGetDevResource(CUcontext hCtx, CUdevResource *resource, CUdevResourceType type)
{
    return ctx_resource("cuCtxGetDevResource", hCtx, resource, type);
}
