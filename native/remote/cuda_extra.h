/*
 * cuda_extra.h: driver entry points the remote client exports and the worker uses that
 * native/include/gs_cuda_api.h does not declare (libgpushare does not intercept them, and
 * the fake driver does not export them). The worker finds them with cuGetProcAddress at
 * run time and falls back when a driver lacks one (worker.c); the client exports them.
 * Signatures as CUDA 13's cuda.h.
 */
#ifndef GSR_CUDA_EXTRA_H
#define GSR_CUDA_EXTRA_H

#include "gs_cuda.h"

typedef CUresult (*gsr_pfn_memcpy_dtod)(CUdeviceptr dst, CUdeviceptr src, size_t bytes);
typedef CUresult (*gsr_pfn_memcpy_htod_async)(CUdeviceptr dst, const void *src, size_t bytes, CUstream stream);
typedef CUresult (*gsr_pfn_memcpy_dtoh_async)(void *dst, CUdeviceptr src, size_t bytes, CUstream stream);
typedef CUresult (*gsr_pfn_func_get_param_info)(CUfunction func, size_t index, size_t *offset, size_t *size);

#endif /* GSR_CUDA_EXTRA_H */
