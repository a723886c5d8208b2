/*
 * fake_cuda_library.c: CUDA 12's context-independent libraries (cuLibraryLoadData and the
 * kernels of a library), as the remote worker uses them (native/remote/worker_calls.c).
 *
 * A library is a module that belongs to no context. It takes any image, also one starting
 * "nobinary" that cuModuleLoadData refuses (fake_cuda_launch.c): a library with no code for
 * the GPU loads, and asking for one of its kernels' functions in a context
 * (cuKernelGetFunction) answers CUDA_ERROR_NO_BINARY_FOR_GPU. That is this fake's model of
 * the driver's lazy loading, not a measurement of it. A kernel is its library's function
 * record, so cuKernelGetFunction hands back the same record, and launches take either.
 */
#include <stdlib.h>
#include <string.h>

#include "fake_cuda_state.h"

FAKE_EXPORT CUresult cuLibraryLoadData(struct CUmod_st **library, const void *code, void *jitOptions, void **jitOptionsValues,
                                       unsigned int numJitOptions, void *libraryOptions, void **libraryOptionValues,
                                       unsigned int numLibraryOptions)
{
    (void)jitOptions, (void)jitOptionsValues, (void)libraryOptions, (void)libraryOptionValues;
    CUresult r = fake_enter("cuLibraryLoadData");
    if (r == CUDA_SUCCESS && (!library || !code || (numJitOptions && !jitOptions) || (numLibraryOptions && !libraryOptions)))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r != CUDA_SUCCESS)
        return fake_leave(r);
    struct CUmod_st *m = calloc(1, sizeof *m);
    if (!m)
        return fake_leave(CUDA_ERROR_OUT_OF_MEMORY);
    m->library = true;
    m->no_binary = strncmp(code, "nobinary", 8) == 0;
    fake_list_add(&fake_state()->modules, m);
    *library = m;
    return fake_leave(CUDA_SUCCESS);
}

static bool is_library(struct CUmod_st *m)
{
    return m && fake_list_has(&fake_state()->modules, m) && m->library;
}

FAKE_EXPORT CUresult cuLibraryUnload(struct CUmod_st *library)
{
    CUresult r = fake_enter("cuLibraryUnload");
    if (r == CUDA_SUCCESS && !is_library(library))
        r = CUDA_ERROR_INVALID_HANDLE;
    if (r == CUDA_SUCCESS)
        fake_module_free(library);
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuLibraryGetKernel(struct CUfunc_st **kernel, struct CUmod_st *library, const char *name)
{
    CUresult r = fake_enter("cuLibraryGetKernel");
    if (r == CUDA_SUCCESS && (!kernel || !name))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && !is_library(library))
        r = CUDA_ERROR_INVALID_HANDLE;
    if (r == CUDA_SUCCESS)
        r = fake_module_function(library, name, kernel);
    return fake_leave(r);
}

/* The library a kernel record belongs to, or NULL. */
static struct CUmod_st *kernel_library(const struct CUfunc_st *k)
{
    FAKE_FOREACH(struct CUmod_st, m, &fake_state()->modules)
    for (const struct CUfunc_st *g = m->functions; g; g = g->next)
        if (g == k)
            return m->library ? m : NULL;
    return NULL;
}

FAKE_EXPORT CUresult cuKernelGetFunction(struct CUfunc_st **func, struct CUfunc_st *kernel)
{
    struct CUctx_st *ctx;
    CUresult r = fake_enter("cuKernelGetFunction");
    if (r == CUDA_SUCCESS && !func)
        r = CUDA_ERROR_INVALID_VALUE;
    struct CUmod_st *lib = r == CUDA_SUCCESS ? kernel_library(kernel) : NULL;
    if (r == CUDA_SUCCESS && !lib)
        r = CUDA_ERROR_INVALID_HANDLE;
    if (r == CUDA_SUCCESS)
        r = fake_need_ctx(&ctx);
    if (r == CUDA_SUCCESS && lib->no_binary)
        r = CUDA_ERROR_NO_BINARY_FOR_GPU;
    if (r == CUDA_SUCCESS)
        *func = kernel;
    return fake_leave(r);
}
