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

#include <string.h>

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
    ATTR_CLUSTER_SIZE_MUST_BE_SET = 10,
    ATTR_REQUIRED_CLUSTER_WIDTH = 11,
    ATTR_REQUIRED_CLUSTER_HEIGHT = 12,
    ATTR_REQUIRED_CLUSTER_DEPTH = 13,
    ATTR_NON_PORTABLE_CLUSTER_SIZE_ALLOWED = 14,
    ATTR_CLUSTER_SCHEDULING_POLICY_PREFERENCE = 15,
};

/* Thread block clusters (sm_90): 8 blocks portably, 16 with NON_PORTABLE_CLUSTER_SIZE_ALLOWED. */
#define FAKE_CLUSTER_PORTABLE 8
#define FAKE_CLUSTER_NON_PORTABLE 16
#define FAKE_BLOCK_SHARED_RESERVED 1024

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
    case ATTR_CLUSTER_SIZE_MUST_BE_SET:
        *pi = 0;
        break;
    case ATTR_REQUIRED_CLUSTER_WIDTH:
    case ATTR_REQUIRED_CLUSTER_HEIGHT:
    case ATTR_REQUIRED_CLUSTER_DEPTH:
        *pi = hfunc->cluster_dim[attrib - ATTR_REQUIRED_CLUSTER_WIDTH];
        break;
    case ATTR_NON_PORTABLE_CLUSTER_SIZE_ALLOWED:
        *pi = hfunc->non_portable_cluster;
        break;
    case ATTR_CLUSTER_SCHEDULING_POLICY_PREFERENCE:
        *pi = hfunc->cluster_policy;
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
    } else if (attrib >= ATTR_REQUIRED_CLUSTER_WIDTH && attrib <= ATTR_REQUIRED_CLUSTER_DEPTH && value >= 0 &&
               value <= FAKE_CLUSTER_NON_PORTABLE) {
        hfunc->cluster_dim[attrib - ATTR_REQUIRED_CLUSTER_WIDTH] = value;
    } else if (attrib == ATTR_NON_PORTABLE_CLUSTER_SIZE_ALLOWED && (value == 0 || value == 1)) {
        hfunc->non_portable_cluster = value;
    } else if (attrib == ATTR_CLUSTER_SCHEDULING_POLICY_PREFERENCE && value >= 0 && value <= 2) {
        hfunc->cluster_policy = value;
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

/* The most dynamic shared memory a block may ask so that numBlocks blocks of blockSize threads
 * share an SM (0 when they cannot: too many threads or blocks). */
FAKE_EXPORT CUresult cuOccupancyAvailableDynamicSMemPerBlock(size_t *dynamicSmemSize, CUfunction func, int numBlocks, int blockSize)
{
    CUresult r = fake_enter("cuOccupancyAvailableDynamicSMemPerBlock");
    if (r == CUDA_SUCCESS && (!dynamicSmemSize || numBlocks <= 0 || blockSize <= 0))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && !fake_function_valid(func))
        r = CUDA_ERROR_INVALID_HANDLE;
    if (r != CUDA_SUCCESS)
        return fake_leave(r);
    int warps = (blockSize + 31) / 32;
    size_t bytes = 0;
    if (blockSize <= 1024 && numBlocks <= FAKE_SM_BLOCKS && numBlocks * warps * 32 <= FAKE_SM_THREADS) {
        size_t per_block = FAKE_SM_SHARED / (size_t)numBlocks;
        bytes = per_block > FAKE_BLOCK_SHARED_RESERVED ? per_block - FAKE_BLOCK_SHARED_RESERVED : 0;
        if (bytes > FAKE_BLOCK_SHARED_MAX)
            bytes = FAKE_BLOCK_SHARED_MAX;
    }
    *dynamicSmemSize = bytes;
    return fake_leave(CUDA_SUCCESS);
}

/* A cluster's size: the launch's CLUSTER_DIMENSION attribute, else the function's required
 * dimensions, else 1; 0 for a zero dimension, more than 16 for any dimension over 16. */
static int cluster_size(const CUlaunchConfig *config, CUfunction func)
{
    unsigned dim[3] = {0, 0, 0};
    for (unsigned i = 0; i < config->numAttrs; i++)
        if (config->attrs[i].id == CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION) {
            dim[0] = config->attrs[i].value.clusterDim.x;
            dim[1] = config->attrs[i].value.clusterDim.y;
            dim[2] = config->attrs[i].value.clusterDim.z;
        }
    if (!dim[0] && func->cluster_dim[0])
        for (int k = 0; k < 3; k++)
            dim[k] = (unsigned)(func->cluster_dim[k] ? func->cluster_dim[k] : 1);
    if (!dim[0])
        return 1;
    if (!dim[1] || !dim[2])
        return 0;
    if (dim[0] > FAKE_CLUSTER_NON_PORTABLE || dim[1] > FAKE_CLUSTER_NON_PORTABLE || dim[2] > FAKE_CLUSTER_NON_PORTABLE)
        return FAKE_CLUSTER_NON_PORTABLE + 1; /* larger than any cluster allowed */
    return (int)(dim[0] * dim[1] * dim[2]);
}

static CUresult cluster_gate(const char *name, const void *out, CUfunction func, const CUlaunchConfig *config)
{
    CUresult r = fake_enter(name);
    if (r == CUDA_SUCCESS && (!out || !config || (config->numAttrs && !config->attrs)))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && !fake_function_valid(func))
        r = CUDA_ERROR_INVALID_HANDLE;
    return r;
}

FAKE_EXPORT CUresult cuOccupancyMaxPotentialClusterSize(int *clusterSize, CUfunction func, const CUlaunchConfig *config)
{
    CUresult r = cluster_gate("cuOccupancyMaxPotentialClusterSize", clusterSize, func, config);
    if (r == CUDA_SUCCESS)
        *clusterSize = func->non_portable_cluster ? FAKE_CLUSTER_NON_PORTABLE : FAKE_CLUSTER_PORTABLE;
    return fake_leave(r);
}

/* How many clusters of the launch's size can be resident at once: the SMs' blocks (occupancy
 * of the launch's block and shared memory) grouped by cluster size; a cluster larger than the
 * function allows is CUDA_ERROR_INVALID_CLUSTER_SIZE. */
FAKE_EXPORT CUresult cuOccupancyMaxActiveClusters(int *numClusters, CUfunction func, const CUlaunchConfig *config)
{
    CUresult r = cluster_gate("cuOccupancyMaxActiveClusters", numClusters, func, config);
    if (r != CUDA_SUCCESS)
        return fake_leave(r);
    int size = cluster_size(config, func);
    int limit = func->non_portable_cluster ? FAKE_CLUSTER_NON_PORTABLE : FAKE_CLUSTER_PORTABLE;
    unsigned threads = config->blockDimX * config->blockDimY * config->blockDimZ;
    if (size <= 0 || size > limit || threads == 0 || threads > 1024)
        return fake_leave(size > limit ? CUDA_ERROR_INVALID_CLUSTER_SIZE : CUDA_ERROR_INVALID_VALUE);
    int warps = (int)(threads + 31) / 32;
    int blocks = FAKE_SM_THREADS / (warps * 32);
    if (blocks > FAKE_SM_BLOCKS)
        blocks = FAKE_SM_BLOCKS;
    if (config->sharedMemBytes > 0 && blocks > (int)(FAKE_SM_SHARED / config->sharedMemBytes))
        blocks = (int)(FAKE_SM_SHARED / config->sharedMemBytes);
    const struct CUctx_st *ctx = fake_current_ctx();
    int sms = (int)fake_state()->devices[ctx ? ctx->device : 0].cfg.sm_count;
    *numClusters = sms * blocks / size;
    return fake_leave(CUDA_SUCCESS);
}

/* TMA descriptors (sm_90 kernels' parameters). The real format is the driver's own; the fake
 * checks the arguments as cuda.h documents them and writes its own encoding: word 0 the
 * address, 1-5 the dimensions, 6-9 the strides, 10 the box (8 bits each, less one), 11 the
 * element strides (4 bits each), data type, rank, interleave, swizzle, promotion and fill. */
FAKE_EXPORT CUresult cuTensorMapEncodeTiled(CUtensorMap *tensorMap, int tensorDataType, cuuint32_t tensorRank, void *globalAddress,
                                            const cuuint64_t *globalDim, const cuuint64_t *globalStrides, const cuuint32_t *boxDim,
                                            const cuuint32_t *elementStrides, int interleave, int swizzle, int l2Promotion, int oobFill)
{
    CUresult r = fake_enter("cuTensorMapEncodeTiled");
    if (r != CUDA_SUCCESS)
        return fake_leave(r);
    uintptr_t address = (uintptr_t)globalAddress;
    bool ok = tensorMap && globalDim && boxDim && elementStrides && tensorRank >= 1 && tensorRank <= 5 && tensorDataType >= 0 &&
              tensorDataType <= 12 && interleave >= 0 && interleave <= 2 && swizzle >= 0 && swizzle <= 3 && l2Promotion >= 0 &&
              l2Promotion <= 3 && (oobFill == 0 || oobFill == 1) && address % (interleave == 2 ? 32 : 16) == 0 &&
              (tensorRank == 1 || globalStrides) && (interleave == 0 || tensorRank >= 3);
    for (cuuint32_t i = 0; ok && i < tensorRank; i++) {
        ok = globalDim[i] > 0 && globalDim[i] <= (1ull << 32) && boxDim[i] > 0 && boxDim[i] <= 256 && elementStrides[i] >= 1 &&
             elementStrides[i] <= 8;
        if (ok && i + 1 < tensorRank)
            ok = globalStrides[i] % 16 == 0 && globalStrides[i] < (1ull << 40);
    }
    if (!ok)
        return fake_leave(CUDA_ERROR_INVALID_VALUE);
    memset(tensorMap, 0, sizeof *tensorMap);
    tensorMap->opaque[0] = (cuuint64_t)address;
    for (cuuint32_t i = 0; i < tensorRank; i++) {
        tensorMap->opaque[1 + i] = globalDim[i];
        if (i + 1 < tensorRank)
            tensorMap->opaque[6 + i] = globalStrides[i];
        tensorMap->opaque[10] |= (cuuint64_t)(boxDim[i] - 1) << (8 * i);
        tensorMap->opaque[11] |= (cuuint64_t)(elementStrides[i] - 1) << (4 * i);
    }
    tensorMap->opaque[11] |= (cuuint64_t)tensorDataType << 32 | (cuuint64_t)tensorRank << 40 | (cuuint64_t)interleave << 44 |
                             (cuuint64_t)swizzle << 48 | (cuuint64_t)l2Promotion << 52 | (cuuint64_t)oobFill << 56;
    return fake_leave(CUDA_SUCCESS);
}

FAKE_EXPORT CUresult cuTensorMapReplaceAddress(CUtensorMap *tensorMap, void *globalAddress)
{
    CUresult r = fake_enter("cuTensorMapReplaceAddress");
    if (r == CUDA_SUCCESS && (!tensorMap || (uintptr_t)globalAddress % 16 != 0 || ((tensorMap->opaque[11] >> 40) & 0xf) == 0))
        r = CUDA_ERROR_INVALID_VALUE; /* unaligned, or not a map the fake encoded */
    if (r == CUDA_SUCCESS)
        tensorMap->opaque[0] = (cuuint64_t)(uintptr_t)globalAddress;
    return fake_leave(r);
}
