/*
 * test_fake_cuda_threads.c: many threads allocating and freeing through every cheap path
 * at once (plain, pool, VMM), launching on their own streams, and sharing one context:
 * afterwards the device's free memory is exactly what it was.
 */
#include <pthread.h>
#include <string.h>

#include "fake_cuda_test.h"

#define THREADS 16
#define ROUNDS 200

static CUcontext shared_ctx;
static CUfunction kernel;

static void *worker(void *arg)
{
    unsigned int seed = (unsigned int)(uintptr_t)arg;
    CHECK_OK(cuCtxSetCurrent(shared_ctx));
    CUstream s;
    CHECK_OK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
    CUmemAllocationProp prop;
    memset(&prop, 0, sizeof prop);
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    for (int i = 0; i < ROUNDS; i++) {
        seed = seed * 1103515245u + 12345u;
        size_t size = 1 + (seed >> 8) % (4 * MIB);
        CUdeviceptr p, q;
        CUmemGenericAllocationHandle h;
        CHECK_OK(cuMemAlloc_v2(&p, size));
        CHECK_OK(cuMemAllocAsync(&q, size, s));
        CHECK_OK(cuMemCreate(&h, 2 * MIB, &prop, 0));
        CHECK_OK(cuLaunchKernel(kernel, 1, 1, 1, 1, 1, 1, 0, s, NULL, NULL));
        CHECK_OK(cuMemFreeAsync(q, s));
        CHECK_OK(cuMemRelease(h));
        CHECK_OK(cuMemFree_v2(p));
    }
    CHECK_OK(cuStreamSynchronize(s));
    CHECK_OK(cuStreamDestroy_v2(s));
    return NULL;
}

int main(void)
{
    fct_configure("{\"contextBytes\": 1048576, \"defaultKernelMicros\": 10}", NULL);
    CHECK_OK(cuInit(0));
    CHECK_OK(cuCtxCreate_v2(&shared_ctx, 0, 0));
    CUmodule mod;
    CHECK_OK(cuModuleLoadData(&mod, "fake"));
    CHECK_OK(cuModuleGetFunction(&kernel, mod, "busy"));
    unsigned long long start = fct_free();
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1)) == 0);
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_join(t[i], NULL) == 0);
    CHECK_OK(cuCtxSynchronize()); /* releases what the default pool kept */
    CHECK_EQ(fct_free(), start);
    CUmemoryPool pool;
    cuuint64_t used = 1;
    CHECK_OK(cuDeviceGetMemPool(&pool, 0));
    CHECK_OK(cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &used));
    CHECK_EQ(used, 0);
    CHECK_OK(cuModuleUnload(mod));
    CHECK_OK(cuCtxDestroy_v2(shared_ctx));
    return fct_finish("fake_cuda_threads");
}
