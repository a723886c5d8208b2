/*
 * fake_cuda_function.c: what the CUDA runtime asks of a function before its first launch:
 * cuFuncGetAttribute, cuFuncSetAttribute, cuOccupancyMaxActiveBlocksPerMultiprocessor
 * (WithFlags). The fake has no compiled code, so a function's static resources are those of
 * the smallest kernel (FAKE_CUDA.md "Function attributes"): no static shared, constant or
 * local memory, 32 registers a thread, 1024 threads a block; PTX and binary version the
 * device's compute capability; occupancy limited by the SM's 2048 threads, 32 blocks and
 * 228 KiB of shared memory, as on an H100. Reached through cuGetProcAddress (the extra rows
 * of fake_cuda_procaddr.c) and exported, as the real driver exports them.
 */
#include "fake_cuda_state.h"
#include "gs_cuda_procs_extra.h"

/* CUfunction_attribute values (cuda.h). */
enum {
    ATTR_MAX_THREADS_PER_BLOCK = 0,
    ATTR_SHARED_SIZE_BYTES = 1,
    ATTR_CONST_SIZE_BYTES = 2,
    ATTR_LOCAL_SIZE_BYTES = 3,
    ATTR_NUM_REGS = 4,
    ATTR_PTX_VERSION = 5,
    ATTR_BINARY_VERSION = 6,
    ATTR_CACHE_MODE_CA = 7,
    ATTR_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8,
    ATTR_PREFERRED_SHARED_MEMORY_CARVEOUT = 9,
};

#define FAKE_SM_THREADS 2048
#define FAKE_SM_BLOCKS 32
#define FAKE_SM_SHARED (228u * 1024u)
#define FAKE_BLOCK_SHARED_DEFAULT (48 * 1024)
#define FAKE_BLOCK_SHARED_MAX (227 * 1024)

/* The compute capability functions are built for: the current context's device, else device 0. */
static int function_cc(void)
{
    const struct CUctx_st *ctx = fake_current_ctx();
    const fake_device_t *d = &fake_state()->devices[ctx ? ctx->device : 0];
    return (int)(d->cfg.cc_major * 10 + d->cfg.cc_minor);
}

FAKE_EXPORT CUresult cuFuncGetAttribute(int *pi, int attrib, CUfunction hfunc)
{
    CUresult r = fake_enter("cuFuncGetAttribute");
    if (r == CUDA_SUCCESS)
        r = !pi ? CUDA_ERROR_INVALID_VALUE : fake_function_valid(hfunc) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
    if (r != CUDA_SUCCESS)
        return fake_leave(r);
    switch (attrib) {
    case ATTR_MAX_THREADS_PER_BLOCK:
        *pi = 1024;
        break;
    case ATTR_SHARED_SIZE_BYTES:
    case ATTR_CONST_SIZE_BYTES:
    case ATTR_LOCAL_SIZE_BYTES:
    case ATTR_CACHE_MODE_CA:
        *pi = 0;
        break;
    case ATTR_NUM_REGS:
        *pi = 32;
        break;
    case ATTR_PTX_VERSION:
    case ATTR_BINARY_VERSION:
        *pi = function_cc();
        break;
    case ATTR_MAX_DYNAMIC_SHARED_SIZE_BYTES:
        *pi = hfunc->max_dynamic_shared ? hfunc->max_dynamic_shared : FAKE_BLOCK_SHARED_DEFAULT;
        break;
    case ATTR_PREFERRED_SHARED_MEMORY_CARVEOUT:
        *pi = hfunc->carveout_set ? hfunc->carveout : -1;
        break;
    default:
        r = CUDA_ERROR_INVALID_VALUE;
    }
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuFuncSetAttribute(CUfunction hfunc, int attrib, int value)
{
    CUresult r = fake_enter("cuFuncSetAttribute");
    if (r == CUDA_SUCCESS && !fake_function_valid(hfunc))
        r = CUDA_ERROR_INVALID_HANDLE;
    if (r != CUDA_SUCCESS)
        return fake_leave(r);
    if (attrib == ATTR_MAX_DYNAMIC_SHARED_SIZE_BYTES && value >= 0 && value <= FAKE_BLOCK_SHARED_MAX) {
        hfunc->max_dynamic_shared = value;
    } else if (attrib == ATTR_PREFERRED_SHARED_MEMORY_CARVEOUT && value >= -1 && value <= 100) {
        hfunc->carveout = value;
        hfunc->carveout_set = true;
    } else {
        r = CUDA_ERROR_INVALID_VALUE; /* read-only, unknown, or out of range */
    }
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int *numBlocks, CUfunction func, int blockSize,
                                                                          size_t dynamicSMemSize, unsigned int flags)
{
    CUresult r = fake_enter("cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags");
    if (r == CUDA_SUCCESS && (!numBlocks || blockSize <= 0 || flags > 1))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && !fake_function_valid(func))
        r = CUDA_ERROR_INVALID_HANDLE;
    if (r != CUDA_SUCCESS)
        return fake_leave(r);
    int warps = (blockSize + 31) / 32;
    int blocks = blockSize > 1024 ? 0 : FAKE_SM_THREADS / (warps * 32);
    if (blocks > FAKE_SM_BLOCKS)
        blocks = FAKE_SM_BLOCKS;
    if (dynamicSMemSize > 0 && blocks > (int)(FAKE_SM_SHARED / dynamicSMemSize))
        blocks = (int)(FAKE_SM_SHARED / dynamicSMemSize);
    *numBlocks = blocks;
    return fake_leave(CUDA_SUCCESS);
}

FAKE_EXPORT CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int *numBlocks, CUfunction func, int blockSize, size_t dynamicSMemSize)
{
    return cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(numBlocks, func, blockSize, dynamicSMemSize, 0);
}
