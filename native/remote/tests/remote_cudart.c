/*
 * remote_cudart.c: calls the driver the way the CUDA runtime (libcudart 12/13, inside CuPy
 * and PyTorch) does, through whatever libcuda.so.1 the library path gives (the remote client
 * in run_remote_tests.sh): dlopen, one dlsym (cuGetProcAddress_v2) and every other entry
 * point through it with a CUDA version and stream flags; cuGetExportTable's tables (the
 * primary context, module loads, context-local storage, the integrity check); the primary
 * context's state, retain and set current; a fatbin registered with cuLibraryLoadData, a
 * kernel by cuLibraryGetKernel, its attributes and occupancy, launches through the kernel
 * handle (default and per-thread stream); stream priorities, event waits across streams and
 * page-locked host memory, as PyTorch's stream pool and caching host allocator use them;
 * then the NVML calls frameworks make, through
 * libnvidia-ml.so.1. Prints "remote_cudart ok" when every check held, else the first failure.
 */
#define _DEFAULT_SOURCE
#include "cuda_extra.h"
#include "gs_cuda.h"
#include "gs_nvml.h"
#define CHECK_PROGRAM "remote_cudart"
#include "runtime_check.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROC(type, name) __typeof__(type) p_##name = (type)proc(#name, 12080, CU_GET_PROC_ADDRESS_DEFAULT)

/* The export tables' UUIDs, as the runtime asks for them (client_export.c). */
static const CUuuid cudart_interface_id = {{0x6b, (char)0xd5, (char)0xfb, 0x6c, 0x5b, (char)0xf4, (char)0xe7, 0x4a, (char)0x89, (char)0x87,
                                            (char)0xd9, 0x39, 0x12, (char)0xfd, (char)0x9d, (char)0xf9}};
static const CUuuid context_storage_id = {{(char)0xc6, (char)0x93, 0x33, 0x6e, 0x11, 0x21, (char)0xdf, 0x11, (char)0xa8, (char)0xc3, 0x68,
                                           (char)0xf3, 0x55, (char)0xd8, (char)0x95, (char)0x93}};
static const CUuuid integrity_id = {{(char)0xd4, 0x08, 0x20, 0x55, (char)0xbd, (char)0xe6, 0x70, 0x4b, (char)0x8d, 0x34, (char)0xba, 0x12,
                                     0x3c, 0x66, (char)0xe1, (char)0xf2}};
static const CUuuid tools_hooks_id = {{(char)0xa0, (char)0x94, 0x79, (char)0x8c, 0x2e, 0x74, 0x2e, 0x74, (char)0x93, (char)0xf2, 0x08, 0x00,
                                       0x20, 0x0c, 0x0a, 0x66}};
static const CUuuid tools_context_id = {{0x21, 0x31, (char)0x8c, 0x60, (char)0x97, 0x14, 0x32, 0x48, (char)0x8c, (char)0xa6, 0x41,
                                         (char)0xff, 0x73, 0x24, (char)0xc8, (char)0xf2}};
static const CUuuid tools_tls_id = {{0x42, (char)0xd8, 0x5a, (char)0x81, 0x23, (char)0xf6, (char)0xcb, 0x47, (char)0x82, (char)0x98, (char)0xf6,
                                     (char)0xe7, (char)0x8a, 0x3a, (char)0xec, (char)0xdc}};

/* What the context-local storage's destructor was last called with. */
static int gone_calls;
static CUcontext gone_ctx;
static void *gone_key, *gone_value;
static void storage_gone(CUcontext ctx, void *key, void *value) {
    gone_calls++;
    gone_ctx = ctx;
    gone_key = key;
    gone_value = value;
}

static void check_nvml(CUdevice dev, CUresult (*mem_alloc)(CUdeviceptr *, size_t), CUresult (*mem_free)(CUdeviceptr)) {
    PROC(CUresult(*)(char *, int, CUdevice), cuDeviceGetName);
    PROC(CUresult(*)(CUuuid *, CUdevice), cuDeviceGetUuid);
    PROC(CUresult(*)(size_t *, CUdevice), cuDeviceTotalMem);
    if (!p_cuDeviceGetName || !p_cuDeviceGetUuid || !p_cuDeviceTotalMem) return;
    void *h = dlopen("libnvidia-ml.so.1", RTLD_NOW);
    CHECK(h != NULL);
    if (!h) return;
    nvmlReturn_t (*init)(void) = (nvmlReturn_t(*)(void))dlsym(h, "nvmlInit_v2");
    nvmlReturn_t (*count)(unsigned *) = (nvmlReturn_t(*)(unsigned *))dlsym(h, "nvmlDeviceGetCount_v2");
    nvmlReturn_t (*by_index)(unsigned, nvmlDevice_t *) = (nvmlReturn_t(*)(unsigned, nvmlDevice_t *))dlsym(h, "nvmlDeviceGetHandleByIndex_v2");
    nvmlReturn_t (*by_uuid)(const char *, nvmlDevice_t *) = (nvmlReturn_t(*)(const char *, nvmlDevice_t *))dlsym(h, "nvmlDeviceGetHandleByUUID");
    nvmlReturn_t (*name)(nvmlDevice_t, char *, unsigned) = (nvmlReturn_t(*)(nvmlDevice_t, char *, unsigned))dlsym(h, "nvmlDeviceGetName");
    nvmlReturn_t (*uuid)(nvmlDevice_t, char *, unsigned) = (nvmlReturn_t(*)(nvmlDevice_t, char *, unsigned))dlsym(h, "nvmlDeviceGetUUID");
    nvmlReturn_t (*memory)(nvmlDevice_t, nvmlMemory_t *) = (nvmlReturn_t(*)(nvmlDevice_t, nvmlMemory_t *))dlsym(h, "nvmlDeviceGetMemoryInfo");
    nvmlReturn_t (*cc)(nvmlDevice_t, int *, int *) = (nvmlReturn_t(*)(nvmlDevice_t, int *, int *))dlsym(h, "nvmlDeviceGetCudaComputeCapability");
    nvmlReturn_t (*shutdown)(void) = (nvmlReturn_t(*)(void))dlsym(h, "nvmlShutdown");
    CHECK(init && count && by_index && by_uuid && name && uuid && memory && cc && shutdown);
    CHECK(dlsym(h, "nvmlDeviceGetPowerUsage") == NULL); /* not served: absent, not a stub */
    if (!init || !count || !by_index || !by_uuid || !name || !uuid || !memory || !cc || !shutdown) return;
    unsigned n = 0;
    nvmlDevice_t d = NULL, d2 = NULL;
    EXPECT(count(&n), NVML_ERROR_UNINITIALIZED);
    EXPECT(init(), NVML_SUCCESS);
    EXPECT(count(&n), NVML_SUCCESS);
    CHECK(n == 1);
    EXPECT(by_index(0, &d), NVML_SUCCESS);
    EXPECT(by_index(n, &d2), NVML_ERROR_INVALID_ARGUMENT);
    EXPECT(name((nvmlDevice_t)&n, (char[96]){0}, 96), NVML_ERROR_INVALID_ARGUMENT); /* a forged handle */

    char nv_name[96] = {0}, cu_name[96] = {0}, nv_uuid[96] = {0}, want_uuid[48];
    EXPECT(name(d, nv_name, sizeof nv_name), NVML_SUCCESS);
    EXPECT(p_cuDeviceGetName(cu_name, sizeof cu_name, dev), CUDA_SUCCESS);
    CHECK(strcmp(nv_name, cu_name) == 0);
    EXPECT(name(d, nv_name, 4), NVML_ERROR_INSUFFICIENT_SIZE);
    CUuuid u;
    EXPECT(p_cuDeviceGetUuid(&u, dev), CUDA_SUCCESS);
    const unsigned char *b = (const unsigned char *)u.bytes;
    snprintf(want_uuid, sizeof want_uuid, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3],
             b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    EXPECT(uuid(d, nv_uuid, sizeof nv_uuid), NVML_SUCCESS);
    CHECK(strcmp(nv_uuid, want_uuid) == 0);
    EXPECT(by_uuid(want_uuid, &d2), NVML_SUCCESS);
    CHECK(d2 == d);
    EXPECT(by_uuid("GPU-00000000-0000-0000-0000-000000000000", &d2), NVML_ERROR_NOT_FOUND);
    int major = 0, minor = 0;
    EXPECT(cc(d, &major, &minor), NVML_SUCCESS);
    CHECK(major == 9 && minor == 0); /* the fake's default H100 */

    /* Memory: the device's total, and this session's allocations as used. */
    nvmlMemory_t before, after;
    size_t total = 0;
    EXPECT(p_cuDeviceTotalMem(&total, dev), CUDA_SUCCESS);
    EXPECT(memory(d, &before), NVML_SUCCESS);
    CHECK(before.total == total && before.used + before.free == before.total);
    CUdeviceptr p = 0;
    EXPECT(mem_alloc(&p, 64u << 20), CUDA_SUCCESS);
    EXPECT(memory(d, &after), NVML_SUCCESS);
    CHECK(after.used == before.used + (64u << 20));
    EXPECT(mem_free(p), CUDA_SUCCESS);
    EXPECT(memory(d, &after), NVML_SUCCESS);
    CHECK(after.used == before.used);
    EXPECT(shutdown(), NVML_SUCCESS);
    EXPECT(count(&n), NVML_ERROR_UNINITIALIZED);
    printf("remote_cudart: nvml %s %s used %llu of %llu\n", nv_name, nv_uuid, before.used, before.total);
}

int main(void) {
    void *lib = dlopen("libcuda.so.1", RTLD_NOW);
    if (!lib) {
        printf("remote_cudart: FAIL dlopen: %s\n", dlerror());
        return 1;
    }
    get_proc = (pfn_get_proc)dlsym(lib, "cuGetProcAddress_v2");
    if (!get_proc) {
        printf("remote_cudart: FAIL no cuGetProcAddress_v2\n");
        return 1;
    }

    /* The lookups themselves: versioned names, per-thread forms, unknown and too-new names. */
    void *fn = NULL;
    CUdriverProcAddressQueryResult st;
    CHECK(proc("cuMemAlloc", 12080, 0) == dlsym(lib, "cuMemAlloc_v2"));
    CHECK(proc("cuMemAlloc", 3000, 0) == dlsym(lib, "cuMemAlloc"));
    CHECK(proc("cuLaunchKernel", 12080, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) == dlsym(lib, "cuLaunchKernel_ptsz"));
    CHECK(proc("cuLaunchKernel", 12080, CU_GET_PROC_ADDRESS_LEGACY_STREAM) == dlsym(lib, "cuLaunchKernel"));
    CHECK(proc("cuMemcpyHtoD", 12080, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) == dlsym(lib, "cuMemcpyHtoD_v2_ptds"));
    EXPECT(get_proc("cuNoSuchEntryPoint", &fn, 12080, 0, &st), CUDA_ERROR_NOT_FOUND);
    CHECK(st == CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND && fn == NULL);
    EXPECT(get_proc("cuLibraryLoadData", &fn, 11080, 0, &st), CUDA_ERROR_NOT_FOUND);
    CHECK(st == CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);

    /* Private tables (client_export.c): served by UUID, each asked logged once (the script
     * counts the lines); an unknown one refused. */
    CUresult (*get_export)(const void **, const CUuuid *) = (CUresult(*)(const void **, const CUuuid *))proc("cuGetExportTable", 12080, 0);
    const void *table = (const void *)1;
    CUuuid unknown = {{(char)0xf8, (char)0xcf, (char)0xf9, 0x51, 0x21, 0x46, (char)0x8b, 0x4e, (char)0xb9, (char)0xe2, (char)0xfb, 0x46,
                       (char)0x9e, 0x7c, 0x0d, (char)0xd9}};
    void *const *cudart = NULL, *const *cls = NULL, *const *integrity = NULL, *const *tools_tls = NULL;
    CHECK(get_export != NULL);
    if (get_export) {
        EXPECT(get_export(&table, &unknown), CUDA_ERROR_NOT_SUPPORTED);
        CHECK(table == NULL);
        EXPECT(get_export(&table, &unknown), CUDA_ERROR_NOT_SUPPORTED);
        EXPECT(get_export(&table, &cudart_interface_id), CUDA_SUCCESS);
        EXPECT(get_export(&table, &cudart_interface_id), CUDA_SUCCESS);
        cudart = table;
        EXPECT(get_export(&table, &context_storage_id), CUDA_SUCCESS);
        cls = table;
        EXPECT(get_export(&table, &integrity_id), CUDA_SUCCESS);
        integrity = table;
        EXPECT(get_export(&table, &tools_hooks_id), CUDA_SUCCESS);
        CHECK(table && ((const uintptr_t *)table)[0] == 7 * sizeof(void *));
        EXPECT(get_export(&table, &tools_tls_id), CUDA_SUCCESS);
        tools_tls = table;
        /* TOOLS_CONTEXT: served, every slot a named refusal (what a library calls, logged). */
        EXPECT(get_export(&table, &tools_context_id), CUDA_SUCCESS);
        CHECK(table && ((const uintptr_t *)table)[0] == 95 * sizeof(void *));
        if (table) {
            for (int i = 1; i < 95; i++) CHECK(((void *const *)table)[i] != NULL);
            EXPECT(((CUresult(*)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t, uint64_t))((void *const *)table)[94])(1, 2, 3, 4, 5, 6),
                   CUDA_ERROR_NOT_SUPPORTED);
        }
    }
    if (!cudart || !cls || !integrity || !tools_tls) {
        printf("remote_cudart: the export tables are missing\n");
        return 1;
    }
    CHECK((uintptr_t)cudart[0] == 13 * sizeof(void *) && (uintptr_t)integrity[0] == 3 * sizeof(void *));
    CUresult (*table_primary_ctx)(CUcontext *, CUdevice) = (CUresult(*)(CUcontext *, CUdevice))cudart[2];
    CUresult (*table_module)(CUmodule *, const void *) = (CUresult(*)(CUmodule *, const void *))cudart[1];
    CUresult (*cls_put)(CUcontext, void *, void *, void (*)(CUcontext, void *, void *)) =
        (CUresult(*)(CUcontext, void *, void *, void (*)(CUcontext, void *, void *)))cls[0];
    CUresult (*cls_delete)(CUcontext, void *) = (CUresult(*)(CUcontext, void *))cls[1];
    CUresult (*cls_get)(void **, CUcontext, void *) = (CUresult(*)(void **, CUcontext, void *))cls[2];
    CUresult (*integrity_check)(unsigned, unsigned long long, unsigned long long *) =
        (CUresult(*)(unsigned, unsigned long long, unsigned long long *))integrity[1];

    PROC(CUresult(*)(unsigned), cuInit);
    PROC(CUresult(*)(CUdevice *, int), cuDeviceGet);
    PROC(CUresult(*)(CUdevice, unsigned *, int *), cuDevicePrimaryCtxGetState);
    PROC(CUresult(*)(CUcontext *, CUdevice), cuDevicePrimaryCtxRetain);
    PROC(CUresult(*)(CUdevice), cuDevicePrimaryCtxRelease);
    PROC(CUresult(*)(CUcontext), cuCtxSetCurrent);
    PROC(CUresult(*)(CUdeviceptr *, size_t), cuMemAlloc);
    PROC(CUresult(*)(CUdeviceptr), cuMemFree);
    PROC(CUresult(*)(CUlibrary *, const void *, CUjit_option *, void **, unsigned, CUlibraryOption *, void **, unsigned), cuLibraryLoadData);
    PROC(CUresult(*)(CUkernel *, CUlibrary, const char *), cuLibraryGetKernel);
    PROC(CUresult(*)(CUfunction *, CUkernel), cuKernelGetFunction);
    PROC(CUresult(*)(CUlibrary), cuLibraryUnload);
    PROC(CUresult(*)(int *, int, CUfunction), cuFuncGetAttribute);
    PROC(CUresult(*)(CUfunction, int, int), cuFuncSetAttribute);
    PROC(CUresult(*)(int *, CUfunction, int, size_t), cuOccupancyMaxActiveBlocksPerMultiprocessor);
    PROC(CUresult(*)(CUfunction, size_t, size_t *, size_t *), cuFuncGetParamInfo);
    PROC(CUresult(*)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, CUstream, void **, void **), cuLaunchKernel);
    PROC(CUresult(*)(CUstream), cuStreamSynchronize);
    PROC(CUresult(*)(void), cuCtxSynchronize);
    void *launch_pt = proc("cuLaunchKernel", 12080, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM);
    void *sync_pt = proc("cuStreamSynchronize", 12080, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM);
    if (failures) {
        printf("remote_cudart: %d failures before the session\n", failures);
        return 1;
    }
    CUresult (*cuLaunchKernel_pt)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, CUstream, void **,
                                  void **) = launch_pt;
    CUresult (*cuStreamSynchronize_pt)(CUstream) = sync_pt;

    /* The runtime's start: init, the primary context (state, retain, current). */
    CUdevice dev = -1;
    unsigned flags = 99;
    int active = -1;
    EXPECT(p_cuInit(0), CUDA_SUCCESS);
    EXPECT(p_cuDeviceGet(&dev, 0), CUDA_SUCCESS);
    EXPECT(p_cuDevicePrimaryCtxGetState(dev, &flags, &active), CUDA_SUCCESS);
    CHECK(flags == 0 && active == 0);
    EXPECT(p_cuDevicePrimaryCtxGetState(7, &flags, &active), CUDA_ERROR_INVALID_DEVICE);
    /* The runtime's table gives the primary context before anyone retains it: not active. */
    CUcontext ctx = NULL, early = NULL;
    EXPECT(table_primary_ctx(&early, dev), CUDA_SUCCESS);
    EXPECT(p_cuDevicePrimaryCtxGetState(dev, &flags, &active), CUDA_SUCCESS);
    CHECK(early != NULL && active == 0);
    EXPECT(p_cuDevicePrimaryCtxRetain(&ctx, dev), CUDA_SUCCESS);
    CHECK(ctx == early);
    EXPECT(p_cuDevicePrimaryCtxGetState(dev, &flags, &active), CUDA_SUCCESS);
    CHECK(active == 1);
    EXPECT(p_cuCtxSetCurrent(ctx), CUDA_SUCCESS);
    /* TOOLS_TLS: a tool's cuCtxGetCurrent (slot 2; cuBLASLt's before choosing a matmul's
     * algorithm) and cuCtxSetCurrent (slot 1). */
    CUresult (*tls_set)(CUcontext) = (CUresult(*)(CUcontext))tools_tls[1];
    CUresult (*tls_get)(CUcontext *) = (CUresult(*)(CUcontext *))tools_tls[2];
    CUcontext seen = NULL;
    EXPECT(tls_get(&seen), CUDA_SUCCESS);
    CHECK(seen == ctx);
    EXPECT(tls_set(NULL), CUDA_SUCCESS);
    EXPECT(tls_get(&seen), CUDA_SUCCESS);
    CHECK(seen == NULL);
    EXPECT(tls_set(ctx), CUDA_SUCCESS);
    EXPECT(tls_get(&seen), CUDA_SUCCESS);
    CHECK(seen == ctx);
    EXPECT(tls_get(NULL), CUDA_ERROR_INVALID_VALUE);

    /* CUDA 13's forms, which cuGetProcAddress hands out at 13000: the context explicit. */
    CUresult (*sync13)(CUcontext) = (CUresult(*)(CUcontext))proc("cuCtxSynchronize", 13000, 0);
    CUresult (*device13)(CUdevice *, CUcontext) = (CUresult(*)(CUdevice *, CUcontext))proc("cuCtxGetDevice", 13000, 0);
    CUresult (*create13)(CUcontext *, void *, unsigned, CUdevice) =
        (CUresult(*)(CUcontext *, void *, unsigned, CUdevice))proc("cuCtxCreate", 13000, 0);
    PROC(CUresult(*)(CUcontext), cuCtxDestroy);
    PROC(CUresult(*)(CUcontext *), cuCtxGetCurrent);
    CHECK(sync13 == dlsym(lib, "cuCtxSynchronize_v2") && device13 == dlsym(lib, "cuCtxGetDevice_v2") && create13 == dlsym(lib, "cuCtxCreate_v4"));
    if (sync13 && device13 && create13 && p_cuCtxDestroy && p_cuCtxGetCurrent) {
        CUcontext other = NULL, cur = NULL;
        CUdevice d13 = -1;
        EXPECT(create13(&other, NULL, 0, dev), CUDA_SUCCESS); /* pushed: now current */
        EXPECT(p_cuCtxSetCurrent(ctx), CUDA_SUCCESS);
        EXPECT(sync13(NULL), CUDA_SUCCESS);
        EXPECT(sync13(other), CUDA_SUCCESS);
        EXPECT(device13(&d13, other), CUDA_SUCCESS);
        CHECK(d13 == dev);
        EXPECT(device13(&d13, (CUcontext)(uintptr_t)0x0100000000000999ull), CUDA_ERROR_INVALID_CONTEXT); /* not one of ours */
        EXPECT(p_cuCtxGetCurrent(&cur), CUDA_SUCCESS);
        CHECK(cur == ctx); /* the explicit context was pushed only for the call */
        EXPECT(create13(&cur, &d13, 0, dev), CUDA_ERROR_NOT_SUPPORTED); /* parameters are not forwarded */
        /* Context-local storage: per context, NULL meaning the current one; a context's
         * entries go with it, their destructors called with what was put. */
        int key1, key2;
        void *got = NULL;
        EXPECT(cls_get(&got, NULL, &key1), CUDA_ERROR_INVALID_HANDLE); /* never put */
        EXPECT(cls_put(NULL, &key1, &key2, NULL), CUDA_SUCCESS);
        EXPECT(cls_get(&got, ctx, &key1), CUDA_SUCCESS);
        CHECK(got == &key2);
        EXPECT(cls_get(&got, other, &key1), CUDA_ERROR_INVALID_HANDLE); /* another context's */
        EXPECT(cls_put(other, &key1, &key1, storage_gone), CUDA_SUCCESS);
        EXPECT(cls_put(other, &key1, &flags, storage_gone), CUDA_SUCCESS); /* replaced */
        EXPECT(cls_get(&got, other, &key1), CUDA_SUCCESS);
        CHECK(got == &flags);
        EXPECT(cls_delete(NULL, &key1), CUDA_SUCCESS);
        EXPECT(cls_get(&got, NULL, &key1), CUDA_ERROR_INVALID_HANDLE);
        EXPECT(p_cuCtxDestroy(other), CUDA_SUCCESS);
        CHECK(gone_calls == 1 && gone_ctx == other && gone_key == &key1 && gone_value == &flags);
        EXPECT(cls_get(&got, other, &key1), CUDA_ERROR_INVALID_HANDLE);
        EXPECT(p_cuCtxSetCurrent(ctx), CUDA_SUCCESS);
    }

    /* The integrity check: fixed answers for versions ending in 0 and 1, else a hash of the
     * process, the tables and the devices that moves with the time given (its exact value is
     * checked by the real runtime: cudart_app.sh). */
    unsigned long long h0[2] = {0}, h1[2] = {0}, h2[2] = {0}, h3[2] = {0};
    EXPECT(integrity_check(13000, 1, h0), CUDA_SUCCESS);
    EXPECT(integrity_check(13001, 1, h1), CUDA_SUCCESS);
    CHECK(h0[1] == h1[1] && h0[0] != h1[0]);
    EXPECT(integrity_check(13002, 1700000000, h2), CUDA_SUCCESS);
    EXPECT(integrity_check(13002, 1700000000, h3), CUDA_SUCCESS);
    CHECK(h2[0] == h3[0] && h2[1] == h3[1] && (h2[0] | h2[1]) != 0);
    EXPECT(integrity_check(13002, 1700000001, h3), CUDA_SUCCESS);
    CHECK(h2[0] != h3[0] || h2[1] != h3[1]);

    /* First launch: the fatbin registered as a library, the kernel found in it. */
    make_fatbin();
    CUlibrary library = NULL;
    CUkernel kernel = NULL;
    CUfunction func = NULL;
    EXPECT(p_cuLibraryLoadData(&library, &wrapper, NULL, NULL, 0, NULL, NULL, 0), CUDA_SUCCESS);
    EXPECT(p_cuLibraryGetKernel(&kernel, library, "sleep_1000"), CUDA_SUCCESS);
    CUmodule from_table = NULL;
    EXPECT(table_module(&from_table, &wrapper), CUDA_SUCCESS); /* the runtime's module load */
    EXPECT(table_module(NULL, &wrapper), CUDA_ERROR_INVALID_VALUE);
    PROC(CUresult(*)(CUmodule), cuModuleUnload);
    if (p_cuModuleUnload) EXPECT(p_cuModuleUnload(from_table), CUDA_SUCCESS);
    EXPECT(p_cuKernelGetFunction(&func, kernel), CUDA_SUCCESS);
    EXPECT(p_cuKernelGetFunction(&func, (CUkernel)&flags), CUDA_ERROR_INVALID_HANDLE); /* not one of ours */
    int v = 0;
    EXPECT(p_cuFuncGetAttribute(&v, 0 /* MAX_THREADS_PER_BLOCK */, func), CUDA_SUCCESS);
    CHECK(v == 1024);
    EXPECT(p_cuFuncGetAttribute(&v, 6 /* BINARY_VERSION */, func), CUDA_SUCCESS);
    CHECK(v == 90);
    EXPECT(p_cuFuncSetAttribute(func, 8 /* MAX_DYNAMIC_SHARED_SIZE_BYTES */, 96 * 1024), CUDA_SUCCESS);
    EXPECT(p_cuFuncGetAttribute(&v, 8, func), CUDA_SUCCESS);
    CHECK(v == 96 * 1024);
    EXPECT(p_cuFuncSetAttribute(func, 4 /* NUM_REGS: read-only */, 8), CUDA_ERROR_INVALID_VALUE);
    EXPECT(p_cuFuncGetAttribute(&v, 4, (CUfunction)&flags), CUDA_ERROR_INVALID_HANDLE);
    EXPECT(p_cuOccupancyMaxActiveBlocksPerMultiprocessor(&v, func, 256, 0), CUDA_SUCCESS);
    CHECK(v == 8);
    EXPECT(p_cuOccupancyMaxActiveBlocksPerMultiprocessor(&v, func, 128, 64 * 1024), CUDA_SUCCESS);
    CHECK(v == 3);
    size_t off = 0, size = 0;
    EXPECT(p_cuFuncGetParamInfo(func, 0, &off, &size), CUDA_ERROR_NOT_SUPPORTED); /* the fake's driver gives no layout */

    /* Launches through the kernel handle itself and through its function, both streams. */
    EXPECT(p_cuLaunchKernel((CUfunction)kernel, 1, 1, 1, 32, 1, 1, 0, NULL, NULL, NULL), CUDA_SUCCESS);
    EXPECT(cuLaunchKernel_pt(func, 2, 1, 1, 32, 1, 1, 0, NULL, NULL, NULL), CUDA_SUCCESS);
    EXPECT(cuStreamSynchronize_pt(NULL), CUDA_SUCCESS);
    EXPECT(p_cuStreamSynchronize(NULL), CUDA_SUCCESS);
    EXPECT(p_cuCtxSynchronize(), CUDA_SUCCESS);

    /* PyTorch's stream pool: the priority range, streams with priorities, cross-stream waits
     * on events; pinned host buffers for copies. */
    PROC(CUresult(*)(int *, int *), cuCtxGetStreamPriorityRange);
    PROC(CUresult(*)(CUstream *, unsigned, int), cuStreamCreateWithPriority);
    PROC(CUresult(*)(CUevent *, unsigned), cuEventCreate);
    PROC(CUresult(*)(CUevent, CUstream), cuEventRecord);
    PROC(CUresult(*)(CUstream, CUevent, unsigned), cuStreamWaitEvent);
    PROC(CUresult(*)(CUstream), cuStreamDestroy);
    PROC(CUresult(*)(CUevent), cuEventDestroy);
    PROC(CUresult(*)(void **, size_t, unsigned), cuMemHostAlloc);
    PROC(CUresult(*)(void *), cuMemFreeHost);
    PROC(CUresult(*)(CUdeviceptr, const void *, size_t, CUstream), cuMemcpyHtoDAsync);
    PROC(CUresult(*)(void *, CUdeviceptr, size_t, CUstream), cuMemcpyDtoHAsync);
    int least = 1, greatest = 1;
    EXPECT(p_cuCtxGetStreamPriorityRange(&least, &greatest), CUDA_SUCCESS);
    CHECK(least == 0 && greatest == -5);
    CUstream hi = NULL, lo = NULL;
    CUevent ev = NULL;
    EXPECT(p_cuStreamCreateWithPriority(&hi, 1 /* NON_BLOCKING */, greatest), CUDA_SUCCESS);
    EXPECT(p_cuStreamCreateWithPriority(&lo, 1, least), CUDA_SUCCESS);
    EXPECT(p_cuEventCreate(&ev, 2 /* DISABLE_TIMING */), CUDA_SUCCESS);
    void *pinned = NULL;
    EXPECT(p_cuMemHostAlloc(&pinned, 1 << 20, 3 /* PORTABLE | DEVICEMAP */), CUDA_SUCCESS);
    CHECK(pinned != NULL && ((uintptr_t)pinned & 4095) == 0);
    CUdeviceptr buf = 0;
    EXPECT(p_cuMemAlloc(&buf, 1 << 20), CUDA_SUCCESS);
    memset(pinned, 0x5a, 1 << 20);
    EXPECT(p_cuMemcpyHtoDAsync(buf, pinned, 1 << 20, hi), CUDA_SUCCESS);
    EXPECT(p_cuEventRecord(ev, hi), CUDA_SUCCESS);
    EXPECT(p_cuStreamWaitEvent(lo, ev, 0), CUDA_SUCCESS);
    memset(pinned, 0, 1 << 20);
    EXPECT(p_cuMemcpyDtoHAsync(pinned, buf, 1 << 20, lo), CUDA_SUCCESS);
    EXPECT(p_cuStreamSynchronize(lo), CUDA_SUCCESS);
    CHECK(((unsigned char *)pinned)[0] == 0x5a && ((unsigned char *)pinned)[(1 << 20) - 1] == 0x5a);
    /* Copies in the direction the addresses say (cudaMemcpyDefault): device ranges are this
     * session's allocations, reserved in this process's address space. */
    PROC(CUresult(*)(CUdeviceptr, CUdeviceptr, size_t), cuMemcpy);
    PROC(CUresult(*)(CUdeviceptr, CUdeviceptr, size_t, CUstream), cuMemcpyAsync);
    if (p_cuMemcpy && p_cuMemcpyAsync) {
        static unsigned char src[8192], dst[8192], other[8192];
        CUdeviceptr buf2 = 0;
        for (size_t i = 0; i < sizeof src; i++) src[i] = (unsigned char)(i * 7 + 3);
        /* 1 MiB: outside ASan's fixed-address size classes, which the client's own heap shares
         * (the fake's device memory is the worker's heap; an overlap would be refused). */
        EXPECT(p_cuMemAlloc(&buf2, 1 << 20), CUDA_SUCCESS);
        EXPECT(p_cuMemcpy(buf2 + 100, (CUdeviceptr)(uintptr_t)src, sizeof src), CUDA_SUCCESS); /* host to device, inside */
        EXPECT(p_cuMemcpyAsync(buf, buf2 + 100, sizeof src, lo), CUDA_SUCCESS);                /* device to device */
        EXPECT(p_cuMemcpyAsync((CUdeviceptr)(uintptr_t)dst, buf, sizeof dst, lo), CUDA_SUCCESS); /* device to host */
        EXPECT(p_cuMemcpyAsync((CUdeviceptr)(uintptr_t)other, (CUdeviceptr)(uintptr_t)dst, sizeof dst, lo), CUDA_SUCCESS); /* host, in order */
        CHECK(memcmp(other, src, sizeof src) == 0);
        EXPECT(p_cuMemcpy(buf2 + (1 << 20) - 8, (CUdeviceptr)(uintptr_t)src, 64), CUDA_ERROR_INVALID_VALUE); /* past the end: the worker says no */
        EXPECT(p_cuMemFree(buf2), CUDA_SUCCESS);
    }
    EXPECT(p_cuStreamWaitEvent(lo, (CUevent)(uintptr_t)0x0500000000000777ull, 0), CUDA_SUCCESS); /* sent without reply: */
    EXPECT(p_cuStreamSynchronize(lo), CUDA_ERROR_INVALID_HANDLE);                                /* its error shows here */
    EXPECT(p_cuMemFree(buf), CUDA_SUCCESS);
    EXPECT(p_cuMemFreeHost(pinned), CUDA_SUCCESS);
    EXPECT(p_cuMemFreeHost(pinned), CUDA_ERROR_INVALID_VALUE); /* not (any longer) ours */
    EXPECT(p_cuEventDestroy(ev), CUDA_SUCCESS);
    EXPECT(p_cuStreamDestroy(hi), CUDA_SUCCESS);
    EXPECT(p_cuStreamDestroy(lo), CUDA_SUCCESS);

    check_nvml(dev, p_cuMemAlloc, p_cuMemFree);

    EXPECT(p_cuLibraryUnload(library), CUDA_SUCCESS);
    EXPECT(p_cuLaunchKernel(func, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL), CUDA_SUCCESS); /* sent without reply: */
    EXPECT(p_cuCtxSynchronize(), CUDA_ERROR_INVALID_HANDLE);                              /* its error shows here */
    EXPECT(p_cuDevicePrimaryCtxRelease(dev), CUDA_SUCCESS);
    EXPECT(p_cuDevicePrimaryCtxGetState(dev, &flags, &active), CUDA_SUCCESS);
    CHECK(active == 0);
    if (failures) {
        printf("remote_cudart: %d failures\n", failures);
        return 1;
    }
    printf("remote_cudart ok\n");
    return 0;
}
