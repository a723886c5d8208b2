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
/* What the CUDA runtime asks of a function before its first launch (attributes, occupancy). */
typedef CUresult (*gsr_pfn_func_get_attribute)(int *value, int attrib, CUfunction func);
typedef CUresult (*gsr_pfn_func_set_attribute)(CUfunction func, int attrib, int value);
typedef CUresult (*gsr_pfn_stream_priority_range)(int *least, int *greatest);
typedef CUresult (*gsr_pfn_occupancy)(int *blocks, CUfunction func, int block_size, size_t dynamic_smem, unsigned int flags);

/* CUDA 12's library entry points (context-independent modules), as cudart 12+ loads its fatbins. */
typedef struct CUlib_st *CUlibrary;
typedef int CUjit_option;
typedef int CUlibraryOption;

#endif /* GSR_CUDA_EXTRA_H */
