/*
 * test_fake_cuda_api.c: error codes (before cuInit, NULL pointers, no context, forced),
 * cuGetProcAddress(_v2) resolution by name, version and stream mode, and the same
 * functions reached through dlopen + dlsym.
 */
#include <dlfcn.h>
#include <string.h>

#include "fake_cuda_test.h"

static void *proc(const char *name, int version, cuuint64_t flags, CUdriverProcAddressQueryResult *st)
{
    void *fn = (void *)1;
    CUresult r = cuGetProcAddress_v2(name, &fn, version, flags, st);
    return r == CUDA_SUCCESS ? fn : NULL;
}

static void test_proc_address(void)
{
    CUdriverProcAddressQueryResult st;
    CHECK(proc("cuMemAlloc", 13000, CU_GET_PROC_ADDRESS_DEFAULT, &st) == (void *)&cuMemAlloc_v2);
    CHECK_EQ(st, CU_GET_PROC_ADDRESS_SUCCESS);
    CHECK(proc("cuMemAlloc", 3000, 0, &st) == (void *)&cuMemAlloc);
    CHECK(proc("cuCtxCreate", 13000, 0, &st) == (void *)&cuCtxCreate_v4);
    CHECK(proc("cuCtxCreate", 12000, 0, &st) == (void *)&cuCtxCreate_v3);
    CHECK(proc("cuCtxCreate", 11000, 0, &st) == (void *)&cuCtxCreate_v2);
    CHECK(proc("cuGetProcAddress", 12000, 0, &st) == (void *)&cuGetProcAddress_v2);
    CHECK(proc("cuLaunchKernel", 12000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &st) ==
          (void *)&cuLaunchKernel_ptsz);
    CHECK(proc("cuLaunchKernel", 12000, CU_GET_PROC_ADDRESS_LEGACY_STREAM, &st) == (void *)&cuLaunchKernel);
    CHECK(proc("cuMemcpyHtoD", 13000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &st) ==
          (void *)&cuMemcpyHtoD_v2_ptds);
    CHECK(proc("cuGraphLaunch", 12000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &st) ==
          (void *)&cuGraphLaunch_ptsz);
    CHECK(proc("cuMemAllocAsync", 12000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &st) ==
          (void *)&cuMemAllocAsync_ptsz);
    /* no per-thread form: the default one */
    CHECK(proc("cuMemGetInfo", 12000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &st) ==
          (void *)&cuMemGetInfo_v2);
    CHECK(proc("cuCtxSynchronize", 13000, 0, &st) == (void *)&cuCtxSynchronize_v2);
    CHECK(proc("cuCtxSynchronize", 12080, 0, &st) == (void *)&cuCtxSynchronize);
    CHECK(proc("cuNoSuchFunction", 13000, 0, &st) == NULL);
    CHECK_EQ(st, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
    CHECK(proc("cuMemAlloc_v2", 13000, 0, &st) == NULL); /* versioned names are not API names */
    CHECK(proc("cuMemAllocAsync", 11000, 0, &st) == NULL);
    CHECK_EQ(st, CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT);
    void *fn = (void *)1;
    CHECK_RC(cuGetProcAddress("cuNoSuchFunction", &fn, 13000, 0), CUDA_ERROR_NOT_FOUND);
    CHECK(fn == NULL);
    CHECK_RC(cuGetProcAddress_v2(NULL, &fn, 13000, 0, &st), CUDA_ERROR_INVALID_VALUE);
    CHECK_RC(cuGetProcAddress_v2("cuInit", &fn, 13000, 8, &st), CUDA_ERROR_INVALID_VALUE);
    /* every row resolves to a function at its own version */
#define ROW(name, version, symbol, flavor)                                                                          \
    CHECK(proc(#name, version,                                                                                      \
               flavor == GS_CUDA_PROC_LEGACY ? CU_GET_PROC_ADDRESS_LEGACY_STREAM                                    \
                                             : CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM,                       \
               &st) == (void *)&symbol || strcmp(#name, "cuGraphInstantiate") == 0);
    GS_CUDA_PROC_LIST(ROW)
#undef ROW
}

static void test_dlopen(void)
{
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    CHECK(h != NULL);
    if (!h)
        return;
    CUresult (*alloc)(CUdeviceptr *, size_t) = (CUresult(*)(CUdeviceptr *, size_t))dlsym(h, "cuMemAlloc_v2");
    CUresult (*release)(CUdeviceptr) = (CUresult(*)(CUdeviceptr))dlsym(h, "cuMemFree_v2");
    CHECK(alloc == &cuMemAlloc_v2);
    CHECK(dlsym(h, "fake_state") == NULL); /* internals stay hidden */
    CHECK(dlsym(h, "json_parse") == NULL);
    CUdeviceptr p = 0;
    if (alloc && release) {
        CHECK_OK(alloc(&p, 4096));
        CHECK_OK(release(p));
    }
    CHECK(dlclose(h) == 0);
}

int main(void)
{
    const char *name = NULL;
    CUcontext ctx;
    CUdeviceptr p;
    size_t f, t;
    int v = 0;
    /* before cuInit */
    CHECK_RC(cuMemAlloc_v2(&p, 1), CUDA_ERROR_NOT_INITIALIZED);
    CHECK_RC(cuCtxCreate_v4(&ctx, NULL, 0, 0), CUDA_ERROR_NOT_INITIALIZED);
    CHECK_OK(cuDriverGetVersion(&v));
    CHECK_EQ(v, 13000);
    CHECK_OK(cuGetErrorName(CUDA_ERROR_OUT_OF_MEMORY, &name));
    CHECK(name && strcmp(name, "CUDA_ERROR_OUT_OF_MEMORY") == 0);
    CHECK_RC(cuGetErrorName((CUresult)12345, &name), CUDA_ERROR_INVALID_VALUE);
    test_proc_address(); /* works before cuInit too */
    fct_configure("{\"driverVersion\": 12080, \"errors\": {\"cuMemAllocManaged\": 2},"
                  " \"devices\": [{\"name\": \"Fake A100\", \"computeCapability\": [8, 0],"
                  " \"multiprocessorCount\": 108, \"pciBusId\": \"0000:3b:00.0\"}]}",
                  NULL);
    CHECK_RC(cuInit(1), CUDA_ERROR_INVALID_VALUE);
    CHECK_OK(cuInit(0));
    CHECK_OK(cuDriverGetVersion(&v));
    CHECK_EQ(v, 12080);
    /* no context */
    CHECK_RC(cuMemAlloc_v2(&p, 1), CUDA_ERROR_INVALID_CONTEXT);
    CHECK_RC(cuMemGetInfo_v2(&f, &t), CUDA_ERROR_INVALID_CONTEXT);
    CHECK_RC(cuCtxSynchronize(), CUDA_ERROR_INVALID_CONTEXT);
    CHECK_RC(cuCtxPopCurrent_v2(&ctx), CUDA_ERROR_INVALID_CONTEXT);
    /* NULL pointers and bad devices */
    CHECK_RC(cuDeviceGetCount(NULL), CUDA_ERROR_INVALID_VALUE);
    CHECK_RC(cuCtxCreate_v4(NULL, NULL, 0, 0), CUDA_ERROR_INVALID_VALUE);
    CHECK_RC(cuCtxCreate_v4(&ctx, NULL, 0, 1), CUDA_ERROR_INVALID_DEVICE);
    CHECK_RC(cuDeviceGet(&v, 1), CUDA_ERROR_INVALID_DEVICE);
    /* device identity */
    char buf[64];
    CHECK_OK(cuDeviceGetName(buf, sizeof buf, 0));
    CHECK(strcmp(buf, "Fake A100") == 0);
    CHECK_OK(cuDeviceGetPCIBusId(buf, sizeof buf, 0));
    CHECK(strcmp(buf, "0000:3b:00.0") == 0);
    CHECK_OK(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0));
    CHECK_EQ(v, 108);
    CHECK_RC(cuDeviceGetAttribute(&v, (CUdevice_attribute)100000, 0), CUDA_ERROR_INVALID_VALUE);
    CUuuid u;
    CHECK_OK(cuDeviceGetUuid_v2(&u, 0));
    CHECK_EQ((unsigned char)u.bytes[0], 0xfa);
    CHECK_EQ((unsigned char)u.bytes[15], 0x00);
    /* green contexts refused on compute capability 8.0 */
    CUdevResource res;
    CHECK_RC(cuDeviceGetDevResource(0, &res, CU_DEV_RESOURCE_TYPE_SM), CUDA_ERROR_NOT_SUPPORTED);
    /* forced error, and the checkpoint API only drives this process */
    CHECK_OK(cuCtxCreate_v2(&ctx, 0, 0));
    CHECK_RC(cuMemAllocManaged(&p, 4096, CU_MEM_ATTACH_GLOBAL), CUDA_ERROR_OUT_OF_MEMORY);
    CHECK_RC(cuMemAllocManaged(&p, 4096, 0), CUDA_ERROR_OUT_OF_MEMORY); /* forced wins over validation */
    CHECK_RC(cuCheckpointProcessLock(1, NULL), CUDA_ERROR_NOT_SUPPORTED);
    CHECK_RC(cuStreamSynchronize((CUstream)(uintptr_t)0x1234), CUDA_ERROR_INVALID_HANDLE);
    CHECK_RC(cuEventQuery(NULL), CUDA_ERROR_INVALID_HANDLE);
    CUdeviceptr_v1 small = 0;
    CHECK_OK(cuMemAlloc(&small, 4096)); /* the 32-bit ABI gets a 32-bit address */
    CHECK(small != 0);
    CHECK_OK(cuMemFree(small));
    test_dlopen();
    CHECK_OK(cuCtxDestroy_v2(ctx));
    return fct_finish("fake_cuda_api");
}
