/*
 * client_served.h: the entry points of client_queries.c and client_calls.c that
 * native/include/gs_cuda_api.h does not declare, declared once for their definitions and for
 * cuGetProcAddress's table (client_procs.c). Signatures as CUDA 13's cuda.h, with the types
 * the client does not otherwise need written as what they are on the ABI.
 */
#ifndef GSR_CLIENT_SERVED_H
#define GSR_CLIENT_SERVED_H

#include "cuda_extra.h"

typedef void (*gsr_host_fn)(void *user);
typedef void (*gsr_stream_callback)(CUstream stream, CUresult status, void *user);
typedef CUipcMemHandle gsr_ipc_handle; /* gs_cuda_types.h's, so these definitions match gs_cuda_api.h */

/* CUDA_MEMCPY2D, as cuda.h lays it out (memory types: 1 host, 2 device, 3 array, 4 unified). */
typedef struct gsr_memcpy2d {
    size_t srcXInBytes, srcY;
    unsigned srcMemoryType;
    const void *srcHost;
    CUdeviceptr srcDevice;
    void *srcArray;
    size_t srcPitch;
    size_t dstXInBytes, dstY;
    unsigned dstMemoryType;
    void *dstHost;
    CUdeviceptr dstDevice;
    void *dstArray;
    size_t dstPitch;
    size_t WidthInBytes, Height;
} gsr_memcpy2d;

/* client_queries.c */
CUresult cuStreamGetCaptureInfo(CUstream hStream, CUstreamCaptureStatus *captureStatus, cuuint64_t *id);
CUresult cuStreamGetCaptureInfo_ptsz(CUstream hStream, CUstreamCaptureStatus *captureStatus, cuuint64_t *id);
CUresult cuStreamGetCaptureInfo_v2(CUstream hStream, CUstreamCaptureStatus *captureStatus, cuuint64_t *id, void **graph, const void ***deps,
                                   size_t *numDeps);
CUresult cuStreamGetCaptureInfo_v2_ptsz(CUstream hStream, CUstreamCaptureStatus *captureStatus, cuuint64_t *id, void **graph,
                                        const void ***deps, size_t *numDeps);
CUresult cuStreamGetCaptureInfo_v3(CUstream hStream, CUstreamCaptureStatus *captureStatus, cuuint64_t *id, void **graph, const void ***deps,
                                   const void **edgeData, size_t *numDeps);
CUresult cuStreamGetCaptureInfo_v3_ptsz(CUstream hStream, CUstreamCaptureStatus *captureStatus, cuuint64_t *id, void **graph,
                                        const void ***deps, const void **edgeData, size_t *numDeps);
CUresult cuStreamGetPriority(CUstream hStream, int *priority);
CUresult cuStreamGetPriority_ptsz(CUstream hStream, int *priority);
CUresult cuStreamGetFlags(CUstream hStream, unsigned int *flags);
CUresult cuStreamGetFlags_ptsz(CUstream hStream, unsigned int *flags);
CUresult cuStreamGetId(CUstream hStream, unsigned long long *streamId);
CUresult cuStreamGetId_ptsz(CUstream hStream, unsigned long long *streamId);
CUresult cuStreamGetDevice(CUstream hStream, CUdevice *device);
CUresult cuStreamGetDevice_ptsz(CUstream hStream, CUdevice *device);
CUresult cuStreamGetCtx(CUstream hStream, CUcontext *pctx);
CUresult cuStreamGetCtx_ptsz(CUstream hStream, CUcontext *pctx);
CUresult cuStreamGetCtx_v2(CUstream hStream, CUcontext *pctx, void **pGreenCtx);
CUresult cuStreamGetCtx_v2_ptsz(CUstream hStream, CUcontext *pctx, void **pGreenCtx);
CUresult cuCtxGetLimit(size_t *pvalue, int limit);
CUresult cuCtxSetLimit(int limit, size_t value);
CUresult cuCtxGetCacheConfig(int *pconfig);
CUresult cuCtxSetCacheConfig(int config);
CUresult cuCtxGetFlags(unsigned int *flags);
CUresult cuCtxGetApiVersion(CUcontext ctx, unsigned int *version);
CUresult cuCtxGetId(CUcontext ctx, unsigned long long *ctxId);
CUresult cuEventRecordWithFlags(CUevent hEvent, CUstream hStream, unsigned int flags);
CUresult cuEventRecordWithFlags_ptsz(CUevent hEvent, CUstream hStream, unsigned int flags);
CUresult cuPointerGetAttribute(void *data, int attribute, CUdeviceptr ptr);
CUresult cuPointerGetAttributes(unsigned int numAttributes, int *attributes, void **data, CUdeviceptr ptr);
CUresult cuModuleGetGlobal_v2(CUdeviceptr *dptr, size_t *bytes, CUmodule hmod, const char *name);
CUresult cuLibraryGetGlobal(CUdeviceptr *dptr, size_t *bytes, CUlibrary library, const char *name);
CUresult cuFuncGetName(const char **name, CUfunction hfunc);
CUresult cuKernelGetName(const char **name, CUkernel hfunc);

/* client_calls.c */
CUresult cuLaunchHostFunc(CUstream hStream, gsr_host_fn fn, void *userData);
CUresult cuLaunchHostFunc_ptsz(CUstream hStream, gsr_host_fn fn, void *userData);
CUresult cuStreamAddCallback(CUstream hStream, gsr_stream_callback callback, void *userData, unsigned int flags);
CUresult cuStreamAddCallback_ptsz(CUstream hStream, gsr_stream_callback callback, void *userData, unsigned int flags);
CUresult cuMemHostRegister(void *p, size_t bytesize, unsigned int Flags);
CUresult cuMemHostGetDevicePointer_v2(CUdeviceptr *pdptr, void *p, unsigned int Flags);
CUresult cuDeviceCanAccessPeer(int *canAccessPeer, CUdevice dev, CUdevice peerDev);
CUresult cuProfilerStart(void);
CUresult cuProfilerStop(void);
CUresult cuIpcGetMemHandle(gsr_ipc_handle *pHandle, CUdeviceptr dptr);
CUresult cuIpcOpenMemHandle(CUdeviceptr *pdptr, gsr_ipc_handle handle, unsigned int Flags);
CUresult cuIpcOpenMemHandle_v2(CUdeviceptr *pdptr, gsr_ipc_handle handle, unsigned int Flags);
CUresult cuIpcCloseMemHandle(CUdeviceptr dptr);
CUresult cuIpcGetEventHandle(gsr_ipc_handle *pHandle, CUevent event);
CUresult cuIpcOpenEventHandle(CUevent *phEvent, gsr_ipc_handle handle);
CUresult cuMemsetD2D8_v2(CUdeviceptr dst, size_t pitch, unsigned char uc, size_t width, size_t height);
CUresult cuMemsetD2D8_v2_ptds(CUdeviceptr dst, size_t pitch, unsigned char uc, size_t width, size_t height);
CUresult cuMemsetD2D8Async(CUdeviceptr dst, size_t pitch, unsigned char uc, size_t width, size_t height, CUstream hStream);
CUresult cuMemsetD2D8Async_ptsz(CUdeviceptr dst, size_t pitch, unsigned char uc, size_t width, size_t height, CUstream hStream);
CUresult cuMemcpy2D_v2(const gsr_memcpy2d *pCopy);
CUresult cuMemcpy2D_v2_ptds(const gsr_memcpy2d *pCopy);
CUresult cuMemcpy2DUnaligned_v2(const gsr_memcpy2d *pCopy);
CUresult cuMemcpy2DUnaligned_v2_ptds(const gsr_memcpy2d *pCopy);
CUresult cuMemcpy2DAsync_v2(const gsr_memcpy2d *pCopy, CUstream hStream);
CUresult cuMemcpy2DAsync_v2_ptsz(const gsr_memcpy2d *pCopy, CUstream hStream);

/* The table rows of the above for client_procs.c, each expanded into X(name, CUDA version,
 * symbol, stream flavour): GSR_SERVED, a default-stream row; GSR_SERVED_PTSZ/PTDS(..., version
 * of the per-thread form), that row and the per-thread one, whose symbol is the first's with
 * _ptsz/_ptds. */
#define GSR_SERVED(X, name, version, symbol) X(name, version, symbol, GS_CUDA_PROC_LEGACY)
#define GSR_SERVED_PTSZ(X, name, version, symbol, pt_version) \
    X(name, version, symbol, GS_CUDA_PROC_LEGACY) X(name, pt_version, symbol##_ptsz, GS_CUDA_PROC_PTSZ)
#define GSR_SERVED_PTDS(X, name, version, symbol, pt_version) \
    X(name, version, symbol, GS_CUDA_PROC_LEGACY) X(name, pt_version, symbol##_ptds, GS_CUDA_PROC_PTDS)
#define GSR_SERVED_PROC_LIST(X) \
    GSR_SERVED_PTSZ(X, cuStreamGetCaptureInfo, 10010, cuStreamGetCaptureInfo, 10010) \
    GSR_SERVED_PTSZ(X, cuStreamGetCaptureInfo, 11030, cuStreamGetCaptureInfo_v2, 11030) \
    GSR_SERVED_PTSZ(X, cuStreamGetCaptureInfo, 12030, cuStreamGetCaptureInfo_v3, 12030) \
    GSR_SERVED_PTSZ(X, cuStreamGetPriority, 5050, cuStreamGetPriority, 7000) \
    GSR_SERVED_PTSZ(X, cuStreamGetFlags, 5050, cuStreamGetFlags, 7000) \
    GSR_SERVED_PTSZ(X, cuStreamGetId, 12000, cuStreamGetId, 12000) \
    GSR_SERVED_PTSZ(X, cuStreamGetDevice, 12080, cuStreamGetDevice, 12080) \
    GSR_SERVED_PTSZ(X, cuStreamGetCtx, 9020, cuStreamGetCtx, 9020) \
    GSR_SERVED_PTSZ(X, cuStreamGetCtx, 12050, cuStreamGetCtx_v2, 12050) \
    GSR_SERVED(X, cuCtxGetLimit, 3010, cuCtxGetLimit) \
    GSR_SERVED(X, cuCtxSetLimit, 3010, cuCtxSetLimit) \
    GSR_SERVED(X, cuCtxGetCacheConfig, 3020, cuCtxGetCacheConfig) \
    GSR_SERVED(X, cuCtxSetCacheConfig, 3020, cuCtxSetCacheConfig) \
    GSR_SERVED(X, cuCtxGetFlags, 7000, cuCtxGetFlags) \
    GSR_SERVED(X, cuCtxGetApiVersion, 3020, cuCtxGetApiVersion) \
    GSR_SERVED(X, cuCtxGetId, 12000, cuCtxGetId) \
    GSR_SERVED_PTSZ(X, cuEventRecordWithFlags, 11010, cuEventRecordWithFlags, 11010) \
    GSR_SERVED(X, cuPointerGetAttribute, 4000, cuPointerGetAttribute) \
    GSR_SERVED(X, cuPointerGetAttributes, 7000, cuPointerGetAttributes) \
    GSR_SERVED(X, cuModuleGetGlobal, 3020, cuModuleGetGlobal_v2) \
    GSR_SERVED(X, cuLibraryGetGlobal, 12000, cuLibraryGetGlobal) \
    GSR_SERVED(X, cuFuncGetName, 12030, cuFuncGetName) \
    GSR_SERVED(X, cuKernelGetName, 12030, cuKernelGetName) \
    GSR_SERVED_PTSZ(X, cuLaunchHostFunc, 10000, cuLaunchHostFunc, 10000) \
    GSR_SERVED_PTSZ(X, cuStreamAddCallback, 5000, cuStreamAddCallback, 7000) \
    GSR_SERVED(X, cuMemHostRegister, 6050, cuMemHostRegister_v2) \
    GSR_SERVED(X, cuMemHostUnregister, 4000, cuMemHostUnregister) \
    GSR_SERVED(X, cuMemHostGetDevicePointer, 3020, cuMemHostGetDevicePointer_v2) \
    GSR_SERVED(X, cuDeviceCanAccessPeer, 4000, cuDeviceCanAccessPeer) \
    GSR_SERVED(X, cuProfilerStart, 4000, cuProfilerStart) \
    GSR_SERVED(X, cuProfilerStop, 4000, cuProfilerStop) \
    GSR_SERVED(X, cuIpcGetMemHandle, 4010, cuIpcGetMemHandle) \
    GSR_SERVED(X, cuIpcOpenMemHandle, 4010, cuIpcOpenMemHandle) \
    GSR_SERVED(X, cuIpcOpenMemHandle, 11000, cuIpcOpenMemHandle_v2) \
    GSR_SERVED(X, cuIpcCloseMemHandle, 4010, cuIpcCloseMemHandle) \
    GSR_SERVED(X, cuIpcGetEventHandle, 4010, cuIpcGetEventHandle) \
    GSR_SERVED(X, cuIpcOpenEventHandle, 4010, cuIpcOpenEventHandle) \
    GSR_SERVED_PTDS(X, cuMemsetD2D8, 3020, cuMemsetD2D8_v2, 7000) \
    GSR_SERVED_PTSZ(X, cuMemsetD2D8Async, 3020, cuMemsetD2D8Async, 7000) \
    GSR_SERVED_PTDS(X, cuMemcpy2D, 3020, cuMemcpy2D_v2, 7000) \
    GSR_SERVED_PTDS(X, cuMemcpy2DUnaligned, 3020, cuMemcpy2DUnaligned_v2, 7000) \
    GSR_SERVED_PTSZ(X, cuMemcpy2DAsync, 3020, cuMemcpy2DAsync_v2, 7000)

#endif /* GSR_CLIENT_SERVED_H */
