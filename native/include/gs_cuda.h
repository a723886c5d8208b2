/*
 * gs_cuda.h: the CUDA driver API subset gpushare uses, declared by us (types, then
 * prototypes, then the cuGetProcAddress version table). See gs_cuda_types.h for why we
 * do not include NVIDIA's cuda.h.
 */
#ifndef GS_CUDA_H
#define GS_CUDA_H

#include "gs_cuda_types.h"
#include "gs_cuda_api.h"
#include "gs_cuda_procs.h"

#endif /* GS_CUDA_H */
