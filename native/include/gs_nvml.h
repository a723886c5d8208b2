/*
 * gs_nvml.h: the NVML subset gpushare uses, declared by us (types, then prototypes).
 * See gs_nvml_types.h for why we do not include NVIDIA's nvml.h.
 */
#ifndef GS_NVML_H
#define GS_NVML_H

#include "gs_nvml_types.h"
#include "gs_nvml_api.h"

#endif /* GS_NVML_H */
