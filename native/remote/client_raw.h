/*
 * client_raw.h: driver entry points that libraries look up with dlsym under their exported
 * (unsuffixed or _v2) names instead of through cuGetProcAddress. cuBLASLt 13 fills a table of
 * them at cublasCreate and refuses to start ("Driver API initialization failed",
 * CUBLAS_STATUS_INTERNAL_ERROR) when one is missing, whether or not it calls it later. Those
 * client_raw.c answers are defined there; the rest become generated NOT_SUPPORTED entry points
 * (gen_stubs.sh reads this header beside gs_cuda_api.h), logged once when called. Signatures as
 * CUDA 13's cuda.h, with the types the client does not otherwise need written as what they
 * are on the ABI (a struct pointer as void *, an enum as int).
 */
#ifndef GSR_CLIENT_RAW_H
#define GSR_CLIENT_RAW_H

#include "cuda_extra.h"

typedef struct gsr_link_state *gsr_link_state; /* CUlinkState */
typedef size_t (*gsr_block_to_smem)(int block_size); /* CUoccupancyB2DSize */

CUresult cuModuleLoad(CUmodule *module, const char *fname);
CUresult cuKernelGetLibrary(CUlibrary *pLib, CUkernel kernel);
CUresult cuGraphInstantiate(CUgraphExec *phGraphExec, CUgraph hGraph, CUgraphNode *phErrorNode, char *logBuffer, size_t bufferSize);
CUresult cuCtxEnablePeerAccess(CUcontext peerContext, unsigned int Flags);
CUresult cuCtxDisablePeerAccess(CUcontext peerContext);
CUresult cuGraphKernelNodeGetParams(CUgraphNode hNode, void *nodeParams);
CUresult cuGraphExecKernelNodeSetParams(CUgraphExec hGraphExec, CUgraphNode hNode, const void *nodeParams);
CUresult cuLinkCreate_v2(unsigned int numOptions, CUjit_option *options, void **optionValues, gsr_link_state *stateOut);
CUresult cuLinkAddData_v2(gsr_link_state state, int type, void *data, size_t size, const char *name, unsigned int numOptions, CUjit_option *options, void **optionValues);
CUresult cuLinkAddFile_v2(gsr_link_state state, int type, const char *path, unsigned int numOptions, CUjit_option *options, void **optionValues);
CUresult cuLinkComplete(gsr_link_state state, void **cubinOut, size_t *sizeOut);
CUresult cuLinkDestroy(gsr_link_state state);
CUresult cuOccupancyMaxPotentialBlockSize(int *minGridSize, int *blockSize, CUfunction func, gsr_block_to_smem blockSizeToDynamicSMemSize, size_t dynamicSMemSize, int blockSizeLimit);
CUresult cuStreamBatchMemOp(CUstream stream, unsigned int count, void *paramArray, unsigned int flags);
CUresult cuStreamWaitValue32(CUstream stream, CUdeviceptr addr, cuuint32_t value, unsigned int flags);
CUresult cuStreamBeginCapture_v2(CUstream hStream, int mode);
CUresult cuStreamEndCapture(CUstream hStream, CUgraph *phGraph);

#endif /* GSR_CLIENT_RAW_H */
