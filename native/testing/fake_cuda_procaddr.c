/*
 * fake_cuda_procaddr.c: cuGetProcAddress(_v2), driven by the one version table in
 * gs_cuda_procs.h (which the header check proves against cudaTypedefs.h).
 */
#include <string.h>

#include "fake_cuda_state.h"
#include "gs_cuda_procs_extra.h"

/* fake_cuda_library.c's entry points (CUlibrary and CUkernel as the fake's records). */
CUresult cuLibraryLoadData(struct CUmod_st **library, const void *code, void *jitOptions, void **jitOptionsValues,
                           unsigned int numJitOptions, void *libraryOptions, void **libraryOptionValues,
                           unsigned int numLibraryOptions);
CUresult cuLibraryUnload(struct CUmod_st *library);
CUresult cuLibraryGetKernel(struct CUfunc_st **kernel, struct CUmod_st *library, const char *name);
CUresult cuKernelGetFunction(struct CUfunc_st **func, struct CUfunc_st *kernel);

typedef struct proc_row {
    const char *name;
    int version;
    void *fn;
    int flavor;
} proc_row_t;

#define PROC_ROW(name, version, symbol, flavor) {#name, version, (void *)&symbol, flavor},
static const proc_row_t rows[] = {GS_CUDA_PROC_LIST(PROC_ROW)};
#define ROW_COUNT (sizeof rows / sizeof rows[0])

/* Entry points beyond gs_cuda_api.h (fake_cuda_function.c, cuCtxGetStreamPriorityRange in
 * fake_cuda_stream.c): what the CUDA runtime, and so the remote worker, asks for. */
static const proc_row_t extra_rows[] = {
    GS_CUDA_PROC_EXTRA_LIST(PROC_ROW)
    /* fake_cuda_library.c */
    {"cuLibraryLoadData", 12000, (void *)&cuLibraryLoadData, GS_CUDA_PROC_LEGACY},
    {"cuLibraryUnload", 12000, (void *)&cuLibraryUnload, GS_CUDA_PROC_LEGACY},
    {"cuLibraryGetKernel", 12000, (void *)&cuLibraryGetKernel, GS_CUDA_PROC_LEGACY},
    {"cuKernelGetFunction", 12000, (void *)&cuKernelGetFunction, GS_CUDA_PROC_LEGACY},
};
#undef PROC_ROW

/* First row named `name` (the table is sorted by name), or ROW_COUNT. */
static size_t first_row(const char *name)
{
    size_t lo = 0, hi = ROW_COUNT;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(rows[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < ROW_COUNT && strcmp(rows[lo].name, name) == 0 ? lo : ROW_COUNT;
}

/* Works before cuInit, like the real one: the CUDA runtime looks up cuInit this way. */
static CUresult lookup(const char *symbol, void **pfn, int version, cuuint64_t flags,
                       CUdriverProcAddressQueryResult *status)
{
    CUdriverProcAddressQueryResult st = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    if (!symbol || !pfn || flags > (CU_GET_PROC_ADDRESS_LEGACY_STREAM | CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM))
        return CUDA_ERROR_INVALID_VALUE;
    *pfn = NULL;
    bool per_thread = (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) != 0;
    const proc_row_t *best = NULL, *best_pt = NULL;
    for (size_t i = first_row(symbol); i < ROW_COUNT && strcmp(rows[i].name, symbol) == 0; i++) {
        st = CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT;
        if (rows[i].version > version)
            continue;
        const proc_row_t **slot = rows[i].flavor == GS_CUDA_PROC_LEGACY ? &best : &best_pt;
        if (!*slot || rows[i].version >= (*slot)->version)
            *slot = &rows[i];
    }
    for (size_t i = 0; i < sizeof extra_rows / sizeof extra_rows[0]; i++) {
        if (strcmp(extra_rows[i].name, symbol) != 0)
            continue;
        st = CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT;
        if (extra_rows[i].version <= version)
            best = &extra_rows[i];
    }
    const proc_row_t *pick = per_thread && best_pt ? best_pt : best;
    if (pick) {
        *pfn = pick->fn;
        st = CU_GET_PROC_ADDRESS_SUCCESS;
    }
    if (status)
        *status = st;
    return pick ? CUDA_SUCCESS : CUDA_ERROR_NOT_FOUND;
}

FAKE_EXPORT CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags,
                                         CUdriverProcAddressQueryResult *symbolStatus)
{
    return lookup(symbol, pfn, cudaVersion, flags, symbolStatus);
}

FAKE_EXPORT CUresult cuGetProcAddress(const char *symbol, void **pfn, int cudaVersion, cuuint64_t flags)
{
    return lookup(symbol, pfn, cudaVersion, flags, NULL);
}
