/*
 * client_procs.c: the remote client's local answers: cuGetProcAddress (the driver's table,
 * gs_cuda_procs.h, pointing at this library's own functions, plus the entry points of
 * cuda_extra.h), error names and strings, and cuGetExportTable (not forwarded yet).
 */
#include "client.h"
#include "cuda_extra.h"

#include <string.h>

/* cuda_extra.h's entry points, exported by client_api.c. */
CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n);
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t n, CUstream s);
CUresult cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t n, CUstream s);
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s);
GSR_EXPORT CUresult cuGetExportTable(const void **ppExportTable, const CUuuid *pExportTableId);

typedef struct proc_row {
    const char *name;
    int version;
    void *fn;
    int flavor;
} proc_row;

#define GSR_PROC_ROW(name, version, symbol, flavor) {#name, version, (void *)&symbol, flavor},
static const proc_row procs[] = {
    GS_CUDA_PROC_LIST(GSR_PROC_ROW)
    {"cuGetExportTable", 3000, (void *)&cuGetExportTable, GS_CUDA_PROC_LEGACY},
    {"cuMemcpyDtoD", 3020, (void *)&cuMemcpyDtoD_v2, GS_CUDA_PROC_LEGACY},
    {"cuMemcpyDtoDAsync", 3020, (void *)&cuMemcpyDtoDAsync_v2, GS_CUDA_PROC_LEGACY},
    {"cuMemcpyDtoHAsync", 3020, (void *)&cuMemcpyDtoHAsync_v2, GS_CUDA_PROC_LEGACY},
    {"cuMemcpyHtoDAsync", 3020, (void *)&cuMemcpyHtoDAsync_v2, GS_CUDA_PROC_LEGACY},
};
#undef GSR_PROC_ROW

GSR_EXPORT CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags,
                                        CUdriverProcAddressQueryResult *symbolStatus) {
    if (!symbol || !pfn) return CUDA_ERROR_INVALID_VALUE;
    int per_thread = (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) != 0;
    const proc_row *best = NULL;
    int known = 0;
    for (size_t i = 0; i < sizeof procs / sizeof procs[0]; i++) {
        const proc_row *r = &procs[i];
        if (strcmp(r->name, symbol) != 0) continue;
        known = 1;
        if (r->version > cudaVersion) continue;
        int wanted = per_thread ? r->flavor != GS_CUDA_PROC_LEGACY : r->flavor == GS_CUDA_PROC_LEGACY;
        int best_wanted = best && (per_thread ? best->flavor != GS_CUDA_PROC_LEGACY : best->flavor == GS_CUDA_PROC_LEGACY);
        /* The caller's stream flavour first, then the highest version not above cudaVersion. */
        if (!best || (wanted && !best_wanted) || (wanted == best_wanted && r->version >= best->version)) best = r;
    }
    *pfn = best ? best->fn : NULL;
    if (symbolStatus)
        *symbolStatus = best ? CU_GET_PROC_ADDRESS_SUCCESS : known ? CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    return best ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
}

GSR_EXPORT CUresult cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags) {
    return cuGetProcAddress_v2(symbol, pfn, cudaVersion, flags, NULL);
}

#define GSR_RESULT_NAME(name, value) \
    case value:                      \
        return #name;

static const char *result_name(CUresult r) {
    switch ((int)r) {
        GS_CUDA_RESULT_LIST(GSR_RESULT_NAME)
    default:
        return NULL;
    }
}
#undef GSR_RESULT_NAME

GSR_EXPORT CUresult cuGetErrorName(CUresult error, const char **pStr) {
    if (!pStr) return CUDA_ERROR_INVALID_VALUE;
    *pStr = result_name(error);
    return *pStr ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

/* The name doubles as the description: the worker's driver has the real texts, but these
 * answers must work with the link down (an error about the link is the likeliest one). */
GSR_EXPORT CUresult cuGetErrorString(CUresult error, const char **pStr) { return cuGetErrorName(error, pStr); }

static int logged_export_table;

GSR_EXPORT CUresult cuGetExportTable(const void **ppExportTable, const CUuuid *pExportTableId) {
    (void)pExportTableId;
    if (ppExportTable) *ppExportTable = NULL;
    gsr_log_once("cuGetExportTable is not forwarded yet (CUDA_ERROR_NOT_SUPPORTED)", &logged_export_table);
    return CUDA_ERROR_NOT_SUPPORTED;
}
