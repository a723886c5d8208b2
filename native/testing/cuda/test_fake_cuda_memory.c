/*
 * test_fake_cuda_memory.c: every allocation path moves cuMemGetInfo's free memory by
 * exactly its documented cost and gives it back on free; OOM at the exact edge.
 */
#include <string.h>
#include <unistd.h>

#include "fake_cuda_test.h"

/* 4 GiB device, 64 MiB contexts, 2 MiB rounding so costs are easy to predict. */
static const char *config = "{\"contextBytes\": 67108864, \"allocRounding\": 2097152, \"poolChunkBytes\": 33554432, \"reuseFreed\": true,"
                            " \"devices\": [{\"totalMemory\": 4294967296, \"reservedMemory\": 2097152}]}";

static void test_contexts(unsigned long long start)
{
    CUcontext a, b, cur;
    CHECK_EQ(start, 4 * GIB - 2 * MIB - 64 * MIB); /* the primary context made by main */
    CHECK_OK(cuCtxCreate_v4(&a, NULL, 0, 0));
    CHECK_EQ(fct_free(), start - 64 * MIB);
    CHECK_OK(cuCtxCreate_v2(&b, 0, 0));
    CHECK_EQ(fct_free(), start - 128 * MIB);
    CHECK_OK(cuCtxGetCurrent(&cur));
    CHECK(cur == b);
    CHECK_OK(cuCtxDestroy_v2(b));
    CHECK_OK(cuCtxGetCurrent(&cur));
    CHECK(cur == a);
    CHECK_OK(cuCtxDestroy_v2(a));
    CHECK_RC(cuCtxDestroy_v2(a), CUDA_ERROR_INVALID_CONTEXT);
}

static void test_plain_pitch_managed(unsigned long long start)
{
    CUdeviceptr p, q, m;
    size_t pitch = 0;
    CHECK_OK(cuMemAlloc_v2(&p, 1));
    CHECK_EQ(fct_free(), start - 2 * MIB);
    CHECK_OK(cuMemsetD8_v2(p, 0xab, 1));
    unsigned char byte = 0;
    CHECK_OK(cuMemcpyDtoH_v2(&byte, p, 1));
    CHECK_EQ(byte, 0xab);
    CHECK_RC(cuMemcpyDtoH_v2(&byte, p, 3 * MIB), CUDA_ERROR_INVALID_VALUE);
    CHECK_OK(cuMemFree_v2(p));
    CHECK_EQ(fct_free(), start);
    CHECK_RC(cuMemFree_v2(p), CUDA_ERROR_INVALID_VALUE);
    /* pitch: 1000 bytes wide -> 1024 (512-aligned), x 3000 rows = 3072000 -> 4 MiB */
    CHECK_OK(cuMemAllocPitch_v2(&q, &pitch, 1000, 3000, 4));
    CHECK_EQ(pitch, 1024);
    CHECK_EQ(fct_free(), start - 4 * MIB);
    CHECK_RC(cuMemAllocPitch_v2(&p, &pitch, 1000, 10, 3), CUDA_ERROR_INVALID_VALUE);
    CHECK_OK(cuMemFree_v2(q));
    CHECK_OK(cuMemAllocManaged(&m, 5 * MIB, CU_MEM_ATTACH_GLOBAL));
    CHECK_EQ(fct_free(), start - 6 * MIB);
    CHECK_OK(cuMemFree_v2(m));
    CHECK_EQ(fct_free(), start);
    void *host;
    CHECK_OK(cuMemAllocHost_v2(&host, 100 * MIB));
    CHECK_EQ(fct_free(), start);
    CHECK_OK(cuMemFreeHost(host));
}

static void test_oom_edge(unsigned long long start)
{
    CUdeviceptr big, one;
    CHECK_OK(cuMemAlloc_v2(&big, start - 2 * MIB));
    CHECK_EQ(fct_free(), 2 * MIB);
    CHECK_OK(cuMemAlloc_v2(&one, 2 * MIB));
    CHECK_EQ(fct_free(), 0);
    CHECK_RC(cuMemAlloc_v2(&one + 0, 1), CUDA_ERROR_OUT_OF_MEMORY);
    CHECK_OK(cuMemFree_v2(one));
    CHECK_RC(cuMemAlloc_v2(&one, 2 * MIB + 1), CUDA_ERROR_OUT_OF_MEMORY);
    CUcontext c;
    CHECK_RC(cuCtxCreate_v2(&c, 0, 0), CUDA_ERROR_OUT_OF_MEMORY);
    CHECK_OK(cuMemFree_v2(big));
    CHECK_EQ(fct_free(), start);
}

static void test_pools(unsigned long long start)
{
    CUmemoryPool pool;
    CUdeviceptr a, b;
    cuuint64_t v = 0, keep = ~0ULL;
    CHECK_OK(cuDeviceGetDefaultMemPool(&pool, 0));
    CHECK_OK(cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &keep));
    CHECK_OK(cuMemAllocAsync(&a, 1 * MIB, NULL));
    CHECK_EQ(fct_free(), start - 32 * MIB); /* a whole chunk is reserved */
    CHECK_OK(cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &v));
    CHECK_EQ(v, 32 * MIB);
    CHECK_OK(cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &v));
    CHECK_EQ(v, 2 * MIB);
    CHECK_OK(cuMemAllocAsync(&b, 40 * MIB, NULL));
    CHECK_EQ(fct_free(), start - 64 * MIB);
    CHECK_OK(cuMemFreeAsync(a, NULL));
    CHECK_OK(cuMemFreeAsync(b, NULL));
    CHECK_RC(cuMemFreeAsync(b, NULL), CUDA_ERROR_INVALID_VALUE);
    CHECK_OK(cuStreamSynchronize(NULL));
    CHECK_EQ(fct_free(), start - 64 * MIB); /* kept: threshold is "keep everything" */
    CHECK_OK(cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &v));
    CHECK_EQ(v, 0);
    CHECK_OK(cuMemPoolTrimTo(pool, 0));
    CHECK_EQ(fct_free(), start);
    /* default threshold 0: released at the next synchronization */
    keep = 0;
    CHECK_OK(cuMemPoolSetAttribute(pool, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &keep));
    CHECK_OK(cuMemAllocAsync(&a, 1 * MIB, NULL));
    CHECK_OK(cuMemFreeAsync(a, NULL));
    CHECK_OK(cuStreamSynchronize(NULL));
    CHECK_EQ(fct_free(), start);
    /* an explicit pool, destroyed with an allocation outstanding */
    CUmemPoolProps props;
    memset(&props, 0, sizeof props);
    props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    CUmemoryPool mine;
    CHECK_OK(cuMemPoolCreate(&mine, &props));
    CHECK_OK(cuMemAllocFromPoolAsync(&a, 3 * MIB, mine, NULL));
    CHECK_EQ(fct_free(), start - 32 * MIB);
    CHECK_OK(cuMemPoolDestroy(mine));
    CHECK_EQ(fct_free(), start - 32 * MIB);
    CHECK_OK(cuMemFree_v2(a));
    CHECK_EQ(fct_free(), start);
}

static void test_vmm(unsigned long long start)
{
    CUmemAllocationProp prop;
    memset(&prop, 0, sizeof prop);
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    size_t gran = 0;
    CHECK_OK(cuMemGetAllocationGranularity(&gran, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
    CHECK_EQ(gran, 2 * MIB);
    CUdeviceptr va;
    CHECK_OK(cuMemAddressReserve(&va, 1 * GIB, 0, 0, 0));
    CHECK_EQ(fct_free(), start); /* address space is free */
    CUmemGenericAllocationHandle h;
    CHECK_RC(cuMemCreate(&h, 3 * MIB, &prop, 0), CUDA_ERROR_INVALID_VALUE);
    CHECK_OK(cuMemCreate(&h, 8 * MIB, &prop, 0));
    CHECK_EQ(fct_free(), start - 8 * MIB);
    CHECK_OK(cuMemMap(va, 8 * MIB, 0, h, 0));
    CUmemAccessDesc access = {{CU_MEM_LOCATION_TYPE_DEVICE, 0}, CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
    CHECK_OK(cuMemSetAccess(va, 8 * MIB, &access, 1));
    CHECK_OK(cuMemsetD8_v2(va + 8 * MIB - 1, 7, 1));
    CHECK_OK(cuMemRelease(h)); /* still mapped: memory stays */
    CHECK_EQ(fct_free(), start - 8 * MIB);
    CHECK_RC(cuMemAddressFree(va, 1 * GIB), CUDA_ERROR_INVALID_VALUE);
    CHECK_OK(cuMemUnmap(va, 8 * MIB));
    CHECK_EQ(fct_free(), start);
    CHECK_OK(cuMemAddressFree(va, 1 * GIB));
}

static void test_arrays(unsigned long long start)
{
    CUarray arr;
    CUDA_ARRAY_DESCRIPTOR d = {1024, 1024, CU_AD_FORMAT_FLOAT, 4}; /* 16 MiB */
    CHECK_OK(cuArrayCreate_v2(&arr, &d));
    CHECK_EQ(fct_free(), start - 16 * MIB);
    CHECK_OK(cuArrayDestroy(arr));
    CUDA_ARRAY3D_DESCRIPTOR d3 = {512, 512, 8, CU_AD_FORMAT_UNSIGNED_INT16, 1, 0}; /* 4 MiB */
    CHECK_OK(cuArray3DCreate_v2(&arr, &d3));
    CHECK_EQ(fct_free(), start - 4 * MIB);
    CHECK_OK(cuArrayDestroy(arr));
    CUmipmappedArray mm;
    /* 1024^2 x 4 B = 4 MiB, + 1 MiB + 256 KiB + ... < 5.34 MiB -> 6 MiB */
    CUDA_ARRAY3D_DESCRIPTOR dm = {1024, 1024, 0, CU_AD_FORMAT_UNSIGNED_INT8, 4, 0};
    CHECK_OK(cuMipmappedArrayCreate(&mm, &dm, 11));
    CHECK_EQ(fct_free(), start - 6 * MIB);
    CHECK_OK(cuMipmappedArrayDestroy(mm));
    CHECK_EQ(fct_free(), start);
    CUDA_ARRAY_DESCRIPTOR bad = {16, 16, CU_AD_FORMAT_FLOAT, 3};
    CHECK_RC(cuArrayCreate_v2(&arr, &bad), CUDA_ERROR_INVALID_VALUE);
}

static void test_graph_memory(unsigned long long start)
{
    CUgraph g;
    CUgraphNode alloc_node, free_node;
    CUgraphExec e;
    CUDA_MEM_ALLOC_NODE_PARAMS p;
    memset(&p, 0, sizeof p);
    p.poolProps.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    p.poolProps.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    p.bytesize = 5 * MIB;
    CHECK_OK(cuGraphCreate(&g, 0));
    CHECK_OK(cuGraphAddMemAllocNode(&alloc_node, g, NULL, 0, &p));
    CHECK(p.dptr != 0);
    CHECK_OK(cuGraphAddMemFreeNode(&free_node, g, &alloc_node, 1, p.dptr));
    CHECK_OK(cuGraphInstantiateWithFlags(&e, g, 0));
    CHECK_EQ(fct_free(), start);
    CHECK_OK(cuGraphLaunch(e, NULL));
    CHECK_EQ(fct_free(), start - 6 * MIB); /* reserved in 2 MiB steps, kept after the free node */
    cuuint64_t v = 1;
    CHECK_OK(cuDeviceGetGraphMemAttribute(0, CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT, &v));
    CHECK_EQ(v, 0);
    CHECK_OK(cuDeviceGetGraphMemAttribute(0, CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT, &v));
    CHECK_EQ(v, 6 * MIB);
    CHECK_OK(cuDeviceGraphMemTrim(0));
    CHECK_EQ(fct_free(), start);
    CHECK_OK(cuGraphExecDestroy(e));
    CHECK_OK(cuGraphDestroy(g));
}

static void test_checkpoint(unsigned long long start)
{
    int pid = (int)getpid();
    CUprocessState s;
    CUdeviceptr p;
    CHECK_OK(cuMemAlloc_v2(&p, 10 * MIB));
    CHECK_RC(cuCheckpointProcessCheckpoint(pid, NULL), CUDA_ERROR_ILLEGAL_STATE);
    CHECK_OK(cuCheckpointProcessLock(pid, NULL));
    CHECK_OK(cuCheckpointProcessGetState(pid, &s));
    CHECK_EQ(s, CU_PROCESS_STATE_LOCKED);
    CHECK_OK(cuCheckpointProcessCheckpoint(pid, NULL));
    CHECK_EQ(fct_free(), 4 * GIB - 2 * MIB);
    CHECK_RC(cuCheckpointProcessUnlock(pid, NULL), CUDA_ERROR_ILLEGAL_STATE);
    CHECK_OK(cuCheckpointProcessRestore(pid, NULL));
    CHECK_EQ(fct_free(), start - 10 * MIB);
    CHECK_OK(cuCheckpointProcessUnlock(pid, NULL));
    CHECK_OK(cuCheckpointProcessGetState(pid, &s));
    CHECK_EQ(s, CU_PROCESS_STATE_RUNNING);
    CHECK_OK(cuMemFree_v2(p));
}

/* Advice and prefetch move a whole managed allocation between host and device; memsets
 * on a stream; "reuseFreed" hands a freed range out again with its bytes. */
static void test_placement_and_reuse(unsigned long long start)
{
    CUdeviceptr m, p, q;
    CHECK_OK(cuMemAllocManaged(&m, 5 * MIB, CU_MEM_ATTACH_GLOBAL));
    CHECK_EQ(fct_free(), start - 6 * MIB);
    CUmemLocation host = {.type = CU_MEM_LOCATION_TYPE_HOST, .id = 0}, dev0 = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = 0};
    CHECK_OK(cuMemAdvise_v2(m, 5 * MIB, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, host));
    CHECK_EQ(fct_free(), start);
    CHECK_OK(cuMemAdvise_v2(m, 5 * MIB, CU_MEM_ADVISE_SET_ACCESSED_BY, dev0));
    CHECK_OK(cuMemPrefetchAsync_v2(m, 5 * MIB, dev0, 0, NULL));
    CHECK_EQ(fct_free(), start - 6 * MIB);
    CHECK_OK(cuMemPrefetchAsync(m, 5 * MIB, CU_DEVICE_CPU, NULL));
    CHECK_EQ(fct_free(), start);
    CHECK_OK(cuMemAdvise(m, 5 * MIB, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, 0));
    CHECK_RC(cuMemAdvise_v2(m, 6 * MIB, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, host), CUDA_ERROR_INVALID_VALUE);
    CHECK_RC(cuMemAdvise_v2(m, MIB, (CUmem_advise)9, host), CUDA_ERROR_INVALID_VALUE);
    CHECK_RC(cuMemAdvise_v2(m, MIB, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, (CUmemLocation){CU_MEM_LOCATION_TYPE_DEVICE, 7}),
             CUDA_ERROR_INVALID_DEVICE);
    CHECK_OK(cuMemAlloc_v2(&p, MIB));
    CHECK_RC(cuMemAdvise_v2(p, MIB, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, host), CUDA_ERROR_INVALID_VALUE);
    CHECK_OK(cuMemsetD8Async(p, 0x5a, MIB, NULL));
    unsigned char b = 0;
    CHECK_OK(cuMemcpyDtoH_v2(&b, p + MIB - 1, 1));
    CHECK_EQ(b, 0x5a);
    CHECK_OK(cuMemFree_v2(p));
    CHECK_OK(cuMemAlloc_v2(&q, MIB));
    CHECK(q == p);
    CHECK_OK(cuMemcpyDtoH_v2(&b, q + 17, 1));
    CHECK_EQ(b, 0x5a); /* reuseFreed: the bytes are still there */
    CHECK_RC(cuMemsetD8Async_ptsz(q, 0, 2 * MIB + 1, NULL), CUDA_ERROR_INVALID_VALUE);
    CHECK_OK(cuMemFree_v2(q));
    CHECK_OK(cuMemFree_v2(m));
    CHECK_EQ(fct_free(), start);
}

int main(void)
{
    fct_configure(config, NULL);
    CHECK_OK(cuInit(0));
    CUcontext primary;
    CHECK_OK(cuDevicePrimaryCtxRetain(&primary, 0));
    CHECK_OK(cuCtxSetCurrent(primary));
    unsigned long long start = fct_free();
    test_contexts(start);
    CHECK_OK(cuCtxSetCurrent(primary));
    test_plain_pitch_managed(start);
    test_placement_and_reuse(start);
    test_oom_edge(start);
    test_pools(start);
    test_vmm(start);
    test_arrays(start);
    test_graph_memory(start);
    test_checkpoint(start);
    CHECK_EQ(fct_free(), start);
    CHECK_OK(cuDevicePrimaryCtxRelease_v2(0));
    CHECK_RC(cuMemGetInfo_v2(&(size_t){0}, &(size_t){0}), CUDA_ERROR_INVALID_CONTEXT);
    return fct_finish("fake_cuda_memory");
}
