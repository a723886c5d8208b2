/*
 * gs_cuda_procs_extra.h: driver entry points beyond gs_cuda_api.h that cuGetProcAddress
 * serves in the fake driver and the remote client (libgpushare does not intercept them, so
 * they stay out of gs_cuda_api.h and its generated hooks): what the CUDA runtime asks
 * before a first launch and when it builds its stream pools. One list for both tables, in
 * gs_cuda_procs.h's row form; versions from CUDA 13's cudaTypedefs.h. The attribute
 * arguments are CUfunction_attribute values, declared as int here.
 */
#ifndef GS_CUDA_PROCS_EXTRA_H
#define GS_CUDA_PROCS_EXTRA_H

#include "gs_cuda.h"

#define GS_CUDA_PROC_EXTRA_LIST(X) \
    X(cuCtxGetStreamPriorityRange, 5050, cuCtxGetStreamPriorityRange, GS_CUDA_PROC_LEGACY) \
    X(cuFuncGetAttribute, 2020, cuFuncGetAttribute, GS_CUDA_PROC_LEGACY) \
    X(cuFuncSetAttribute, 9000, cuFuncSetAttribute, GS_CUDA_PROC_LEGACY) \
    X(cuOccupancyMaxActiveBlocksPerMultiprocessor, 6050, cuOccupancyMaxActiveBlocksPerMultiprocessor, GS_CUDA_PROC_LEGACY) \
    X(cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags, 7000, cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags, GS_CUDA_PROC_LEGACY) \
    X(cuOccupancyAvailableDynamicSMemPerBlock, 10020, cuOccupancyAvailableDynamicSMemPerBlock, GS_CUDA_PROC_LEGACY) \
    X(cuOccupancyMaxActiveClusters, 11070, cuOccupancyMaxActiveClusters, GS_CUDA_PROC_LEGACY) \
    X(cuOccupancyMaxPotentialClusterSize, 11070, cuOccupancyMaxPotentialClusterSize, GS_CUDA_PROC_LEGACY) \
    X(cuTensorMapEncodeTiled, 12000, cuTensorMapEncodeTiled, GS_CUDA_PROC_LEGACY) \
    X(cuTensorMapReplaceAddress, 12000, cuTensorMapReplaceAddress, GS_CUDA_PROC_LEGACY)

CUresult cuCtxGetStreamPriorityRange(int *leastPriority, int *greatestPriority);
CUresult cuFuncGetAttribute(int *pi, int attrib, CUfunction hfunc);
CUresult cuFuncSetAttribute(CUfunction hfunc, int attrib, int value);
CUresult cuOccupancyMaxActiveBlocksPerMultiprocessor(int *numBlocks, CUfunction func, int blockSize, size_t dynamicSMemSize);
CUresult cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(int *numBlocks, CUfunction func, int blockSize, size_t dynamicSMemSize,
                                                              unsigned int flags);
/* What cuBLAS(Lt) asks at its start of an sm_90 kernel: dynamic shared memory left for a block,
 * and occupancy with thread block clusters. */
CUresult cuOccupancyAvailableDynamicSMemPerBlock(size_t *dynamicSmemSize, CUfunction func, int numBlocks, int blockSize);
CUresult cuOccupancyMaxActiveClusters(int *numClusters, CUfunction func, const CUlaunchConfig *config);
CUresult cuOccupancyMaxPotentialClusterSize(int *clusterSize, CUfunction func, const CUlaunchConfig *config);

/* A TMA descriptor (sm_90 kernels take it as a parameter), opaque, as cuda.h lays it out; the
 * enums (data type, interleave, swizzle, L2 promotion, OOB fill) are int on the ABI. */
typedef struct CUtensorMap_st {
    _Alignas(64) cuuint64_t opaque[16];
} CUtensorMap;
CUresult cuTensorMapEncodeTiled(CUtensorMap *tensorMap, int tensorDataType, cuuint32_t tensorRank, void *globalAddress,
                                const cuuint64_t *globalDim, const cuuint64_t *globalStrides, const cuuint32_t *boxDim,
                                const cuuint32_t *elementStrides, int interleave, int swizzle, int l2Promotion, int oobFill);
CUresult cuTensorMapReplaceAddress(CUtensorMap *tensorMap, void *globalAddress);

#endif /* GS_CUDA_PROCS_EXTRA_H */
