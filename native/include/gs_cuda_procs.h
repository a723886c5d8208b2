/*
 * gs_cuda_procs.h: which driver symbol cuGetProcAddress hands out for a name, a CUDA
 * version and a stream mode; the one table of it (STYLE 8), used by the fake driver's
 * cuGetProcAddress and by libgpushare's dispatch.
 *
 * GS_CUDA_PROC_LIST(X) expands X(name, version, symbol, flavor) once per row:
 *   name     what a caller passes to cuGetProcAddress: the unsuffixed API name;
 *   version  the first CUDA version (1000 * major + 10 * minor) whose headers mean
 *            `symbol` by `name`; the row with the highest version <= the caller's
 *            cudaVersion wins;
 *   symbol   the exported function (declared in gs_cuda_api.h);
 *   flavor   GS_CUDA_PROC_LEGACY for the default-stream form, GS_CUDA_PROC_PTSZ or
 *            GS_CUDA_PROC_PTDS for the per-thread-default-stream form that callers get
 *            with CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM.
 * Example: ("cuMemAlloc", 13000, DEFAULT) -> cuMemAlloc_v2; ("cuMemAlloc", 3000, ...) ->
 * cuMemAlloc (32-bit sizes); ("cuLaunchKernel", 12000, PER_THREAD) -> cuLaunchKernel_ptsz.
 *
 * Rows are sorted by name (strcmp order), then legacy before per-thread, then version, so
 * users can binary-search by name. Versions come from CUDA 13.0's cudaTypedefs.h
 * (PFN_<name>_v<version>[_ptsz|_ptds]); check-cuda-headers compiles each row as
 * `PFN_<name>_v<version> p = &symbol;` against it. One row has no such typedef and is our
 * reading of cuda.h instead: cuGraphInstantiate at 12000 (cuda.h 12+ `#define`s
 * cuGraphInstantiate to cuGraphInstantiateWithFlags). The older cuGraphInstantiate(_v2)
 * and cuGraphAddKernelNode (v1) ABIs are not served (a caller below their row's version
 * gets CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT).
 */
#ifndef GS_CUDA_PROCS_H
#define GS_CUDA_PROCS_H

#define GS_CUDA_PROC_LEGACY 0
#define GS_CUDA_PROC_PTSZ 1
#define GS_CUDA_PROC_PTDS 2

#define GS_CUDA_PROC_LIST(X) \
    X(cuArray3DCreate, 2000, cuArray3DCreate, GS_CUDA_PROC_LEGACY) \
    X(cuArray3DCreate, 3020, cuArray3DCreate_v2, GS_CUDA_PROC_LEGACY) \
    X(cuArrayCreate, 2000, cuArrayCreate, GS_CUDA_PROC_LEGACY) \
    X(cuArrayCreate, 3020, cuArrayCreate_v2, GS_CUDA_PROC_LEGACY) \
    X(cuArrayDestroy, 2000, cuArrayDestroy, GS_CUDA_PROC_LEGACY) \
    X(cuCheckpointProcessCheckpoint, 12080, cuCheckpointProcessCheckpoint, GS_CUDA_PROC_LEGACY) \
    X(cuCheckpointProcessGetRestoreThreadId, 12080, cuCheckpointProcessGetRestoreThreadId, GS_CUDA_PROC_LEGACY) \
    X(cuCheckpointProcessGetState, 12080, cuCheckpointProcessGetState, GS_CUDA_PROC_LEGACY) \
    X(cuCheckpointProcessLock, 12080, cuCheckpointProcessLock, GS_CUDA_PROC_LEGACY) \
    X(cuCheckpointProcessRestore, 12080, cuCheckpointProcessRestore, GS_CUDA_PROC_LEGACY) \
    X(cuCheckpointProcessUnlock, 12080, cuCheckpointProcessUnlock, GS_CUDA_PROC_LEGACY) \
    X(cuCtxCreate, 2000, cuCtxCreate, GS_CUDA_PROC_LEGACY) \
    X(cuCtxCreate, 3020, cuCtxCreate_v2, GS_CUDA_PROC_LEGACY) \
    X(cuCtxCreate, 11040, cuCtxCreate_v3, GS_CUDA_PROC_LEGACY) \
    X(cuCtxCreate, 12050, cuCtxCreate_v4, GS_CUDA_PROC_LEGACY) \
    X(cuCtxDestroy, 2000, cuCtxDestroy, GS_CUDA_PROC_LEGACY) \
    X(cuCtxDestroy, 4000, cuCtxDestroy_v2, GS_CUDA_PROC_LEGACY) \
    X(cuCtxFromGreenCtx, 12040, cuCtxFromGreenCtx, GS_CUDA_PROC_LEGACY) \
    X(cuCtxGetCurrent, 4000, cuCtxGetCurrent, GS_CUDA_PROC_LEGACY) \
    X(cuCtxGetDevResource, 12040, cuCtxGetDevResource, GS_CUDA_PROC_LEGACY) \
    X(cuCtxGetDevice, 2000, cuCtxGetDevice, GS_CUDA_PROC_LEGACY) \
    X(cuCtxGetDevice, 13000, cuCtxGetDevice_v2, GS_CUDA_PROC_LEGACY) \
    X(cuCtxPopCurrent, 2000, cuCtxPopCurrent, GS_CUDA_PROC_LEGACY) \
    X(cuCtxPopCurrent, 4000, cuCtxPopCurrent_v2, GS_CUDA_PROC_LEGACY) \
    X(cuCtxPushCurrent, 2000, cuCtxPushCurrent, GS_CUDA_PROC_LEGACY) \
    X(cuCtxPushCurrent, 4000, cuCtxPushCurrent_v2, GS_CUDA_PROC_LEGACY) \
    X(cuCtxSetCurrent, 4000, cuCtxSetCurrent, GS_CUDA_PROC_LEGACY) \
    X(cuCtxSynchronize, 2000, cuCtxSynchronize, GS_CUDA_PROC_LEGACY) \
    X(cuCtxSynchronize, 13000, cuCtxSynchronize_v2, GS_CUDA_PROC_LEGACY) \
    X(cuDevResourceGenerateDesc, 12040, cuDevResourceGenerateDesc, GS_CUDA_PROC_LEGACY) \
    X(cuDevSmResourceSplitByCount, 12040, cuDevSmResourceSplitByCount, GS_CUDA_PROC_LEGACY) \
    X(cuDeviceGet, 2000, cuDeviceGet, GS_CUDA_PROC_LEGACY) \
    X(cuDeviceGetAttribute, 2000, cuDeviceGetAttribute, GS_CUDA_PROC_LEGACY) \
    X(cuDeviceGetCount, 2000, cuDeviceGetCount, GS_CUDA_PROC_LEGACY) \
    X(cuDeviceGetDefaultMemPool, 11020, cuDeviceGetDefaultMemPool, GS_CUDA_PROC_LEGACY) \
    X(cuDeviceGetDevResource, 12040, cuDeviceGetDevResource, GS_CUDA_PROC_LEGACY) \
    X(cuDeviceGetGraphMemAttribute, 11040, cuDeviceGetGraphMemAttribute, GS_CUDA_PROC_LEGACY) \
    X(cuDeviceGetMemPool, 11020, cuDeviceGetMemPool, GS_CUDA_PROC_LEGACY) \
    X(cuDeviceGetName, 2000, cuDeviceGetName, GS_CUDA_PROC_LEGACY) \
    X(cuDeviceGetPCIBusId, 4010, cuDeviceGetPCIBusId, GS_CUDA_PROC_LEGACY) \
    X(cuDeviceGetUuid, 9020, cuDeviceGetUuid, GS_CUDA_PROC_LEGACY) \
    X(cuDeviceGetUuid, 11040, cuDeviceGetUuid_v2, GS_CUDA_PROC_LEGACY) \
    X(cuDeviceGraphMemTrim, 11040, cuDeviceGraphMemTrim, GS_CUDA_PROC_LEGACY) \
    X(cuDevicePrimaryCtxGetState, 7000, cuDevicePrimaryCtxGetState, GS_CUDA_PROC_LEGACY) \
    X(cuDevicePrimaryCtxRelease, 7000, cuDevicePrimaryCtxRelease, GS_CUDA_PROC_LEGACY) \
    X(cuDevicePrimaryCtxRelease, 11000, cuDevicePrimaryCtxRelease_v2, GS_CUDA_PROC_LEGACY) \
    X(cuDevicePrimaryCtxReset, 7000, cuDevicePrimaryCtxReset, GS_CUDA_PROC_LEGACY) \
    X(cuDevicePrimaryCtxReset, 11000, cuDevicePrimaryCtxReset_v2, GS_CUDA_PROC_LEGACY) \
    X(cuDevicePrimaryCtxRetain, 7000, cuDevicePrimaryCtxRetain, GS_CUDA_PROC_LEGACY) \
    X(cuDevicePrimaryCtxSetFlags, 7000, cuDevicePrimaryCtxSetFlags, GS_CUDA_PROC_LEGACY) \
    X(cuDevicePrimaryCtxSetFlags, 11000, cuDevicePrimaryCtxSetFlags_v2, GS_CUDA_PROC_LEGACY) \
    X(cuDeviceSetGraphMemAttribute, 11040, cuDeviceSetGraphMemAttribute, GS_CUDA_PROC_LEGACY) \
    X(cuDeviceSetMemPool, 11020, cuDeviceSetMemPool, GS_CUDA_PROC_LEGACY) \
    X(cuDeviceTotalMem, 2000, cuDeviceTotalMem, GS_CUDA_PROC_LEGACY) \
    X(cuDeviceTotalMem, 3020, cuDeviceTotalMem_v2, GS_CUDA_PROC_LEGACY) \
    X(cuDriverGetVersion, 2020, cuDriverGetVersion, GS_CUDA_PROC_LEGACY) \
    X(cuEventCreate, 2000, cuEventCreate, GS_CUDA_PROC_LEGACY) \
    X(cuEventDestroy, 2000, cuEventDestroy, GS_CUDA_PROC_LEGACY) \
    X(cuEventDestroy, 4000, cuEventDestroy_v2, GS_CUDA_PROC_LEGACY) \
    X(cuEventElapsedTime, 2000, cuEventElapsedTime, GS_CUDA_PROC_LEGACY) \
    X(cuEventElapsedTime, 12080, cuEventElapsedTime_v2, GS_CUDA_PROC_LEGACY) \
    X(cuEventQuery, 2000, cuEventQuery, GS_CUDA_PROC_LEGACY) \
    X(cuEventRecord, 2000, cuEventRecord, GS_CUDA_PROC_LEGACY) \
    X(cuEventRecord, 7000, cuEventRecord_ptsz, GS_CUDA_PROC_PTSZ) \
    X(cuEventSynchronize, 2000, cuEventSynchronize, GS_CUDA_PROC_LEGACY) \
    X(cuGetErrorName, 6000, cuGetErrorName, GS_CUDA_PROC_LEGACY) \
    X(cuGetErrorString, 6000, cuGetErrorString, GS_CUDA_PROC_LEGACY) \
    X(cuGetProcAddress, 11030, cuGetProcAddress, GS_CUDA_PROC_LEGACY) \
    X(cuGetProcAddress, 12000, cuGetProcAddress_v2, GS_CUDA_PROC_LEGACY) \
    X(cuGraphAddKernelNode, 12000, cuGraphAddKernelNode_v2, GS_CUDA_PROC_LEGACY) \
    X(cuGraphAddMemAllocNode, 11040, cuGraphAddMemAllocNode, GS_CUDA_PROC_LEGACY) \
    X(cuGraphAddMemFreeNode, 11040, cuGraphAddMemFreeNode, GS_CUDA_PROC_LEGACY) \
    X(cuGraphCreate, 10000, cuGraphCreate, GS_CUDA_PROC_LEGACY) \
    X(cuGraphDestroy, 10000, cuGraphDestroy, GS_CUDA_PROC_LEGACY) \
    X(cuGraphExecDestroy, 10000, cuGraphExecDestroy, GS_CUDA_PROC_LEGACY) \
    X(cuGraphGetNodes, 10000, cuGraphGetNodes, GS_CUDA_PROC_LEGACY) \
    X(cuGraphInstantiate, 12000, cuGraphInstantiateWithFlags, GS_CUDA_PROC_LEGACY) \
    X(cuGraphInstantiateWithFlags, 11040, cuGraphInstantiateWithFlags, GS_CUDA_PROC_LEGACY) \
    X(cuGraphInstantiateWithParams, 12000, cuGraphInstantiateWithParams, GS_CUDA_PROC_LEGACY) \
    X(cuGraphInstantiateWithParams, 12000, cuGraphInstantiateWithParams_ptsz, GS_CUDA_PROC_PTSZ) \
    X(cuGraphLaunch, 10000, cuGraphLaunch, GS_CUDA_PROC_LEGACY) \
    X(cuGraphLaunch, 10000, cuGraphLaunch_ptsz, GS_CUDA_PROC_PTSZ) \
    X(cuGraphNodeGetType, 10000, cuGraphNodeGetType, GS_CUDA_PROC_LEGACY) \
    X(cuGreenCtxCreate, 12040, cuGreenCtxCreate, GS_CUDA_PROC_LEGACY) \
    X(cuGreenCtxDestroy, 12040, cuGreenCtxDestroy, GS_CUDA_PROC_LEGACY) \
    X(cuGreenCtxGetDevResource, 12040, cuGreenCtxGetDevResource, GS_CUDA_PROC_LEGACY) \
    X(cuGreenCtxStreamCreate, 12050, cuGreenCtxStreamCreate, GS_CUDA_PROC_LEGACY) \
    X(cuInit, 2000, cuInit, GS_CUDA_PROC_LEGACY) \
    X(cuLaunchCooperativeKernel, 9000, cuLaunchCooperativeKernel, GS_CUDA_PROC_LEGACY) \
    X(cuLaunchCooperativeKernel, 9000, cuLaunchCooperativeKernel_ptsz, GS_CUDA_PROC_PTSZ) \
    X(cuLaunchCooperativeKernelMultiDevice, 9000, cuLaunchCooperativeKernelMultiDevice, GS_CUDA_PROC_LEGACY) \
    X(cuLaunchKernel, 4000, cuLaunchKernel, GS_CUDA_PROC_LEGACY) \
    X(cuLaunchKernel, 7000, cuLaunchKernel_ptsz, GS_CUDA_PROC_PTSZ) \
    X(cuLaunchKernelEx, 11060, cuLaunchKernelEx, GS_CUDA_PROC_LEGACY) \
    X(cuLaunchKernelEx, 11060, cuLaunchKernelEx_ptsz, GS_CUDA_PROC_PTSZ) \
    X(cuMemAddressFree, 10020, cuMemAddressFree, GS_CUDA_PROC_LEGACY) \
    X(cuMemAddressReserve, 10020, cuMemAddressReserve, GS_CUDA_PROC_LEGACY) \
    X(cuMemAdvise, 8000, cuMemAdvise, GS_CUDA_PROC_LEGACY) \
    X(cuMemAdvise, 12020, cuMemAdvise_v2, GS_CUDA_PROC_LEGACY) \
    X(cuMemAlloc, 2000, cuMemAlloc, GS_CUDA_PROC_LEGACY) \
    X(cuMemAlloc, 3020, cuMemAlloc_v2, GS_CUDA_PROC_LEGACY) \
    X(cuMemAllocAsync, 11020, cuMemAllocAsync, GS_CUDA_PROC_LEGACY) \
    X(cuMemAllocAsync, 11020, cuMemAllocAsync_ptsz, GS_CUDA_PROC_PTSZ) \
    X(cuMemAllocFromPoolAsync, 11020, cuMemAllocFromPoolAsync, GS_CUDA_PROC_LEGACY) \
    X(cuMemAllocFromPoolAsync, 11020, cuMemAllocFromPoolAsync_ptsz, GS_CUDA_PROC_PTSZ) \
    X(cuMemAllocHost, 3020, cuMemAllocHost_v2, GS_CUDA_PROC_LEGACY) \
    X(cuMemAllocManaged, 6000, cuMemAllocManaged, GS_CUDA_PROC_LEGACY) \
    X(cuMemAllocPitch, 2000, cuMemAllocPitch, GS_CUDA_PROC_LEGACY) \
    X(cuMemAllocPitch, 3020, cuMemAllocPitch_v2, GS_CUDA_PROC_LEGACY) \
    X(cuMemCreate, 10020, cuMemCreate, GS_CUDA_PROC_LEGACY) \
    X(cuMemFree, 2000, cuMemFree, GS_CUDA_PROC_LEGACY) \
    X(cuMemFree, 3020, cuMemFree_v2, GS_CUDA_PROC_LEGACY) \
    X(cuMemFreeAsync, 11020, cuMemFreeAsync, GS_CUDA_PROC_LEGACY) \
    X(cuMemFreeAsync, 11020, cuMemFreeAsync_ptsz, GS_CUDA_PROC_PTSZ) \
    X(cuMemFreeHost, 2000, cuMemFreeHost, GS_CUDA_PROC_LEGACY) \
    X(cuMemGetAddressRange, 3020, cuMemGetAddressRange_v2, GS_CUDA_PROC_LEGACY) \
    X(cuMemGetAllocationGranularity, 10020, cuMemGetAllocationGranularity, GS_CUDA_PROC_LEGACY) \
    X(cuMemGetInfo, 2000, cuMemGetInfo, GS_CUDA_PROC_LEGACY) \
    X(cuMemGetInfo, 3020, cuMemGetInfo_v2, GS_CUDA_PROC_LEGACY) \
    X(cuMemHostAlloc, 2020, cuMemHostAlloc, GS_CUDA_PROC_LEGACY) \
    X(cuMemMap, 10020, cuMemMap, GS_CUDA_PROC_LEGACY) \
    X(cuMemPoolCreate, 11020, cuMemPoolCreate, GS_CUDA_PROC_LEGACY) \
    X(cuMemPoolDestroy, 11020, cuMemPoolDestroy, GS_CUDA_PROC_LEGACY) \
    X(cuMemPoolGetAttribute, 11020, cuMemPoolGetAttribute, GS_CUDA_PROC_LEGACY) \
    X(cuMemPoolSetAttribute, 11020, cuMemPoolSetAttribute, GS_CUDA_PROC_LEGACY) \
    X(cuMemPoolTrimTo, 11020, cuMemPoolTrimTo, GS_CUDA_PROC_LEGACY) \
    X(cuMemPrefetchAsync, 8000, cuMemPrefetchAsync, GS_CUDA_PROC_LEGACY) \
    X(cuMemPrefetchAsync, 12020, cuMemPrefetchAsync_v2, GS_CUDA_PROC_LEGACY) \
    X(cuMemRelease, 10020, cuMemRelease, GS_CUDA_PROC_LEGACY) \
    X(cuMemSetAccess, 10020, cuMemSetAccess, GS_CUDA_PROC_LEGACY) \
    X(cuMemUnmap, 10020, cuMemUnmap, GS_CUDA_PROC_LEGACY) \
    X(cuMemcpy, 4000, cuMemcpy, GS_CUDA_PROC_LEGACY) \
    X(cuMemcpy, 7000, cuMemcpy_ptds, GS_CUDA_PROC_PTDS) \
    X(cuMemcpyAsync, 4000, cuMemcpyAsync, GS_CUDA_PROC_LEGACY) \
    X(cuMemcpyAsync, 7000, cuMemcpyAsync_ptsz, GS_CUDA_PROC_PTSZ) \
    X(cuMemcpyDtoD, 3020, cuMemcpyDtoD_v2, GS_CUDA_PROC_LEGACY) \
    X(cuMemcpyDtoD, 7000, cuMemcpyDtoD_v2_ptds, GS_CUDA_PROC_PTDS) \
    X(cuMemcpyDtoDAsync, 3020, cuMemcpyDtoDAsync_v2, GS_CUDA_PROC_LEGACY) \
    X(cuMemcpyDtoDAsync, 7000, cuMemcpyDtoDAsync_v2_ptsz, GS_CUDA_PROC_PTSZ) \
    X(cuMemcpyDtoH, 2000, cuMemcpyDtoH, GS_CUDA_PROC_LEGACY) \
    X(cuMemcpyDtoH, 3020, cuMemcpyDtoH_v2, GS_CUDA_PROC_LEGACY) \
    X(cuMemcpyDtoH, 7000, cuMemcpyDtoH_v2_ptds, GS_CUDA_PROC_PTDS) \
    X(cuMemcpyDtoHAsync, 3020, cuMemcpyDtoHAsync_v2, GS_CUDA_PROC_LEGACY) \
    X(cuMemcpyDtoHAsync, 7000, cuMemcpyDtoHAsync_v2_ptsz, GS_CUDA_PROC_PTSZ) \
    X(cuMemcpyHtoD, 2000, cuMemcpyHtoD, GS_CUDA_PROC_LEGACY) \
    X(cuMemcpyHtoD, 3020, cuMemcpyHtoD_v2, GS_CUDA_PROC_LEGACY) \
    X(cuMemcpyHtoD, 7000, cuMemcpyHtoD_v2_ptds, GS_CUDA_PROC_PTDS) \
    X(cuMemcpyHtoDAsync, 3020, cuMemcpyHtoDAsync_v2, GS_CUDA_PROC_LEGACY) \
    X(cuMemcpyHtoDAsync, 7000, cuMemcpyHtoDAsync_v2_ptsz, GS_CUDA_PROC_PTSZ) \
    X(cuMemsetD8, 2000, cuMemsetD8, GS_CUDA_PROC_LEGACY) \
    X(cuMemsetD8, 3020, cuMemsetD8_v2, GS_CUDA_PROC_LEGACY) \
    X(cuMemsetD8, 7000, cuMemsetD8_v2_ptds, GS_CUDA_PROC_PTDS) \
    X(cuMemsetD8Async, 3020, cuMemsetD8Async, GS_CUDA_PROC_LEGACY) \
    X(cuMemsetD8Async, 7000, cuMemsetD8Async_ptsz, GS_CUDA_PROC_PTSZ) \
    X(cuMipmappedArrayCreate, 5000, cuMipmappedArrayCreate, GS_CUDA_PROC_LEGACY) \
    X(cuMipmappedArrayDestroy, 5000, cuMipmappedArrayDestroy, GS_CUDA_PROC_LEGACY) \
    X(cuModuleGetFunction, 2000, cuModuleGetFunction, GS_CUDA_PROC_LEGACY) \
    X(cuModuleLoadData, 2000, cuModuleLoadData, GS_CUDA_PROC_LEGACY) \
    X(cuModuleUnload, 2000, cuModuleUnload, GS_CUDA_PROC_LEGACY) \
    X(cuStreamCreate, 2000, cuStreamCreate, GS_CUDA_PROC_LEGACY) \
    X(cuStreamCreateWithPriority, 5050, cuStreamCreateWithPriority, GS_CUDA_PROC_LEGACY) \
    X(cuStreamDestroy, 2000, cuStreamDestroy, GS_CUDA_PROC_LEGACY) \
    X(cuStreamDestroy, 4000, cuStreamDestroy_v2, GS_CUDA_PROC_LEGACY) \
    X(cuStreamIsCapturing, 10000, cuStreamIsCapturing, GS_CUDA_PROC_LEGACY) \
    X(cuStreamIsCapturing, 10000, cuStreamIsCapturing_ptsz, GS_CUDA_PROC_PTSZ) \
    X(cuStreamQuery, 2000, cuStreamQuery, GS_CUDA_PROC_LEGACY) \
    X(cuStreamQuery, 7000, cuStreamQuery_ptsz, GS_CUDA_PROC_PTSZ) \
    X(cuStreamSynchronize, 2000, cuStreamSynchronize, GS_CUDA_PROC_LEGACY) \
    X(cuStreamSynchronize, 7000, cuStreamSynchronize_ptsz, GS_CUDA_PROC_PTSZ) \
    X(cuStreamWaitEvent, 3020, cuStreamWaitEvent, GS_CUDA_PROC_LEGACY) \
    X(cuStreamWaitEvent, 7000, cuStreamWaitEvent_ptsz, GS_CUDA_PROC_PTSZ) \
    X(cuThreadExchangeStreamCaptureMode, 10010, cuThreadExchangeStreamCaptureMode, GS_CUDA_PROC_LEGACY)

#endif /* GS_CUDA_PROCS_H */
