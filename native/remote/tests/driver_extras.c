/*
 * driver_extras.c: preloaded into the worker by run_remote_tests.sh, the driver entry points
 * the fake driver lacks and the query ops use (worker_queries.c), so the tests see the
 * driver's answers pass through and not only the worker's fallbacks: cuGetProcAddress_v2
 * hands out the ones below and asks the fake for the rest. A module's global is 4 KiB of the
 * fake's device memory, made at the first cuModuleGetGlobal of that module (name "missing":
 * CUDA_ERROR_NOT_FOUND) and freed by the module's cuModuleUnload, as a driver frees a module's
 * globals with it. The worker is single-threaded: this state needs no lock.
 */
#define _GNU_SOURCE
#include "gs_cuda.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT __attribute__((visibility("default")))
#define MAX_MODULES 64
#define GLOBAL_BYTES 4096u

static struct {
    CUmodule module;
    CUdeviceptr global;
} globals[MAX_MODULES]; /* one test session's modules */
static size_t limits[16];
static int cache_config;

static CUresult module_global(CUdeviceptr *dptr, size_t *bytes, CUmodule module, const char *name) {
    if (!name || strcmp(name, "missing") == 0) return CUDA_ERROR_NOT_FOUND;
    int free_slot = -1;
    for (int i = 0; i < MAX_MODULES; i++) {
        if (globals[i].module == module) {
            *dptr = globals[i].global;
            *bytes = GLOBAL_BYTES;
            return CUDA_SUCCESS;
        }
        if (!globals[i].module && free_slot < 0) free_slot = i;
    }
    if (free_slot < 0) return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult rc = cuMemAlloc_v2(&globals[free_slot].global, GLOBAL_BYTES);
    if (rc != CUDA_SUCCESS) return rc;
    globals[free_slot].module = module;
    *dptr = globals[free_slot].global;
    *bytes = GLOBAL_BYTES;
    return CUDA_SUCCESS;
}

static void free_globals(CUmodule module) {
    for (int i = 0; i < MAX_MODULES; i++)
        if (module && globals[i].module == module) {
            (void)cuMemFree_v2(globals[i].global);
            globals[i].module = NULL;
        }
}

EXPORT CUresult cuModuleUnload(CUmodule module) {
    CUresult (*next)(CUmodule) = (CUresult(*)(CUmodule))dlsym(RTLD_NEXT, "cuModuleUnload");
    free_globals(module);
    return next ? next(module) : CUDA_ERROR_NOT_SUPPORTED;
}

/* A library's globals the same way (the worker finds both through cuGetProcAddress). */
static CUresult library_unload(CUmodule library) {
    CUresult (*next)(CUmodule) = (CUresult(*)(CUmodule))dlsym(RTLD_NEXT, "cuLibraryUnload");
    free_globals(library);
    return next ? next(library) : CUDA_ERROR_NOT_SUPPORTED;
}

static CUresult get_limit(size_t *value, int limit) {
    if (!value || limit < 0 || limit >= 16) return CUDA_ERROR_INVALID_VALUE;
    *value = limits[limit];
    return CUDA_SUCCESS;
}

static CUresult set_limit(int limit, size_t value) {
    if (limit < 0 || limit >= 16) return CUDA_ERROR_INVALID_VALUE;
    limits[limit] = value;
    return CUDA_SUCCESS;
}

static CUresult get_cache_config(int *config) {
    *config = cache_config;
    return CUDA_SUCCESS;
}

static CUresult set_cache_config(int config) {
    cache_config = config;
    return CUDA_SUCCESS;
}

static CUresult get_flags(unsigned *flags) {
    *flags = 0x8; /* CU_CTX_SCHED_BLOCKING_SYNC, so a pass-through shows */
    return CUDA_SUCCESS;
}

static CUresult get_api_version(CUcontext ctx, unsigned *version) {
    (void)ctx;
    *version = 3020;
    return CUDA_SUCCESS;
}

static const struct {
    const char *name;
    void *fn;
} extras[] = {
    {"cuModuleGetGlobal", (void *)module_global}, {"cuLibraryGetGlobal", (void *)module_global}, {"cuLibraryUnload", (void *)library_unload},
    {"cuCtxGetLimit", (void *)get_limit},           {"cuCtxSetLimit", (void *)set_limit},
    {"cuCtxGetCacheConfig", (void *)get_cache_config}, {"cuCtxSetCacheConfig", (void *)set_cache_config},
    {"cuCtxGetFlags", (void *)get_flags},         {"cuCtxGetApiVersion", (void *)get_api_version},
};

EXPORT CUresult cuGetProcAddress_v2(const char *symbol, void **pfn, int version, cuuint64_t flags, CUdriverProcAddressQueryResult *status) {
    /* DRIVER_EXTRAS_NO_LIBRARIES=1: a driver without CUDA 12's libraries, so the worker answers
     * LIBRARY_LOAD_DATA with NOT_SUPPORTED and the client falls back to modules. */
    const char *no_libraries = getenv("DRIVER_EXTRAS_NO_LIBRARIES");
    if (symbol && pfn && no_libraries && *no_libraries == '1' && (strncmp(symbol, "cuLibrary", 9) == 0 || strcmp(symbol, "cuKernelGetFunction") == 0)) {
        *pfn = NULL;
        if (status) *status = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
        return CUDA_ERROR_NOT_FOUND;
    }
    for (size_t i = 0; symbol && pfn && i < sizeof extras / sizeof extras[0]; i++)
        if (strcmp(symbol, extras[i].name) == 0) {
            *pfn = extras[i].fn;
            if (status) *status = CU_GET_PROC_ADDRESS_SUCCESS;
            return CUDA_SUCCESS;
        }
    CUresult (*next)(const char *, void **, int, cuuint64_t, CUdriverProcAddressQueryResult *) =
        (CUresult(*)(const char *, void **, int, cuuint64_t, CUdriverProcAddressQueryResult *))dlsym(RTLD_NEXT, "cuGetProcAddress_v2");
    return next ? next(symbol, pfn, version, flags, status) : CUDA_ERROR_NOT_FOUND;
}
