/*
 * client_procs.c: the remote client's local answers: cuGetProcAddress (the driver's table,
 * gs_cuda_procs.h, pointing at this library's own functions, plus the entry points of
 * cuda_extra.h; names it does not serve are logged once), error names and strings, and
 * cuGetExportTable (the tables of client_export.c; each UUID asked is logged once).
 */
#include "client.h"
#include "client_served.h"
#include "cuda_extra.h"
#include "gs_cuda_procs_extra.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cuda_extra.h's entry points, exported by client_api.c and client_runtime.c. */
CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n);
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t n, CUstream s);
CUresult cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t n, CUstream s);
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s);
CUresult cuModuleLoadFatBinary(CUmodule *module, const void *fatCubin);
CUresult cuModuleLoadDataEx(CUmodule *module, const void *image, unsigned int n, CUjit_option *options, void **values);
CUresult cuLibraryLoadData(CUlibrary *library, const void *code, CUjit_option *jitOptions, void **jitOptionsValues,
                           unsigned int numJitOptions, CUlibraryOption *libraryOptions, void **libraryOptionValues,
                           unsigned int numLibraryOptions);
CUresult cuLibraryUnload(CUlibrary library);
CUresult cuModuleGetLoadingMode(int *mode);
CUresult cuLibraryGetModule(CUmodule *pMod, CUlibrary library);
CUresult cuLibraryGetKernel(CUkernel *pKernel, CUlibrary library, const char *name);
CUresult cuKernelGetFunction(CUfunction *pFunc, CUkernel kernel);
CUresult cuKernelGetAttribute(int *pi, int attrib, CUkernel kernel, CUdevice dev);
CUresult cuKernelSetAttribute(int attrib, int val, CUkernel kernel, CUdevice dev);
CUresult cuFuncSetCacheConfig(CUfunction hfunc, int config);
CUresult cuFuncGetParamInfo(CUfunction func, size_t paramIndex, size_t *paramOffset, size_t *paramSize);
GSR_EXPORT CUresult cuGetExportTable(const void **ppExportTable, const CUuuid *pExportTableId);

typedef struct proc_row {
    const char *name;
    int version;
    void *fn;
    int flavor;
} proc_row;

/* The driver's table, then the names it lacks (versions as CUDA 13's cudaTypedefs.h). */
#define GSR_PROC_ROW(name, version, symbol, flavor) {#name, version, (void *)&symbol, flavor},
static const proc_row procs[] = {
    GS_CUDA_PROC_LIST(GSR_PROC_ROW)
    GS_CUDA_PROC_EXTRA_LIST(GSR_PROC_ROW)
    GSR_SERVED_PROC_LIST(GSR_PROC_ROW)
    {"cuGetExportTable", 3000, (void *)&cuGetExportTable, GS_CUDA_PROC_LEGACY},
    {"cuMemcpyDtoD", 3020, (void *)&cuMemcpyDtoD_v2, GS_CUDA_PROC_LEGACY},
    {"cuMemcpyDtoDAsync", 3020, (void *)&cuMemcpyDtoDAsync_v2, GS_CUDA_PROC_LEGACY},
    {"cuMemcpyDtoHAsync", 3020, (void *)&cuMemcpyDtoHAsync_v2, GS_CUDA_PROC_LEGACY},
    {"cuMemcpyHtoDAsync", 3020, (void *)&cuMemcpyHtoDAsync_v2, GS_CUDA_PROC_LEGACY},
    {"cuModuleLoadFatBinary", 2000, (void *)&cuModuleLoadFatBinary, GS_CUDA_PROC_LEGACY},
    {"cuModuleLoadDataEx", 2010, (void *)&cuModuleLoadDataEx, GS_CUDA_PROC_LEGACY},
    {"cuLibraryLoadData", 12000, (void *)&cuLibraryLoadData, GS_CUDA_PROC_LEGACY},
    {"cuLibraryUnload", 12000, (void *)&cuLibraryUnload, GS_CUDA_PROC_LEGACY},
    {"cuModuleGetLoadingMode", 11070, (void *)&cuModuleGetLoadingMode, GS_CUDA_PROC_LEGACY},
    {"cuLibraryGetModule", 12000, (void *)&cuLibraryGetModule, GS_CUDA_PROC_LEGACY},
    {"cuLibraryGetKernel", 12000, (void *)&cuLibraryGetKernel, GS_CUDA_PROC_LEGACY},
    {"cuKernelGetFunction", 12000, (void *)&cuKernelGetFunction, GS_CUDA_PROC_LEGACY},
    {"cuKernelGetAttribute", 12000, (void *)&cuKernelGetAttribute, GS_CUDA_PROC_LEGACY},
    {"cuKernelSetAttribute", 12000, (void *)&cuKernelSetAttribute, GS_CUDA_PROC_LEGACY},
    {"cuFuncSetCacheConfig", 3000, (void *)&cuFuncSetCacheConfig, GS_CUDA_PROC_LEGACY},
    {"cuFuncGetParamInfo", 12040, (void *)&cuFuncGetParamInfo, GS_CUDA_PROC_LEGACY},
};
#undef GSR_PROC_ROW

/* Names asked for and not served, each logged once (GPUSHARE_REMOTE_LOG=1): what the next
 * piece of forwarding should cover. A fixed set of hashes: a process asks a few hundred names. */
#define UNKNOWN_SLOTS 1024
static struct {
    pthread_mutex_t lock;
    uint64_t hash[UNKNOWN_SLOTS];
} unknown = {.lock = PTHREAD_MUTEX_INITIALIZER};

static uint64_t name_hash(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    while (*s) h = (h ^ (unsigned char)*s++) * 1099511628211ull;
    return h | 1; /* 0 marks a free slot */
}

static void log_unknown(const char *symbol, const char *why) {
    if (gsr_log_level() < 1) return;
    uint64_t h = name_hash(symbol);
    int fresh = 0;
    pthread_mutex_lock(&unknown.lock);
    for (size_t i = h % UNKNOWN_SLOTS, n = 0; n < UNKNOWN_SLOTS; i = (i + 1) % UNKNOWN_SLOTS, n++) {
        if (unknown.hash[i] == h) break;
        if (unknown.hash[i] == 0) {
            unknown.hash[i] = h;
            fresh = 1;
            break;
        }
    }
    pthread_mutex_unlock(&unknown.lock);
    if (fresh) fprintf(stderr, "gpushare remote: cuGetProcAddress(\"%s\"): %s\n", symbol, why);
}

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
    if (!best) log_unknown(symbol, known ? "no row at this version" : "not served");
    if (gsr_log_level() >= 2)
        fprintf(stderr, "gpushare remote: ask cuGetProcAddress(\"%s\", %d, %s): %s\n", symbol, cudaVersion,
                per_thread ? "per-thread" : "legacy", best ? "served" : known ? "no row at this version" : "not served");
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

/*
 * cuGetExportTable: the driver's private tables (function pointers by UUID) that the CUDA
 * runtime asks for at its start, served by client_export.c. A UUID it does not know is
 * answered CUDA_ERROR_NOT_SUPPORTED (the runtime goes on without the first table it asks,
 * f8cff951-..., and reports its initialization error for the others). Each UUID asked is logged
 * once with GPUSHARE_REMOTE_LOG=1, served or not (docs/remote.md "The export tables").
 */
#define EXPORT_SLOTS 32
static struct {
    pthread_mutex_t lock;
    CUuuid seen[EXPORT_SLOTS];
    int n;
} export_asked = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void log_export_table(const CUuuid *id, const char *served_as) {
    int level = gsr_log_level();
    if (level < 1) return;
    int fresh = 1;
    pthread_mutex_lock(&export_asked.lock);
    for (int i = 0; i < export_asked.n && fresh; i++)
        if (memcmp(&export_asked.seen[i], id, sizeof *id) == 0) fresh = 0;
    if (fresh && export_asked.n < EXPORT_SLOTS) export_asked.seen[export_asked.n++] = *id;
    pthread_mutex_unlock(&export_asked.lock);
    if (!fresh && level < 2) return;
    char hex[2 * sizeof id->bytes + 1];
    for (size_t i = 0; i < sizeof id->bytes; i++) snprintf(hex + 2 * i, 3, "%02x", (unsigned char)id->bytes[i]);
    if (served_as)
        fprintf(stderr, "gpushare remote: cuGetExportTable(%s): served (%s)\n", hex, served_as);
    else
        fprintf(stderr, "gpushare remote: cuGetExportTable(%s): not served (CUDA_ERROR_NOT_SUPPORTED)\n", hex);
}

GSR_EXPORT CUresult cuGetExportTable(const void **ppExportTable, const CUuuid *pExportTableId) {
    if (!ppExportTable || !pExportTableId) return CUDA_ERROR_INVALID_VALUE;
    const char *name = NULL;
    *ppExportTable = gsr_export_table(pExportTableId, &name);
    log_export_table(pExportTableId, name);
    return *ppExportTable ? CUDA_SUCCESS : CUDA_ERROR_NOT_SUPPORTED;
}
