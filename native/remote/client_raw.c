/*
 * client_raw.c: the entry points of client_raw.h the client answers (the others are generated
 * NOT_SUPPORTED ones): found by dlsym, not by cuGetProcAddress, so each must exist for a
 * library like cuBLASLt to start at all.
 */
#include "client.h"
#include "client_raw.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A module from a file (cubin, fatbin or PTX): read here, sent as cuModuleLoadData sends an
 * image; the worker never opens a path of the client's machine. */
GSR_EXPORT CUresult cuModuleLoad(CUmodule *module, const char *fname) {
    if (!module || !fname) return CUDA_ERROR_INVALID_VALUE;
    FILE *f = fopen(fname, "rb");
    if (!f) return gsr_trace("cuModuleLoad (opening the file)", CUDA_ERROR_FILE_NOT_FOUND);
    CUresult rc = CUDA_SUCCESS;
    long size = -1;
    if (fseek(f, 0, SEEK_END) == 0) size = ftell(f);
    if (size <= 0 || (unsigned long long)size > GSR_MAX_MODULE_BYTES || fseek(f, 0, SEEK_SET) != 0) {
        rc = size < 0 ? CUDA_ERROR_FILE_NOT_FOUND : CUDA_ERROR_INVALID_IMAGE;
    }
    /* One byte more, zero: a PTX text image ends at its NUL, as the driver reads one. The headers
     * are read only within the file's size (gsr_load_image_within): a file is not trusted as the
     * program's own memory is. */
    char *image = rc == CUDA_SUCCESS ? calloc(1, (size_t)size + 1) : NULL;
    if (rc == CUDA_SUCCESS && !image) rc = CUDA_ERROR_OUT_OF_MEMORY;
    if (rc == CUDA_SUCCESS && fread(image, 1, (size_t)size, f) != (size_t)size) rc = CUDA_ERROR_FILE_NOT_FOUND;
    fclose(f);
    uint64_t id = 0;
    if (rc == CUDA_SUCCESS) rc = gsr_load_image_within(&id, image, (uint64_t)size, 0);
    if (rc == CUDA_SUCCESS) *module = (CUmodule)(uintptr_t)id;
    free(image);
    return rc;
}

/* A kernel's library: the handle it was asked from (client.h's function record keeps it). */
GSR_EXPORT CUresult cuKernelGetLibrary(CUlibrary *pLib, CUkernel kernel) {
    const gsr_function *f = (const gsr_function *)kernel;
    if (!pLib) return CUDA_ERROR_INVALID_VALUE;
    if (!f || f->magic != GSR_FUNC_MAGIC) return CUDA_ERROR_INVALID_HANDLE;
    *pLib = (CUlibrary)(uintptr_t)f->module;
    return CUDA_SUCCESS;
}

/* The exported cuGraphInstantiate is CUDA 11's (an error node and a log buffer); cuda.h's
 * macro of the same name is cuGraphInstantiateWithFlags, which this forwards to. */
GSR_EXPORT CUresult cuGraphInstantiate(CUgraphExec *phGraphExec, CUgraph hGraph, CUgraphNode *phErrorNode, char *logBuffer, size_t bufferSize) {
    CUresult rc = cuGraphInstantiateWithFlags(phGraphExec, hGraph, 0);
    if (phErrorNode) *phErrorNode = NULL;
    if (logBuffer && bufferSize > 0) {
        const char *why = NULL;
        if (rc != CUDA_SUCCESS && cuGetErrorName(rc, &why) != CUDA_SUCCESS) why = NULL;
        snprintf(logBuffer, bufferSize, "%s", rc == CUDA_SUCCESS || !why ? "" : why);
    }
    return rc;
}
