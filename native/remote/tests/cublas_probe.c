/*
 * cublas_probe.c: cuBLAS's start (cublasCreate, cublasDestroy) over the remote client, without
 * a GPU: cublas_probe.sh runs it against a worker on the fake driver with
 * GPUSHARE_REMOTE_LOG=2, so its stderr traces every entry point, export table and call cuBLAS
 * made until it failed. libcublas is opened by name (argv[1]), so the probe builds without
 * cuBLAS's headers; the two prototypes are cuBLAS's documented ones.
 */
#include <dlfcn.h>
#include <stdio.h>

typedef int (*cublas_create_fn)(void **handle);  /* cublasCreate_v2(cublasHandle_t *) */
typedef int (*cublas_destroy_fn)(void *handle);  /* cublasDestroy_v2(cublasHandle_t) */

int main(int argc, char **argv) {
    const char *lib = argc > 1 ? argv[1] : "libcublas.so";
    void *h = dlopen(lib, RTLD_NOW);
    if (!h) {
        printf("cublas_probe: dlopen %s: %s\n", lib, dlerror());
        return 2;
    }
    cublas_create_fn create = (cublas_create_fn)dlsym(h, "cublasCreate_v2");
    cublas_destroy_fn destroy = (cublas_destroy_fn)dlsym(h, "cublasDestroy_v2");
    if (!create || !destroy) {
        printf("cublas_probe: %s lacks cublasCreate_v2/cublasDestroy_v2\n", lib);
        return 2;
    }
    void *handle = NULL;
    int rc = create(&handle);
    printf("cublas_probe: cublasCreate -> %d%s\n", rc, rc == 0 ? " (CUBLAS_STATUS_SUCCESS)" : rc == 1 ? " (CUBLAS_STATUS_NOT_INITIALIZED)" : rc == 14 ? " (CUBLAS_STATUS_INTERNAL_ERROR)" : "");
    if (rc != 0) return 1;
    rc = destroy(handle);
    printf("cublas_probe: cublasDestroy -> %d\n", rc);
    return rc != 0;
}
