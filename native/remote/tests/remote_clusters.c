/*
 * remote_clusters.c: what cuBLAS(Lt) asks at its start of an sm_90 kernel and how it launches
 * it, over the remote client (run_remote_tests.sh, worker on the fake driver): the dynamic
 * shared memory left for a block, the cluster occupancy (cuOccupancyMaxPotentialClusterSize,
 * cuOccupancyMaxActiveClusters, after cuFuncSetAttribute's cluster attributes) and
 * cuLaunchKernelEx with a cluster dimension (the fake's launch log shows it arrived), TMA
 * descriptors (cuTensorMapEncodeTiled, cuTensorMapReplaceAddress) encoded by the worker. The
 * answers are the fake's H100 model (FAKE_CUDA.md) passed through; refusals: an event launch
 * attribute (NOT_SUPPORTED, nothing sent), a cluster too large (the driver's
 * INVALID_CLUSTER_SIZE), a forged function handle (INVALID_HANDLE).
 */
#define _GNU_SOURCE
#define CHECK_PROGRAM "remote_clusters"
#include "cuda_extra.h"
#include "gs_cuda_procs_extra.h"
#include "runtime_check.h"

#include <dlfcn.h>

#define PROC(type, name) __typeof__(type) p_##name = (type)proc(#name, 12080, CU_GET_PROC_ADDRESS_DEFAULT)

int main(void) {
    void *lib = dlopen("libcuda.so.1", RTLD_NOW);
    if (!lib) {
        printf("remote_clusters: FAIL dlopen: %s\n", dlerror());
        return 1;
    }
    get_proc = (pfn_get_proc)dlsym(lib, "cuGetProcAddress_v2");
    if (!get_proc) {
        printf("remote_clusters: FAIL no cuGetProcAddress_v2\n");
        return 1;
    }
    PROC(CUresult(*)(unsigned), cuInit);
    PROC(CUresult(*)(CUcontext *, CUdevice), cuDevicePrimaryCtxRetain);
    PROC(CUresult(*)(CUdevice), cuDevicePrimaryCtxRelease);
    PROC(CUresult(*)(CUcontext), cuCtxSetCurrent);
    PROC(CUresult(*)(int *, CUdevice_attribute, CUdevice), cuDeviceGetAttribute);
    PROC(CUresult(*)(CUlibrary *, const void *, CUjit_option *, void **, unsigned, CUlibraryOption *, void **, unsigned), cuLibraryLoadData);
    PROC(CUresult(*)(CUkernel *, CUlibrary, const char *), cuLibraryGetKernel);
    PROC(CUresult(*)(CUlibrary), cuLibraryUnload);
    PROC(CUresult(*)(CUfunction, int, int), cuFuncSetAttribute);
    PROC(CUresult(*)(size_t *, CUfunction, int, int), cuOccupancyAvailableDynamicSMemPerBlock);
    PROC(CUresult(*)(int *, CUfunction, const CUlaunchConfig *), cuOccupancyMaxActiveClusters);
    PROC(CUresult(*)(int *, CUfunction, const CUlaunchConfig *), cuOccupancyMaxPotentialClusterSize);
    PROC(CUresult(*)(const CUlaunchConfig *, CUfunction, void **, void **), cuLaunchKernelEx);
    PROC(CUresult(*)(void), cuCtxSynchronize);
    PROC(CUresult(*)(CUdeviceptr *, size_t), cuMemAlloc);
    PROC(CUresult(*)(CUdeviceptr), cuMemFree);
    PROC(CUresult(*)(CUtensorMap *, int, cuuint32_t, void *, const cuuint64_t *, const cuuint64_t *, const cuuint32_t *, const cuuint32_t *,
                     int, int, int, int),
         cuTensorMapEncodeTiled);
    PROC(CUresult(*)(CUtensorMap *, void *), cuTensorMapReplaceAddress);
    void *launch_ex_pt = proc("cuLaunchKernelEx", 12080, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM);
    CHECK(launch_ex_pt == dlsym(lib, "cuLaunchKernelEx_ptsz"));
    if (failures) {
        printf("remote_clusters: %d entry points missing\n", failures);
        return 1;
    }

    CUcontext ctx = NULL;
    EXPECT(p_cuInit(0), CUDA_SUCCESS);
    EXPECT(p_cuDevicePrimaryCtxRetain(&ctx, 0), CUDA_SUCCESS);
    EXPECT(p_cuCtxSetCurrent(ctx), CUDA_SUCCESS);
    int sms = 0;
    EXPECT(p_cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, 0), CUDA_SUCCESS);
    make_fatbin();
    CUlibrary library = NULL;
    CUkernel kernel = NULL;
    EXPECT(p_cuLibraryLoadData(&library, &wrapper, NULL, NULL, 0, NULL, NULL, 0), CUDA_SUCCESS);
    EXPECT(p_cuLibraryGetKernel(&kernel, library, "gemm_sm90_cluster"), CUDA_SUCCESS);
    CUfunction f = (CUfunction)kernel, forged = (CUfunction)&sms;

    /* Dynamic shared memory a block may have: 228 KiB an SM shared by the blocks, 1 KiB
     * reserved each, at most 227 KiB; none when the blocks do not fit. */
    size_t smem = 0;
    EXPECT(p_cuOccupancyAvailableDynamicSMemPerBlock(&smem, f, 1, 128), CUDA_SUCCESS);
    CHECK(smem == 227 * 1024);
    EXPECT(p_cuOccupancyAvailableDynamicSMemPerBlock(&smem, f, 2, 128), CUDA_SUCCESS);
    CHECK(smem == 114 * 1024 - 1024);
    EXPECT(p_cuOccupancyAvailableDynamicSMemPerBlock(&smem, f, 3, 1024), CUDA_SUCCESS);
    CHECK(smem == 0);
    EXPECT(p_cuOccupancyAvailableDynamicSMemPerBlock(&smem, forged, 1, 128), CUDA_ERROR_INVALID_HANDLE);
    EXPECT(p_cuOccupancyAvailableDynamicSMemPerBlock(NULL, f, 1, 128), CUDA_ERROR_INVALID_VALUE);

    /* Cluster sizes: 8 portably, 16 once the function allows non-portable sizes. */
    CUlaunchAttribute attrs[2];
    memset(attrs, 0, sizeof attrs);
    attrs[0].id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
    attrs[0].value.clusterDim.x = 2, attrs[0].value.clusterDim.y = 1, attrs[0].value.clusterDim.z = 1;
    CUlaunchConfig config = {132, 1, 1, 128, 1, 1, 64 * 1024, NULL, attrs, 1};
    int n = 0;
    EXPECT(p_cuOccupancyMaxPotentialClusterSize(&n, f, &config), CUDA_SUCCESS);
    CHECK(n == 8);
    EXPECT(p_cuFuncSetAttribute(f, 14 /* NON_PORTABLE_CLUSTER_SIZE_ALLOWED */, 1), CUDA_SUCCESS);
    EXPECT(p_cuOccupancyMaxPotentialClusterSize(&n, f, &config), CUDA_SUCCESS);
    CHECK(n == 16);
    /* Active clusters of 2 blocks with 64 KiB each: 3 blocks an SM (228 / 64), pairs of them. */
    EXPECT(p_cuOccupancyMaxActiveClusters(&n, f, &config), CUDA_SUCCESS);
    CHECK(n == sms * 3 / 2);
    attrs[0].value.clusterDim.x = 32;
    EXPECT(p_cuOccupancyMaxActiveClusters(&n, f, &config), CUDA_ERROR_INVALID_CLUSTER_SIZE);
    attrs[0].value.clusterDim.x = 2;
    EXPECT(p_cuOccupancyMaxActiveClusters(&n, forged, &config), CUDA_ERROR_INVALID_HANDLE);
    EXPECT(p_cuOccupancyMaxActiveClusters(&n, f, NULL), CUDA_ERROR_INVALID_VALUE);

    /* Launches with the configuration: one on the context's stream, one on the per-thread one;
     * an event attribute is refused before anything is sent. */
    EXPECT(p_cuLaunchKernelEx(&config, f, NULL, NULL), CUDA_SUCCESS);
    CUresult (*launch_pt)(const CUlaunchConfig *, CUfunction, void **, void **) =
        (CUresult(*)(const CUlaunchConfig *, CUfunction, void **, void **))launch_ex_pt;
    config.gridDimX = 4;
    EXPECT(launch_pt(&config, f, NULL, NULL), CUDA_SUCCESS);
    /* The largest launch: 4 KiB of parameters (a Hopper GEMM's carry TMA descriptors) and
     * sixteen attributes fit one request. */
    static unsigned char big[4096] __attribute__((aligned(64)));
    size_t big_size = sizeof big;
    void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, big, CU_LAUNCH_PARAM_BUFFER_SIZE, &big_size, CU_LAUNCH_PARAM_END};
    CUlaunchAttribute many[16];
    memset(many, 0, sizeof many);
    for (int i = 0; i < 16; i++) many[i].id = i == 0 ? CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION : CU_LAUNCH_ATTRIBUTE_PRIORITY;
    many[0].value.clusterDim.x = many[0].value.clusterDim.y = many[0].value.clusterDim.z = 1;
    CUlaunchConfig wide = config;
    wide.attrs = many, wide.numAttrs = 16;
    EXPECT(p_cuLaunchKernelEx(&wide, f, NULL, extra), CUDA_SUCCESS);
    wide.numAttrs = 17;
    EXPECT(p_cuLaunchKernelEx(&wide, f, NULL, extra), CUDA_ERROR_NOT_SUPPORTED);
    attrs[1].id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_EVENT;
    config.numAttrs = 2;
    EXPECT(p_cuLaunchKernelEx(&config, f, NULL, NULL), CUDA_ERROR_NOT_SUPPORTED);
    config.numAttrs = 1;
    EXPECT(p_cuLaunchKernelEx(&config, forged, NULL, NULL), CUDA_ERROR_INVALID_HANDLE);
    EXPECT(p_cuCtxSynchronize(), CUDA_SUCCESS);

    /* A TMA descriptor for a 256 x 128 float matrix in device memory, 64 x 32 boxes: encoded by
     * the worker's driver (the fake's own encoding: word 0 the address, 1-2 the dimensions), then
     * moved to another address; bad arguments refused by the driver, nothing written. */
    CUdeviceptr d = 0;
    EXPECT(p_cuMemAlloc(&d, 256 * 128 * 4), CUDA_SUCCESS);
    CUtensorMap map;
    memset(&map, 0xab, sizeof map);
    cuuint64_t dims[2] = {128, 256}, strides[1] = {128 * 4};
    cuuint32_t box[2] = {32, 64}, elem[2] = {1, 1};
    EXPECT(p_cuTensorMapEncodeTiled(&map, 7 /* FLOAT32 */, 2, (void *)(uintptr_t)d, dims, strides, box, elem, 0, 3 /* 128B */, 2, 0),
           CUDA_SUCCESS);
    CHECK(map.opaque[0] == d && map.opaque[1] == 128 && map.opaque[2] == 256 && map.opaque[6] == 512 && map.opaque[15] == 0);
    EXPECT(p_cuTensorMapReplaceAddress(&map, (void *)(uintptr_t)(d + 4096)), CUDA_SUCCESS);
    CHECK(map.opaque[0] == d + 4096 && map.opaque[1] == 128);
    CUtensorMap before = map;
    EXPECT(p_cuTensorMapReplaceAddress(&map, (void *)(uintptr_t)(d + 4)), CUDA_ERROR_INVALID_VALUE); /* unaligned */
    box[0] = 512;
    EXPECT(p_cuTensorMapEncodeTiled(&map, 7, 2, (void *)(uintptr_t)d, dims, strides, box, elem, 0, 3, 2, 0), CUDA_ERROR_INVALID_VALUE);
    CHECK(memcmp(&map, &before, sizeof map) == 0);
    EXPECT(p_cuTensorMapEncodeTiled(&map, 7, 6, (void *)(uintptr_t)d, dims, strides, box, elem, 0, 3, 2, 0), CUDA_ERROR_INVALID_VALUE);
    EXPECT(p_cuMemFree(d), CUDA_SUCCESS);

    EXPECT(p_cuLibraryUnload(library), CUDA_SUCCESS);
    EXPECT(p_cuDevicePrimaryCtxRelease(0), CUDA_SUCCESS);
    if (failures) {
        printf("remote_clusters: %d failures\n", failures);
        return 1;
    }
    printf("remote_clusters ok: %d SMs, %d clusters of 2 resident\n", sms, sms * 3 / 2);
    return 0;
}
