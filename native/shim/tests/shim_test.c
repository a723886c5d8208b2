/*
 * shim_test.c: libgpushare against the fake libcuda, one scenario per run:
 *
 *     shim_test SCENARIO [MODE]
 *
 * MODE is how the program reaches the driver: "direct" (linked against libcuda, the
 * default), "dlsym" (dlopen + dlsym, as PyTorch does), "procaddr" (cuGetProcAddress_v2
 * from libc's own dlsym on the libcuda handle, then every function, cuGetProcAddress
 * itself included, through it) or "procaddr_pt" (the same with the per-thread default
 * stream flag). run_shim_tests.sh sets the environment (limits, fake configs) each
 * scenario expects. Prints one line per failed check and a summary; exits 1 on failure.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <dirent.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gs_cuda.h"
#include "test_check.h"
#include "gs_nvml.h"
#include "gpushare_region.h"
#include "fake_cuda_busy.h"

#define MIB (1024ull * 1024ull)

#ifdef SHIM_TEST_NO_NEXT
static int gsnext_call_next(void) { return 2; } /* the release build skips the RTLD_NEXT check */
#else
int gsnext_call_next(void);
#endif


/* ---- the driver, reached one of three ways ------------------------------------------- */
#define API_LIST(X) \
    X(cuInit) X(cuDeviceGet) X(cuDeviceGetCount) X(cuDeviceGetName) X(cuDeviceGetUuid_v2) X(cuDeviceTotalMem_v2) \
    X(cuDeviceTotalMem) X(cuCtxCreate_v2) X(cuCtxDestroy_v2) X(cuCtxSetCurrent) X(cuDevicePrimaryCtxRetain) \
    X(cuDevicePrimaryCtxRelease_v2) X(cuMemAlloc_v2) X(cuMemAlloc) X(cuMemFree_v2) X(cuMemFree) X(cuMemGetInfo_v2) \
    X(cuMemGetInfo) X(cuMemAllocPitch_v2) X(cuMemAllocManaged) X(cuMemCreate) X(cuMemRelease) X(cuArrayCreate_v2) \
    X(cuArray3DCreate_v2) X(cuArrayDestroy) X(cuMipmappedArrayCreate) X(cuMipmappedArrayDestroy) \
    X(cuMemAllocAsync) X(cuMemFreeAsync) X(cuStreamSynchronize) X(cuStreamCreate) X(cuStreamDestroy_v2) X(cuMemcpyHtoD_v2) X(cuMemcpyDtoH_v2) \
    X(cuDeviceGetMemPool) X(cuMemPoolGetAttribute) X(cuGetProcAddress_v2) X(cuMemAddressReserve) X(cuMemAddressFree) \
    X(cuMemMap) X(cuMemUnmap) X(cuMemSetAccess) X(cuMemsetD8_v2) X(cuGraphCreate) X(cuGraphDestroy) \
    X(cuGraphAddMemAllocNode) X(cuGraphAddMemFreeNode) X(cuGraphInstantiateWithFlags) X(cuGraphExecDestroy) X(cuGraphLaunch) \
    X(cuDeviceGraphMemTrim) X(cuArrayCreate) X(cuArray3DCreate) X(cuGraphAddKernelNode_v2) X(cuModuleLoadData) \
    X(cuModuleGetFunction) X(cuLaunchKernel) X(cuGraphInstantiateWithParams)

static struct api {
#define API_FIELD(name) __typeof__(&name) name;
    API_LIST(API_FIELD)
} A;

static void load_api(void)
{
    if (strcmp(mode, "direct") == 0) {
#define API_DIRECT(name) A.name = &name;
        API_LIST(API_DIRECT)
        return;
    }
    void *h = dlopen("libcuda.so.1", RTLD_NOW);
    check(h != NULL, "dlopen libcuda.so.1: %s", dlerror());
    if (strcmp(mode, "dlsym") == 0) {
#define API_DLSYM(name) A.name = (__typeof__(&name))dlsym(h, #name);
        API_LIST(API_DLSYM)
        return;
    }
    /* procaddr: the driver's own cuGetProcAddress_v2 (not through any dlsym hook), then
     * cuGetProcAddress itself through it, then everything else. */
    cuuint64_t flags = strcmp(mode, "procaddr_pt") == 0 ? CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM : 0;
    /* As the CUDA runtime does: cuGetProcAddress_v2 by dlsym on the driver's handle. */
    __typeof__(&cuGetProcAddress_v2) gpa = (__typeof__(&cuGetProcAddress_v2))dlsym(h, "cuGetProcAddress_v2");
    check(gpa != NULL, "driver cuGetProcAddress_v2");
    check(libc_dlsym(h, "cuGetProcAddress_v2") != (void *)gpa, "dlsym hands out our cuGetProcAddress_v2");
    void *p = NULL;
    CUdriverProcAddressQueryResult st;
    check(gpa("cuGetProcAddress", &p, 13000, flags, &st) == CUDA_SUCCESS && p, "cuGetProcAddress(cuGetProcAddress)");
    Dl_info info;
    check(dladdr(p, &info) && info.dli_fname && strstr(info.dli_fname, "libgpushare"),
          "cuGetProcAddress(\"cuGetProcAddress\") is libgpushare's (got %s)", p && dladdr(p, &info) ? info.dli_fname : "?");
    gpa = (__typeof__(&cuGetProcAddress_v2))p;
    char buf[64];
#define API_PROC(name) \
    A.name = NULL; \
    (void)gpa(proc_name(#name, buf, sizeof buf), (void **)&A.name, 13000, flags, &st);
    API_LIST(API_PROC)
    /* cuCtxCreate at 13000 is cuCtxCreate_v4 (another signature): ask for the _v2 era. */
    (void)gpa("cuCtxCreate", (void **)&A.cuCtxCreate_v2, 11000, flags, &st);
    /* The old ABI by an old version. */
    (void)gpa("cuMemAlloc", (void **)&A.cuMemAlloc, 3000, flags, &st);
    (void)gpa("cuMemFree", (void **)&A.cuMemFree, 3000, flags, &st);
    (void)gpa("cuMemGetInfo", (void **)&A.cuMemGetInfo, 3000, flags, &st);
    (void)gpa("cuDeviceTotalMem", (void **)&A.cuDeviceTotalMem, 3000, flags, &st);
    (void)gpa("cuArrayCreate", (void **)&A.cuArrayCreate, 3000, flags, &st);
    (void)gpa("cuArray3DCreate", (void **)&A.cuArray3DCreate, 3000, flags, &st);
#define API_NONNULL(name) check(A.name != NULL, "cuGetProcAddress(%s)", #name);
    API_LIST(API_NONNULL)
}

/* ---- NVML, reached directly (linked: SHIM_TEST_NVML_LINKED) or by dlopen + dlsym ---- */
#define NVML_LIST(X) X(nvmlInit_v2) X(nvmlDeviceGetHandleByIndex_v2) X(nvmlDeviceGetMemoryInfo) X(nvmlDeviceGetMemoryInfo_v2)

static struct nvml_api {
#define NVML_FIELD(name) __typeof__(&name) name;
    NVML_LIST(NVML_FIELD)
} NV;

static void load_nvml(void)
{
    if (strcmp(mode, "direct") == 0) {
#ifdef SHIM_TEST_NVML_LINKED
#define NVML_DIRECT(name) NV.name = &name;
        NVML_LIST(NVML_DIRECT)
#else
        check(0, "this build is not linked against libnvidia-ml: use mode dlsym");
#endif
        return;
    }
    void *h = dlopen("libnvidia-ml.so.1", RTLD_NOW);
    check(h != NULL, "dlopen libnvidia-ml.so.1: %s", dlerror());
#define NVML_DLSYM(name) NV.name = h ? (__typeof__(&name))dlsym(h, #name) : NULL;
    NVML_LIST(NVML_DLSYM)
#define NVML_NONNULL(name) check(NV.name != NULL, "dlsym(%s)", #name);
    NVML_LIST(NVML_NONNULL)
    Dl_info info;
    check(NV.nvmlDeviceGetMemoryInfo && dladdr((void *)NV.nvmlDeviceGetMemoryInfo, &info) && strstr(info.dli_fname, "libgpushare"),
          "dlsym(nvml handle, nvmlDeviceGetMemoryInfo) is ours");
}

/* ---- helpers --------------------------------------------------------------------------- */
static CUcontext setup(int ordinal)
{
    CUdevice dev;
    CUcontext ctx = NULL;
    check(A.cuInit(0) == CUDA_SUCCESS, "cuInit");
    check(A.cuDeviceGet(&dev, ordinal) == CUDA_SUCCESS, "cuDeviceGet");
    CUresult r = A.cuCtxCreate_v2(&ctx, 0, dev);
    check(r == CUDA_SUCCESS, "cuCtxCreate_v2: %d", r);
    return ctx;
}

static size_t free_now(void)
{
    size_t f = 0, t = 0;
    CUresult r = A.cuMemGetInfo_v2(&f, &t);
    check(r == CUDA_SUCCESS, "cuMemGetInfo_v2: %d", r);
    return f;
}

static size_t total_now(void)
{
    size_t f = 0, t = 0;
    (void)A.cuMemGetInfo_v2(&f, &t);
    return t;
}

static uint64_t env_u64(const char *name, uint64_t dflt)
{
    const char *v = getenv(name);
    return v ? strtoull(v, NULL, 0) : dflt;
}

/* Bytes of `kind` on dev summed over the live slots of the region file GPUSHARE_REGION,
 * read straight from the layout (the test's own view, independent of libgpushare). */
static uint64_t region_kind_bytes(unsigned dev, unsigned kind)
{
    const char *path = getenv("GPUSHARE_REGION");
    int fd = path ? open(path, O_RDONLY) : -1;
    check(fd >= 0, "open region %s", path ? path : "(GPUSHARE_REGION unset)");
    if (fd < 0)
        return UINT64_MAX;
    const gs_region_file *f = mmap(NULL, sizeof *f, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (f == MAP_FAILED)
        return UINT64_MAX;
    uint64_t sum = 0;
    uint32_t hwm = atomic_load(&f->header.slots_hwm);
    for (uint32_t i = 0; i < hwm && i < GS_REGION_MAX_SLOTS; i++)
        if (atomic_load(&f->slots[i].owner) != 0)
            sum += atomic_load(&f->slots[i].dev[dev].bytes[kind]);
    munmap((void *)f, sizeof *f);
    return sum;
}

/* Device bytes the driver itself has handed out (its own cuMemGetInfo_v2, not our hook). */
static uint64_t driver_used(void)
{
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    __typeof__(&cuMemGetInfo_v2) info = h ? (__typeof__(&cuMemGetInfo_v2))libc_dlsym(h, "cuMemGetInfo_v2") : NULL;
    size_t f = 0, t = 0;
    check(info != NULL && info(&f, &t) == CUDA_SUCCESS, "driver's cuMemGetInfo_v2");
    return t - f;
}

/* ---- scenarios ---------------------------------------------------------------------- */

/* The contract: 64 MiB, a 4 MiB context, 1 MiB allocations: the 61st fails. */
static void t_contract(void)
{
    (void)setup(0);
    CUdeviceptr p[100];
    int n = 0;
    CUresult r = CUDA_SUCCESS;
    while (n < 100 && (r = A.cuMemAlloc_v2(&p[n], MIB)) == CUDA_SUCCESS)
        n++;
    check(r == CUDA_ERROR_OUT_OF_MEMORY, "result past the limit is %d, want 2", r);
    check(n == 60, "allocated %d x 1 MiB next to a 4 MiB context under 64 MiB, want 60", n);
    check(free_now() == 0, "free at the limit: %zu", free_now());
    check(total_now() == 64 * MIB, "total %zu", total_now());
    for (int i = 0; i < n; i++)
        check(A.cuMemFree_v2(p[i]) == CUDA_SUCCESS, "free");
    check(free_now() == 60 * MIB, "free after freeing all: %zu, want 60 MiB", free_now());
    size_t t = 0;
    check(A.cuDeviceTotalMem_v2(&t, 0) == CUDA_SUCCESS && t == 64 * MIB, "cuDeviceTotalMem_v2 %zu", t);
}

/* limit - 1, limit, limit + 1 bytes in total; frees give back exactly; the old ABI too. */
static void t_edge(void)
{
    (void)setup(0);
    uint64_t limit = 64 * MIB, ctx = limit - free_now();
    check(ctx == env_u64("SHIM_TEST_CONTEXT", 4 * MIB), "context measured %llu", (unsigned long long)ctx);
    CUdeviceptr big, one, two;
    check(A.cuMemAlloc_v2(&big, limit - ctx - 1) == CUDA_SUCCESS, "limit - 1 in total");
    check(free_now() == 1, "free at limit - 1: %zu", free_now());
    check(A.cuMemAlloc_v2(&one, 1) == CUDA_SUCCESS, "exactly the limit");
    check(free_now() == 0, "free at the limit: %zu", free_now());
    check(A.cuMemAlloc_v2(&two, 1) == CUDA_ERROR_OUT_OF_MEMORY, "limit + 1 refused");
    check(A.cuMemFree_v2(one) == CUDA_SUCCESS, "free one byte");
    check(free_now() == 1, "one byte back: %zu", free_now());
    check(A.cuMemAlloc_v2(&two, 2) == CUDA_ERROR_OUT_OF_MEMORY, "two bytes into one refused");
    check(A.cuMemAlloc_v2(&two, 1) == CUDA_SUCCESS, "one byte into one");
    check(A.cuMemFree_v2(two) == CUDA_SUCCESS && A.cuMemFree_v2(big) == CUDA_SUCCESS, "frees");
    check(free_now() == limit - ctx, "all back: %zu", free_now());
    /* old 32-bit ABI */
    CUdeviceptr_v1 p1;
    unsigned int f32 = 0, t32 = 0;
    check(A.cuMemAlloc(&p1, 8 * MIB) == CUDA_SUCCESS, "cuMemAlloc (v1)");
    check(A.cuMemGetInfo(&f32, &t32) == CUDA_SUCCESS && f32 == limit - ctx - 8 * MIB && t32 == limit,
          "cuMemGetInfo (v1): %u/%u", f32, t32);
    CUdeviceptr_v1 p2;
    check(A.cuMemAlloc(&p2, (unsigned)(limit - ctx - 8 * MIB + 1)) == CUDA_ERROR_OUT_OF_MEMORY, "cuMemAlloc (v1) past the limit");
    check(A.cuMemFree(p1) == CUDA_SUCCESS, "cuMemFree (v1)");
    unsigned int tm = 0;
    check(A.cuDeviceTotalMem(&tm, 0) == CUDA_SUCCESS && tm == limit, "cuDeviceTotalMem (v1) %u", tm);
    /* freeing something we never saw passes through to the driver's answer */
    check(A.cuMemFree_v2((CUdeviceptr)0x1234) != CUDA_SUCCESS, "unknown pointer passes through");
    check(free_now() == limit - ctx, "unchanged: %zu", free_now());
}

static uint64_t fmt_bytes_2d(size_t w, size_t h, unsigned ch) { return (uint64_t)w * (h ? h : 1) * 4 * ch; }

/* Every allocation path takes and gives back what it should, and is refused past the limit. */
static void t_paths(void)
{
    (void)setup(0);
    uint64_t base = free_now();
    size_t f;
    /* pitch: the real pitch x height */
    CUdeviceptr p;
    size_t pitch = 0;
    check(A.cuMemAllocPitch_v2(&p, &pitch, 1000, 100, 4) == CUDA_SUCCESS, "pitch");
    f = free_now();
    check(pitch >= 1000 && base - f == pitch * 100, "pitch took %llu, want %zu", (unsigned long long)(base - f), pitch * 100);
    check(A.cuMemFree_v2(p) == CUDA_SUCCESS && free_now() == base, "pitch freed");
    check(A.cuMemAllocPitch_v2(&p, &pitch, 1 * MIB, 61, 4) == CUDA_ERROR_OUT_OF_MEMORY, "pitch past the limit");
    check(A.cuMemAllocPitch_v2(&p, &pitch, 1 * MIB, 60, 4) == CUDA_SUCCESS, "pitch to the limit");
    check(free_now() == 0, "pitch to the limit: free %zu", free_now());
    check(A.cuMemFree_v2(p) == CUDA_SUCCESS && free_now() == base, "pitch freed");
    /* managed */
    check(A.cuMemAllocManaged(&p, 10 * MIB, 1) == CUDA_SUCCESS && base - free_now() == 10 * MIB, "managed");
    CUdeviceptr q;
    check(A.cuMemAllocManaged(&q, 51 * MIB, 1) == CUDA_ERROR_OUT_OF_MEMORY, "managed past the limit");
    check(A.cuMemFree_v2(p) == CUDA_SUCCESS && free_now() == base, "managed freed");
    /* VMM: physical memory counts, address reservations do not */
    CUmemAllocationProp prop;
    memset(&prop, 0, sizeof prop);
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    prop.location.id = 0;
    CUmemGenericAllocationHandle h1, h2;
    check(A.cuMemCreate(&h1, 20 * MIB, &prop, 0) == CUDA_SUCCESS && base - free_now() == 20 * MIB, "cuMemCreate");
    check(A.cuMemCreate(&h2, 42 * MIB, &prop, 0) == CUDA_ERROR_OUT_OF_MEMORY, "cuMemCreate past the limit");
    check(A.cuMemCreate(&h2, 40 * MIB, &prop, 0) == CUDA_SUCCESS && free_now() == 0, "cuMemCreate to the limit");
    check(A.cuMemRelease(h1) == CUDA_SUCCESS && A.cuMemRelease(h2) == CUDA_SUCCESS && free_now() == base, "cuMemRelease");
    /* arrays */
    CUarray arr, arr3;
    CUDA_ARRAY_DESCRIPTOR d2 = {.Width = 1024, .Height = 512, .Format = CU_AD_FORMAT_FLOAT, .NumChannels = 4};
    check(A.cuArrayCreate_v2(&arr, &d2) == CUDA_SUCCESS, "cuArrayCreate_v2");
    check(base - free_now() == fmt_bytes_2d(1024, 512, 4), "array took %llu", (unsigned long long)(base - free_now()));
    CUDA_ARRAY3D_DESCRIPTOR d3 = {.Width = 256, .Height = 256, .Depth = 64, .Format = CU_AD_FORMAT_FLOAT, .NumChannels = 1};
    check(A.cuArray3DCreate_v2(&arr3, &d3) == CUDA_SUCCESS, "cuArray3DCreate_v2");
    check(base - free_now() == fmt_bytes_2d(1024, 512, 4) + 256ull * 256 * 64 * 4, "3D array");
    CUDA_ARRAY3D_DESCRIPTOR huge = {.Width = 4096, .Height = 4096, .Depth = 1, .Format = CU_AD_FORMAT_FLOAT, .NumChannels = 1};
    CUarray nope;
    check(A.cuArray3DCreate_v2(&nope, &huge) == CUDA_ERROR_OUT_OF_MEMORY, "array past the limit");
    check(A.cuArrayDestroy(arr) == CUDA_SUCCESS && A.cuArrayDestroy(arr3) == CUDA_SUCCESS && free_now() == base, "arrays destroyed");
    /* the pre-3.2 ABI: 32-bit descriptors */
    CUDA_ARRAY_DESCRIPTOR_v1 o2 = {.Width = 1024, .Height = 512, .Format = CU_AD_FORMAT_FLOAT, .NumChannels = 4};
    CUDA_ARRAY3D_DESCRIPTOR_v1 o3 = {.Width = 256, .Height = 256, .Depth = 64, .Format = CU_AD_FORMAT_FLOAT, .NumChannels = 1};
    CUDA_ARRAY3D_DESCRIPTOR_v1 o3big = {.Width = 4096, .Height = 4096, .Depth = 1, .Format = CU_AD_FORMAT_FLOAT, .NumChannels = 1};
    check(A.cuArrayCreate(&arr, &o2) == CUDA_SUCCESS && base - free_now() == fmt_bytes_2d(1024, 512, 4), "cuArrayCreate (v1)");
    check(A.cuArray3DCreate(&arr3, &o3) == CUDA_SUCCESS && base - free_now() == fmt_bytes_2d(1024, 512, 4) + 256ull * 256 * 64 * 4,
          "cuArray3DCreate (v1)");
    check(A.cuArray3DCreate(&nope, &o3big) == CUDA_ERROR_OUT_OF_MEMORY, "v1 array past the limit");
    check(A.cuArrayDestroy(arr) == CUDA_SUCCESS && A.cuArrayDestroy(arr3) == CUDA_SUCCESS && free_now() == base, "v1 arrays destroyed");
    CUmipmappedArray mip;
    CUDA_ARRAY3D_DESCRIPTOR dm = {.Width = 512, .Height = 512, .Depth = 0, .Format = CU_AD_FORMAT_UNSIGNED_INT8, .NumChannels = 4};
    uint64_t want = 0;
    for (uint64_t l = 0, w = 512; l < 4; l++, w /= 2)
        want += w * w * 4;
    check(A.cuMipmappedArrayCreate(&mip, &dm, 4) == CUDA_SUCCESS && base - free_now() == want, "mipmapped array");
    check(A.cuMipmappedArrayDestroy(mip) == CUDA_SUCCESS && free_now() == base, "mipmapped array destroyed");
    /* stream-ordered: the pool's reserved memory counts */
    CUmemoryPool pool;
    check(A.cuDeviceGetMemPool(&pool, 0) == CUDA_SUCCESS, "cuDeviceGetMemPool");
    check(A.cuMemAllocAsync(&p, 1 * MIB, NULL) == CUDA_SUCCESS, "cuMemAllocAsync");
    cuuint64_t reserved = 0;
    (void)A.cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &reserved);
    check(reserved > 0 && base - free_now() == reserved, "pool growth counted: %llu vs %llu",
          (unsigned long long)(base - free_now()), (unsigned long long)reserved);
    CUdeviceptr big;
    check(A.cuMemAlloc_v2(&big, base - reserved) == CUDA_SUCCESS && free_now() == 0, "plain to the limit beside the pool");
    check(A.cuMemAllocAsync(&q, reserved, NULL) == CUDA_ERROR_OUT_OF_MEMORY, "pool growth past the limit");
    cuuint64_t after = 0;
    (void)A.cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_RESERVED_MEM_CURRENT, &after);
    check(after <= reserved && free_now() == reserved - after, "after the refusal the pool (%llu) is counted as it is: free %zu",
          (unsigned long long)after, free_now());
    check(A.cuMemFree_v2(big) == CUDA_SUCCESS, "free big");
    check(A.cuMemFreeAsync(p, NULL) == CUDA_SUCCESS && A.cuStreamSynchronize(NULL) == CUDA_SUCCESS, "cuMemFreeAsync");
    check(free_now() == base, "pool shrink noticed: free %zu, want %llu", free_now(), (unsigned long long)base);
    /* a cuMemAlloc pointer freed on a stream gives its bytes back */
    check(A.cuMemAlloc_v2(&big, 3 * MIB) == CUDA_SUCCESS && free_now() == base - 3 * MIB, "plain alloc");
    check(A.cuMemFreeAsync(big, NULL) == CUDA_SUCCESS && A.cuStreamSynchronize(NULL) == CUDA_SUCCESS, "cuMemFreeAsync of it");
    check(free_now() == base, "cuMemFreeAsync of a cuMemAlloc pointer gives its bytes back: free %zu", free_now());
}

/* Threads allocating and freeing at once: exact totals afterwards. */
static CUcontext g_ctx;
static uint64_t g_live[16];

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    A.cuCtxSetCurrent(g_ctx);
    unsigned seed = (unsigned)id * 7919u + 1;
    CUdeviceptr live[8] = {0};
    size_t sizes[8] = {0};
    for (int i = 0; i < 3000; i++) {
        int k = rand_r(&seed) % 8;
        if (live[k]) {
            check(A.cuMemFree_v2(live[k]) == CUDA_SUCCESS, "thread free");
            live[k] = 0;
        } else {
            size_t s = 1 + (size_t)(rand_r(&seed) % (512 * 1024));
            CUresult r = A.cuMemAlloc_v2(&live[k], s);
            check(r == CUDA_SUCCESS || r == CUDA_ERROR_OUT_OF_MEMORY, "thread alloc %d", r);
            sizes[k] = r == CUDA_SUCCESS ? s : 0;
            if (r != CUDA_SUCCESS)
                live[k] = 0;
        }
    }
    uint64_t sum = 0;
    for (int k = 0; k < 8; k++)
        if (live[k])
            sum += sizes[k];
    g_live[id] = sum;
    /* keep half, free the rest after the main thread looked */
    return NULL;
}

static void t_threads(void)
{
    g_ctx = setup(0);
    uint64_t base = free_now();
    pthread_t th[16];
    for (int i = 0; i < 16; i++)
        pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i);
    for (int i = 0; i < 16; i++)
        pthread_join(th[i], NULL);
    uint64_t live = 0;
    for (int i = 0; i < 16; i++)
        live += g_live[i];
    check(base - free_now() == live, "after 16 threads: counted %llu, live %llu", (unsigned long long)(base - free_now()),
          (unsigned long long)live);
}

/* CUDA_VISIBLE_DEVICES=1,0 with limits by ordinal (0=32Mi) and by UUID (physical 0 = 16Mi). */
static void t_visible(void)
{
    check(A.cuInit(0) == CUDA_SUCCESS, "cuInit");
    int n = 0;
    check(A.cuDeviceGetCount(&n) == CUDA_SUCCESS && n == 2, "two devices visible: %d", n);
    size_t t0 = 0, t1 = 0;
    check(A.cuDeviceTotalMem_v2(&t0, 0) == CUDA_SUCCESS && t0 == 32 * MIB, "ordinal 0 total %zu, want 32 MiB", t0);
    check(A.cuDeviceTotalMem_v2(&t1, 1) == CUDA_SUCCESS && t1 == 16 * MIB, "ordinal 1 total %zu, want 16 MiB", t1);
    for (int ord = 0; ord < 2; ord++) {
        CUcontext ctx;
        CUdevice dev;
        A.cuDeviceGet(&dev, ord);
        check(A.cuCtxCreate_v2(&ctx, 0, dev) == CUDA_SUCCESS, "ctx on %d", ord);
        uint64_t limit = ord == 0 ? 32 * MIB : 16 * MIB, f = free_now();
        check(f == limit - 4 * MIB, "ordinal %d free %llu", ord, (unsigned long long)f);
        CUdeviceptr p, q;
        check(A.cuMemAlloc_v2(&p, f) == CUDA_SUCCESS, "fill ordinal %d", ord);
        check(A.cuMemAlloc_v2(&q, 1) == CUDA_ERROR_OUT_OF_MEMORY, "ordinal %d full", ord);
        check(A.cuMemFree_v2(p) == CUDA_SUCCESS, "free");
    }
}

/* Two processes, one region file, one 64 MiB limit. */
static void t_shared(void)
{
    int up[2], down[2];
    char c;
    check(pipe(up) == 0 && pipe(down) == 0, "pipes");
    pid_t pid = fork();
    if (pid == 0) {
        (void)setup(0);
        CUdeviceptr p;
        int ok = A.cuMemAlloc_v2(&p, 30 * MIB) == CUDA_SUCCESS;
        c = ok ? 'y' : 'n';
        (void)!write(up[1], &c, 1);
        (void)!read(down[0], &c, 1);
        _exit(ok && A.cuMemFree_v2(p) == CUDA_SUCCESS ? 0 : 1);
    }
    check(read(up[0], &c, 1) == 1 && c == 'y', "child allocated 30 MiB");
    (void)setup(0);
    uint64_t f = free_now();
    check(f == 64 * MIB - 8 * MIB - 30 * MIB, "group free %llu: two contexts and the child's 30 MiB", (unsigned long long)f);
    CUdeviceptr p, q;
    check(A.cuMemAlloc_v2(&p, f) == CUDA_SUCCESS, "fill the shared limit");
    check(A.cuMemAlloc_v2(&q, 1) == CUDA_ERROR_OUT_OF_MEMORY, "one byte past the shared limit");
    c = 'x';
    (void)!write(down[1], &c, 1);
    int status = 0;
    waitpid(pid, &status, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child exit");
    /* The dead child's slot is reclaimed before any refusal. */
    check(A.cuMemAlloc_v2(&q, 34 * MIB) == CUDA_SUCCESS, "the room the child left (30 MiB + its context)");
    check(free_now() == 0, "full again: %zu", free_now());
}

/* A bad limit is reported at start and ignored: the program runs unlimited. */
static void t_badenv(void)
{
    (void)setup(0);
    CUdeviceptr p;
    check(A.cuMemAlloc_v2(&p, 100 * MIB) == CUDA_SUCCESS, "no limit in force");
    check(A.cuMemFree_v2(p) == CUDA_SUCCESS, "free");
}

/* Unhooked functions reach the driver untouched; lookups give our hooks for hooked names. */
static void t_passthrough(void)
{
    (void)setup(0);
    char name[96] = "";
    check(A.cuDeviceGetName(name, sizeof name, 0) == CUDA_SUCCESS && strstr(name, "H100"), "cuDeviceGetName: %s", name);
    CUdeviceptr p;
    check(A.cuMemAlloc_v2(&p, 4096) == CUDA_SUCCESS, "alloc");
    char in[4096], out[4096];
    for (int i = 0; i < 4096; i++)
        in[i] = (char)i;
    check(A.cuMemcpyHtoD_v2(p, in, sizeof in) == CUDA_SUCCESS && A.cuMemcpyDtoH_v2(out, p, sizeof out) == CUDA_SUCCESS &&
              memcmp(in, out, sizeof in) == 0, "copies round-trip");
    check(A.cuMemFree_v2(p) == CUDA_SUCCESS, "free");
    void *h = dlopen("libcuda.so.1", RTLD_NOW);
    Dl_info info;
    void *f = dlsym(h, "cuDeviceGetName");
    check(f && dladdr(f, &info) && strstr(info.dli_fname, "libcuda"), "dlsym of an unhooked name is the driver's");
    f = dlsym(h, "cuMemAlloc_v2");
    check(f && dladdr(f, &info) && strstr(info.dli_fname, "libgpushare"), "dlsym(handle, cuMemAlloc_v2) is ours");
    void *p2 = NULL;
    CUdriverProcAddressQueryResult st;
    check(A.cuGetProcAddress_v2("cuMemAllocAsync", &p2, 13000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, &st) ==
                  CUDA_SUCCESS &&
              dladdr(p2, &info) && info.dli_sname && strcmp(info.dli_sname, "cuMemAllocAsync_ptsz") == 0 &&
              strstr(info.dli_fname, "libgpushare"),
          "per-thread cuMemAllocAsync is our _ptsz hook (%s)", p2 && dladdr(p2, &info) ? info.dli_sname : "?");
    check(A.cuGetProcAddress_v2("cuMemAlloc", &p2, 3000, 0, &st) == CUDA_SUCCESS && dladdr(p2, &info) &&
              info.dli_sname && strcmp(info.dli_sname, "cuMemAlloc") == 0 && strstr(info.dli_fname, "libgpushare"),
          "cuMemAlloc at 3000 is our old-ABI hook");
    check(A.cuGetProcAddress_v2("cuDeviceGetName", &p2, 13000, 0, &st) == CUDA_SUCCESS && dladdr(p2, &info) &&
              strstr(info.dli_fname, "libcuda"), "unhooked names come back from the driver untouched");
    check(gsnext_call_next() == 2, "dlsym(RTLD_NEXT) from a library finds the next library's symbol");
}

/* Primary contexts: measured on the first retain, given back on the last release. */
static void t_primary(void)
{
    check(A.cuInit(0) == CUDA_SUCCESS, "cuInit");
    CUcontext c1, c2;
    check(A.cuDevicePrimaryCtxRetain(&c1, 0) == CUDA_SUCCESS, "retain");
    check(A.cuDevicePrimaryCtxRetain(&c2, 0) == CUDA_SUCCESS && c1 == c2, "retain again");
    A.cuCtxSetCurrent(c1);
    check(free_now() == 60 * MIB, "one 4 MiB primary context counted once: %zu", free_now());
    CUdeviceptr p;
    check(A.cuMemAlloc_v2(&p, 10 * MIB) == CUDA_SUCCESS, "alloc in primary");
    check(A.cuDevicePrimaryCtxRelease_v2(0) == CUDA_SUCCESS && A.cuDevicePrimaryCtxRelease_v2(0) == CUDA_SUCCESS, "release x2");
    check(A.cuDevicePrimaryCtxRetain(&c1, 0) == CUDA_SUCCESS, "retain after the last release");
    A.cuCtxSetCurrent(c1);
    check(free_now() == 60 * MIB, "context and its allocations were given back: %zu", free_now());
    /* a created context, destroyed with allocations still in it */
    CUcontext ctx;
    check(A.cuCtxCreate_v2(&ctx, 0, 0) == CUDA_SUCCESS, "cuCtxCreate_v2");
    check(A.cuMemAlloc_v2(&p, 10 * MIB) == CUDA_SUCCESS, "alloc in ctx");
    check(free_now() == 46 * MIB, "two contexts and 10 MiB: %zu", free_now());
    check(A.cuCtxDestroy_v2(ctx) == CUDA_SUCCESS, "destroy");
    A.cuCtxSetCurrent(c1);
    check(free_now() == 60 * MIB, "destroyed context's memory is back: %zu", free_now());
}

/* NVML device `index` as the v1 and v2 calls report it; the two must agree. */
static nvmlMemory_t nvml_mem(unsigned index)
{
    nvmlDevice_t d = NULL;
    nvmlMemory_t m = {0};
    nvmlMemory_v2_t m2 = {.version = nvmlMemory_v2};
    check(NV.nvmlDeviceGetHandleByIndex_v2(index, &d) == NVML_SUCCESS, "nvml handle %u", index);
    check(NV.nvmlDeviceGetMemoryInfo(d, &m) == NVML_SUCCESS, "nvmlDeviceGetMemoryInfo");
    check(NV.nvmlDeviceGetMemoryInfo_v2(d, &m2) == NVML_SUCCESS, "nvmlDeviceGetMemoryInfo_v2");
    check(m2.total == m.total && (m.total == 85520809984ull || (m2.reserved == 0 && m2.used == m.used && m2.free == m.free)),
          "v2 agrees with v1 on device %u: total %llu/%llu used %llu/%llu free %llu/%llu reserved %llu", index, m2.total,
          m.total, m2.used, m.used, m2.free, m.free, m2.reserved);
    return m;
}

/* Run under CUDA_VISIBLE_DEVICES=1 (two GPUs, 1 GiB each) and a 64 MiB limit: NVML's
 * device 1 is our ordinal 0, the slice; NVML's device 0 is not ours and passes through. */
static void t_nvml(void)
{
    load_nvml();
    (void)setup(0);
    check(NV.nvmlInit_v2() == NVML_SUCCESS, "nvmlInit_v2");
    nvmlMemory_t m = nvml_mem(1);
    check(m.total == 64 * MIB && m.used == 4 * MIB && m.free == 60 * MIB, "slice with a context: %llu/%llu/%llu",
          m.total, m.used, m.free);
    CUdeviceptr p, q;
    check(A.cuMemAlloc_v2(&p, 10 * MIB) == CUDA_SUCCESS, "alloc 10 MiB");
    m = nvml_mem(1);
    check(m.total == 64 * MIB && m.used == 14 * MIB && m.free == 50 * MIB, "after 10 MiB: %llu/%llu/%llu", m.total,
          m.used, m.free);
    m = nvml_mem(0);
    check(m.total == 85520809984ull && m.used == 0, "invisible GPU passes through: total %llu used %llu", m.total, m.used);
    nvmlDevice_t d;
    nvmlMemory_v2_t bad = {.version = 1};
    check(NV.nvmlDeviceGetHandleByIndex_v2(1, &d) == NVML_SUCCESS &&
              NV.nvmlDeviceGetMemoryInfo_v2(d, &bad) == NVML_ERROR_ARGUMENT_VERSION_MISMATCH && bad.total == 0,
          "a v2 struct of another version gets NVML's own error, untouched");
    /* A process that only uses NVML (nvidia-smi) sees the group's usage of the slice. */
    char used[32];
    snprintf(used, sizeof used, "%llu", 14 * MIB);
    setenv("SHIM_TEST_NVML_USED", used, 1);
    for (int dl = 0; dl < 2; dl++) {
        pid_t pid = fork();
        if (pid == 0) {
            execl("/proc/self/exe", "shim_test", "nvmlonly", dl ? "dlsym" : mode, (char *)NULL);
            _exit(127);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "nvmlonly (%s) exit %d", dl ? "dlsym" : mode, status);
    }
    check(A.cuMemAlloc_v2(&q, 50 * MIB) == CUDA_SUCCESS, "fill the slice");
    m = nvml_mem(1);
    check(m.total == 64 * MIB && m.used == 64 * MIB && m.free == 0, "full: %llu/%llu/%llu", m.total, m.used, m.free);
    check(A.cuMemFree_v2(p) == CUDA_SUCCESS && A.cuMemFree_v2(q) == CUDA_SUCCESS, "frees");
    m = nvml_mem(1);
    check(m.used == 4 * MIB && m.free == 60 * MIB, "after frees: %llu/%llu", m.used, m.free);
}

/* Like nvidia-smi: NVML only, never cuInit; the group in the region holds SHIM_TEST_NVML_USED. */
static void t_nvmlonly(void)
{
    load_nvml();
    check(NV.nvmlInit_v2() == NVML_SUCCESS, "nvmlInit_v2");
    nvmlMemory_t m = nvml_mem(1);
    uint64_t want = env_u64("SHIM_TEST_NVML_USED", 0);
    check(m.total == 64 * MIB && m.used == want && m.free == 64 * MIB - want, "nvidia-smi view: %llu/%llu/%llu, want used %llu",
          m.total, m.used, m.free, (unsigned long long)want);
    m = nvml_mem(0);
    check(m.total == 85520809984ull, "invisible GPU passes through");
    /* ... and CUDA was not started behind its back (a later fork would break it) */
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    __typeof__(&cuDeviceGetCount) count = h ? (__typeof__(&cuDeviceGetCount))libc_dlsym(h, "cuDeviceGetCount") : NULL;
    int n = 0;
    check(count != NULL && count(&n) == CUDA_ERROR_NOT_INITIALIZED, "CUDA still uninitialised in the NVML-only process");
}

/* No libnvidia-ml anywhere: the program runs; contexts cannot be measured (one warning). */
static void t_nonvml(void)
{
    (void)setup(0);
    check(dlopen("libnvidia-ml.so.1", RTLD_NOW) == NULL, "no NVML in this run");
    CUdeviceptr p;
    check(A.cuMemAlloc_v2(&p, MIB) == CUDA_SUCCESS && free_now() == 63 * MIB, "alloc counted: free %zu", free_now());
    check(A.cuMemFree_v2(p) == CUDA_SUCCESS && free_now() == 64 * MIB, "free");
}

/* GPUSHARE_OVERSUBSCRIBE=1, 64 MiB, a region: past the limit, plain and pitched
 * allocations become host-resident managed memory, counted as HOST, usable, freed. */
static void t_oversub(void)
{
    (void)setup(0);
    uint64_t drv0 = driver_used();
    CUdeviceptr dev_p, host_p, pitch_p;
    check(A.cuMemAlloc_v2(&dev_p, 50 * MIB) == CUDA_SUCCESS, "50 MiB on the device");
    check(A.cuMemAlloc_v2(&host_p, 20 * MIB) == CUDA_SUCCESS, "20 MiB past the limit is served");
    check(free_now() == 10 * MIB, "the slice does not count host-backed bytes: free %zu", free_now());
    check(region_kind_bytes(0, GS_REGION_KIND_HOST) == 20 * MIB, "region HOST bytes %llu",
          (unsigned long long)region_kind_bytes(0, GS_REGION_KIND_HOST));
    check(region_kind_bytes(0, GS_REGION_KIND_ALLOC) == 50 * MIB, "region ALLOC bytes %llu",
          (unsigned long long)region_kind_bytes(0, GS_REGION_KIND_ALLOC));
    check(driver_used() == drv0 + 50 * MIB, "advised to the host: the driver holds no device bytes for it (%llu)",
          (unsigned long long)(driver_used() - drv0));
    static char in[1 << 16], out[1 << 16];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (char)(i * 7);
    check(A.cuMemcpyHtoD_v2(host_p + 19 * MIB, in, sizeof in) == CUDA_SUCCESS &&
              A.cuMemcpyDtoH_v2(out, host_p + 19 * MIB, sizeof out) == CUDA_SUCCESS && memcmp(in, out, sizeof in) == 0,
          "host-backed memory holds data");
    size_t pitch = 0;
    check(A.cuMemAllocPitch_v2(&pitch_p, &pitch, 1000, 20 * 1024, 4) == CUDA_SUCCESS && pitch == 1024,
          "pitched past the limit: pitch %zu", pitch);
    check(region_kind_bytes(0, GS_REGION_KIND_HOST) == 40 * MIB, "pitch counted as HOST");
    CUdeviceptr_v1 p1;
    check(A.cuMemAlloc(&p1, 20 * MIB) == CUDA_ERROR_OUT_OF_MEMORY, "the 32-bit ABI is not oversubscribed");
    CUdeviceptr mp;
    check(A.cuMemAllocManaged(&mp, 15 * MIB, CU_MEM_ATTACH_GLOBAL) == CUDA_SUCCESS &&
              region_kind_bytes(0, GS_REGION_KIND_HOST) == 55 * MIB, "managed past the limit: host-backed too");
    check(A.cuMemFree_v2(mp) == CUDA_SUCCESS, "free managed");
    check(A.cuMemFree_v2(host_p) == CUDA_SUCCESS && A.cuMemFree_v2(pitch_p) == CUDA_SUCCESS, "cuMemFree of host-backed");
    check(region_kind_bytes(0, GS_REGION_KIND_HOST) == 0, "HOST back to 0");
    check(A.cuMemFree_v2(dev_p) == CUDA_SUCCESS && free_now() == 60 * MIB, "all back: %zu", free_now());
    check(driver_used() == drv0, "driver back to where it was");
}

/* The fake driver backs a VMM handle with a memfd: a dup of the newest one outlives the
 * handle, so the test can read what the physical memory held when it went away. */
static int dup_newest_vmm_memfd(void)
{
    DIR *d = opendir("/proc/self/fd");
    int best = -1;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        char path[320], target[256];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(path, target, sizeof target - 1);
        if (n > 0) {
            target[n] = '\0';
            int fd = atoi(e->d_name);
            if (strstr(target, "memfd:fake-cuda-vmm") && fd > best)
                best = fd;
        }
    }
    if (d)
        closedir(d);
    check(best >= 0, "found the fake's VMM memfd");
    return best >= 0 ? dup(best) : -1;
}

static unsigned char memfd_byte(int fd, size_t at)
{
    unsigned char b = 0xee;
    check(pread(fd, &b, 1, (off_t)at) == 1, "read the memfd");
    return b;
}

/* GPUSHARE_SCRUB: freed memory that the fake hands out again ("reuseFreed") reads 0 when
 * scrubbing is on and still holds the old bytes when it is off (SHIM_TEST_EXPECT_SCRUB=0,
 * the control run that shows the check can fail). VMM: also the deferred release. */
static void t_scrub(void)
{
    (void)setup(0);
    int on = (int)env_u64("SHIM_TEST_EXPECT_SCRUB", 1);
    unsigned char want = on ? 0 : 0xab, b = 0;
    size_t base = free_now();
    CUdeviceptr p, q;
    /* plain */
    check(A.cuMemAlloc_v2(&p, MIB) == CUDA_SUCCESS && A.cuMemsetD8_v2(p, 0xab, MIB) == CUDA_SUCCESS, "plain, filled");
    check(A.cuMemFree_v2(p) == CUDA_SUCCESS && A.cuMemAlloc_v2(&q, MIB) == CUDA_SUCCESS && q == p, "same bytes again");
    check(A.cuMemcpyDtoH_v2(&b, q + 12345, 1) == CUDA_SUCCESS && b == want, "plain after free: %#x, want %#x", b, want);
    check(A.cuMemFree_v2(q) == CUDA_SUCCESS, "free");
    /* pitch */
    size_t pitch;
    check(A.cuMemAllocPitch_v2(&p, &pitch, 1000, 100, 4) == CUDA_SUCCESS && A.cuMemsetD8_v2(p, 0xab, pitch * 100) == CUDA_SUCCESS, "pitch");
    check(A.cuMemFree_v2(p) == CUDA_SUCCESS && A.cuMemAllocPitch_v2(&q, &pitch, 1000, 100, 4) == CUDA_SUCCESS && q == p, "pitch again");
    check(A.cuMemcpyDtoH_v2(&b, q + pitch * 99 + 999, 1) == CUDA_SUCCESS && b == want, "pitch after free: %#x", b);
    check(A.cuMemFree_v2(q) == CUDA_SUCCESS, "free");
    /* stream-ordered: freed on the stream, and freed with cuMemFree */
    for (int sync_free = 0; sync_free < 2; sync_free++) {
        check(A.cuMemAllocAsync(&p, MIB, NULL) == CUDA_SUCCESS && A.cuMemsetD8_v2(p, 0xab, MIB) == CUDA_SUCCESS, "async");
        check((sync_free ? A.cuMemFree_v2(p) : A.cuMemFreeAsync(p, NULL)) == CUDA_SUCCESS &&
                  A.cuStreamSynchronize(NULL) == CUDA_SUCCESS, "async free (%s)", sync_free ? "cuMemFree" : "cuMemFreeAsync");
        check(A.cuMemAllocAsync(&q, MIB, NULL) == CUDA_SUCCESS && q == p, "async again");
        check(A.cuMemcpyDtoH_v2(&b, q + MIB - 1, 1) == CUDA_SUCCESS && b == want, "async after %s: %#x",
              sync_free ? "cuMemFree" : "cuMemFreeAsync", b);
        check(A.cuMemFreeAsync(q, NULL) == CUDA_SUCCESS && A.cuStreamSynchronize(NULL) == CUDA_SUCCESS, "free");
    }
    /* VMM, released unmapped, and released while mapped (freed at the unmap) */
    CUmemAllocationProp prop;
    memset(&prop, 0, sizeof prop);
    prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    CUmemAccessDesc acc = {.location = prop.location, .flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
    size_t sz = 2 * MIB;
    for (int while_mapped = 0; while_mapped < 2; while_mapped++) {
        CUmemGenericAllocationHandle h;
        CUdeviceptr va;
        check(A.cuMemCreate(&h, sz, &prop, 0) == CUDA_SUCCESS && A.cuMemAddressReserve(&va, sz, 0, 0, 0) == CUDA_SUCCESS &&
                  A.cuMemMap(va, sz, 0, h, 0) == CUDA_SUCCESS && A.cuMemSetAccess(va, sz, &acc, 1) == CUDA_SUCCESS,
              "VMM create/map");
        check(A.cuMemsetD8_v2(va, 0xab, sz) == CUDA_SUCCESS, "VMM fill");
        int fd = dup_newest_vmm_memfd();
        check(free_now() == base - sz, "VMM counted");
        if (while_mapped) {
            check(A.cuMemRelease(h) == CUDA_SUCCESS, "release while mapped");
            check(free_now() == base - sz, "released but mapped: still counted (free %zu)", free_now());
            check(A.cuMemcpyDtoH_v2(&b, va + 5, 1) == CUDA_SUCCESS && b == 0xab, "still readable through the mapping");
            check(A.cuMemUnmap(va, sz / 2) != CUDA_SUCCESS, "an unmap of half a mapping is refused");
            check(A.cuMemcpyDtoH_v2(&b, va + 5, 1) == CUDA_SUCCESS && b == 0xab, "... and destroys nothing");
            check(A.cuMemUnmap(va, sz) == CUDA_SUCCESS, "unmap");
        } else {
            check(A.cuMemUnmap(va, sz) == CUDA_SUCCESS && free_now() == base - sz, "unmapped, still held");
            check(A.cuMemRelease(h) == CUDA_SUCCESS, "release");
        }
        check(free_now() == base, "VMM gone: free %zu", free_now());
        check(A.cuMemAddressFree(va, sz) == CUDA_SUCCESS, "address free");
        check(memfd_byte(fd, sz - 1) == want && memfd_byte(fd, 0) == want, "VMM %s: physical memory reads %#x, want %#x",
              while_mapped ? "released while mapped" : "released unmapped", memfd_byte(fd, 0), want);
        close(fd);
    }
    check(free_now() == base, "all back");
}

/* ---- SIGKILL loop ---------------------------------------------------------------------
 * Children (exec'd "churn") share one region and allocate/free at random; the parent
 * SIGKILLs one at a random instant, starts a new one, and after every kill checks that each
 * survivor still completes operations (no wedge). Between rounds it pauses the children
 * between operations and has a fresh NVML-only process (attaching reclaims dead slots)
 * check that the group's usage is exactly what the live children hold. */
#define CHURN_KIDS 4
#define CHURN_MAX_LIVE 6

typedef struct churn_kid {
    _Atomic uint64_t ops;        /* completed alloc/free operations */
    _Atomic uint64_t held;       /* device bytes held after the last operation, context included */
    _Atomic int paused;          /* 1 while parked between operations */
} churn_kid;

typedef struct churn_board {
    _Atomic int pause;
    churn_kid kid[CHURN_KIDS];
} churn_board;

static churn_board *board_map(int create)
{
    const char *path = getenv("SHIM_TEST_BOARD");
    int fd = path ? open(path, create ? O_RDWR | O_CREAT | O_TRUNC : O_RDWR, 0600) : -1;
    check(fd >= 0, "board %s", path ? path : "(SHIM_TEST_BOARD unset)");
    if (fd < 0 || (create && ftruncate(fd, sizeof(churn_board)) != 0))
        exit(1);
    churn_board *b = mmap(NULL, sizeof *b, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    check(b != MAP_FAILED, "map board");
    return b;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A child: allocate and free 64 KiB .. 4 MiB blocks forever (refusals are fine). */
static void t_churn(void)
{
    churn_board *b = board_map(0);
    int me = (int)env_u64("SHIM_TEST_KID", 0);
    churn_kid *k = &b->kid[me];
    (void)setup(0);
    CUdeviceptr live[CHURN_MAX_LIVE] = {0};
    uint64_t size[CHURN_MAX_LIVE] = {0}, held = 4 * MIB;
    unsigned seed = (unsigned)getpid();
    atomic_store(&k->held, held);
    for (;;) {
        if (atomic_load(&b->pause)) {
            atomic_store(&k->paused, 1);
            while (atomic_load(&b->pause))
                usleep(100);
            atomic_store(&k->paused, 0);
        }
        int i = rand_r(&seed) % CHURN_MAX_LIVE;
        if (live[i]) {
            if (A.cuMemFree_v2(live[i]) != CUDA_SUCCESS)
                _exit(3);
            held -= size[i];
            live[i] = 0;
        } else {
            size[i] = (64 * 1024) * (1 + (uint64_t)(rand_r(&seed) % 64));
            CUresult r = A.cuMemAlloc_v2(&live[i], size[i]);
            if (r == CUDA_SUCCESS)
                held += size[i];
            else if (r == CUDA_ERROR_OUT_OF_MEMORY)
                live[i] = 0;
            else
                _exit(4);
        }
        atomic_store(&k->held, held);
        atomic_fetch_add(&k->ops, 1);
    }
}

static pid_t churn_start(churn_board *b, int kid)
{
    atomic_store(&b->kid[kid].ops, 0);
    atomic_store(&b->kid[kid].paused, 0);
    pid_t pid = fork();
    if (pid == 0) {
        char id[16];
        snprintf(id, sizeof id, "%d", kid);
        setenv("SHIM_TEST_KID", id, 1);
        execl("/proc/self/exe", "shim_test", "churn", "direct", (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Waits until kid has done `more` operations past `from`; false after timeout_ms (wedged). */
static bool churn_progress(churn_board *b, int kid, uint64_t from, uint64_t more, uint64_t timeout_ms)
{
    uint64_t end = now_ms() + timeout_ms;
    while (atomic_load(&b->kid[kid].ops) < from + more) {
        if (now_ms() > end)
            return false;
        usleep(200);
    }
    return true;
}

/* A fresh NVML-only process attaches (reclaiming dead slots) and checks the group usage. */
static void churn_verify(uint64_t want, const char *when)
{
    char w[32];
    snprintf(w, sizeof w, "%llu", (unsigned long long)want);
    pid_t pid = fork();
    if (pid == 0) {
        setenv("SHIM_TEST_NVML_USED", w, 1);
        execl("/proc/self/exe", "shim_test", "groupused", "direct", (char *)NULL);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s: group usage is exactly %llu bytes (checker exit %d)", when,
          (unsigned long long)want, status);
}

static void t_groupused(void)
{
    load_nvml();
    check(NV.nvmlInit_v2() == NVML_SUCCESS, "nvmlInit_v2");
    nvmlMemory_t m = nvml_mem(0);
    uint64_t want = env_u64("SHIM_TEST_NVML_USED", 0);
    check(m.used == want, "group uses %llu, live processes hold %llu", m.used, (unsigned long long)want);
}

static void t_killloop(void)
{
    churn_board *b = board_map(1);
    unsigned seed = (unsigned)env_u64("SHIM_TEST_SEED", (uint64_t)time(NULL));
    printf("killloop seed %u\n", seed);
    pid_t kids[CHURN_KIDS];
    for (int i = 0; i < CHURN_KIDS; i++)
        kids[i] = churn_start(b, i);
    for (int i = 0; i < CHURN_KIDS; i++)
        check(churn_progress(b, i, 0, 1, 10000), "child %d started", i);
    int rounds = (int)env_u64("SHIM_TEST_KILLS", 100), wedged = 0;
    for (int round = 0; round < rounds && !wedged; round++) {
        int victim = rand_r(&seed) % CHURN_KIDS;
        usleep((useconds_t)(rand_r(&seed) % 20000)); /* a random instant of its work */
        uint64_t before[CHURN_KIDS];
        for (int i = 0; i < CHURN_KIDS; i++)
            before[i] = atomic_load(&b->kid[i].ops);
        kill(kids[victim], SIGKILL);
        waitpid(kids[victim], NULL, 0);
        kids[victim] = churn_start(b, victim);
        /* every survivor goes on (a lock held by the dead one would stop it) */
        for (int i = 0; i < CHURN_KIDS; i++) {
            bool ok = i == victim ? churn_progress(b, i, 0, 1, 10000) : churn_progress(b, i, before[i], 20, 3000);
            check(ok, "round %d: child %d %s", round, i, i == victim ? "restarted and works" : "is not wedged");
            wedged |= !ok;
        }
        if (round % 25 == 24) { /* pause everyone between operations and compare */
            atomic_store(&b->pause, 1);
            uint64_t want = 0;
            for (int i = 0; i < CHURN_KIDS; i++) {
                uint64_t end = now_ms() + 2000;
                while (!atomic_load(&b->kid[i].paused) && now_ms() < end)
                    usleep(100);
                check(atomic_load(&b->kid[i].paused), "child %d pauses", i);
                want += atomic_load(&b->kid[i].held);
            }
            char when[48];
            snprintf(when, sizeof when, "after %d kills", round + 1);
            churn_verify(want, when);
            atomic_store(&b->pause, 0);
        }
    }
    for (int i = 0; i < CHURN_KIDS; i++) {
        kill(kids[i], SIGKILL);
        waitpid(kids[i], NULL, 0);
    }
    churn_verify(0, "all children killed");
}

/* A graph with one allocation node of `bytes` on device 0 (and a free node after it when
 * with_free); *dptr gets the allocation's address. */
static CUgraphExec graph_with_alloc(size_t bytes, int with_free, CUdeviceptr *dptr, CUgraph *g)
{
    CUDA_MEM_ALLOC_NODE_PARAMS p;
    memset(&p, 0, sizeof p);
    p.poolProps.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
    p.poolProps.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    p.poolProps.location.id = 0;
    p.bytesize = bytes;
    CUgraphNode a, f;
    CUgraphExec e = NULL;
    check(A.cuGraphCreate(g, 0) == CUDA_SUCCESS && A.cuGraphAddMemAllocNode(&a, *g, NULL, 0, &p) == CUDA_SUCCESS,
          "graph with an alloc node");
    if (with_free)
        check(A.cuGraphAddMemFreeNode(&f, *g, &a, 1, p.dptr) == CUDA_SUCCESS, "free node");
    check(A.cuGraphInstantiateWithFlags(&e, *g, 0) == CUDA_SUCCESS, "instantiate");
    *dptr = p.dptr;
    return e;
}

/* Graph memory nodes, 64 MiB, 4 MiB context, a region: the graph pool's reserve counts
 * after launch, goes at trim, is trimmed before a refusal, and past the limit the slice
 * reports free 0 and refuses until the graph memory is freed. */
static void t_graph(void)
{
    (void)setup(0);
    CUgraph g1, g2;
    CUdeviceptr d1, d2, big, one;
    CUgraphExec e1 = graph_with_alloc(10 * MIB, 1, &d1, &g1);
    check(free_now() == 60 * MIB, "instantiating reserves nothing here: %zu", free_now());
    check(A.cuGraphLaunch(e1, NULL) == CUDA_SUCCESS && A.cuStreamSynchronize(NULL) == CUDA_SUCCESS, "launch");
    check(free_now() == 50 * MIB, "the graph pool's 10 MiB is counted: free %zu", free_now());
    check(region_kind_bytes(0, GS_REGION_KIND_GRAPH) == 10 * MIB, "as GRAPH");
    check(A.cuDeviceGraphMemTrim(0) == CUDA_SUCCESS && free_now() == 60 * MIB, "trim gives it back: %zu", free_now());
    check(A.cuGraphLaunch(e1, NULL) == CUDA_SUCCESS && A.cuStreamSynchronize(NULL) == CUDA_SUCCESS && free_now() == 50 * MIB,
          "launched again");
    check(A.cuMemAlloc_v2(&big, 55 * MIB) == CUDA_SUCCESS, "unused graph memory is trimmed before refusing");
    check(free_now() == 5 * MIB && region_kind_bytes(0, GS_REGION_KIND_GRAPH) == 0, "free %zu", free_now());
    /* a live graph allocation (no free node) takes the slice past its limit: counted anyway */
    CUgraphExec e2 = graph_with_alloc(8 * MIB, 0, &d2, &g2);
    check(A.cuGraphLaunch(e2, NULL) == CUDA_SUCCESS && A.cuStreamSynchronize(NULL) == CUDA_SUCCESS, "launch past the limit");
    check(free_now() == 0 && total_now() == 64 * MIB, "over the limit: free 0 (no underflow), total %zu", total_now());
    check(A.cuMemAlloc_v2(&one, 1) == CUDA_ERROR_OUT_OF_MEMORY, "nothing more fits while the graph holds it");
    check(A.cuMemFree_v2(d2) == CUDA_SUCCESS, "free the graph allocation");
    check(A.cuMemAlloc_v2(&one, 1) == CUDA_SUCCESS, "its memory, trimmed, makes room");
    check(A.cuMemFree_v2(one) == CUDA_SUCCESS && A.cuMemFree_v2(big) == CUDA_SUCCESS, "frees");
    check(A.cuGraphExecDestroy(e1) == CUDA_SUCCESS && A.cuGraphExecDestroy(e2) == CUDA_SUCCESS &&
              A.cuGraphDestroy(g1) == CUDA_SUCCESS && A.cuGraphDestroy(g2) == CUDA_SUCCESS, "destroy");
    check(A.cuDeviceGraphMemTrim(0) == CUDA_SUCCESS && free_now() == 60 * MIB, "all back: %zu", free_now());
}

/* The fake's count of cuDeviceGetGraphMemAttribute calls (its busy file, GPUSHARE_FAKE_CUDA_BUSY_DIR). */
static uint64_t graph_mem_queries(void)
{
    const char *dir = getenv("GPUSHARE_FAKE_CUDA_BUSY_DIR");
    char path[512];
    snprintf(path, sizeof path, "%s/%d.busy", dir ? dir : ".", (int)getpid());
    uint64_t n = UINT64_MAX;
    int fd = open(path, O_RDONLY);
    if (fd >= 0) {
        fake_cuda_busy_file_t f;
        if (pread(fd, &f, sizeof f, 0) == (ssize_t)sizeof f && f.version >= 2)
            n = f.graph_mem_queries;
        close(fd);
    }
    return n;
}

/* Launching a graph without memory nodes never reads the graph pool (a driver call per
 * launch on a GPU); one with an allocation node still does, at every launch. */
static void t_graphpoll(void)
{
    (void)setup(0);
    CUmodule mod;
    CUfunction fn;
    check(A.cuModuleLoadData(&mod, "x") == CUDA_SUCCESS && A.cuModuleGetFunction(&fn, mod, "sleep_1") == CUDA_SUCCESS,
          "module");
    CUgraph g, ga;
    CUgraphNode k;
    CUgraphExec e = NULL, ea;
    CUDA_KERNEL_NODE_PARAMS kp;
    memset(&kp, 0, sizeof kp);
    kp.func = fn;
    kp.gridDimX = kp.gridDimY = kp.gridDimZ = kp.blockDimX = kp.blockDimY = kp.blockDimZ = 1;
    check(A.cuGraphCreate(&g, 0) == CUDA_SUCCESS && A.cuGraphAddKernelNode_v2(&k, g, NULL, 0, &kp) == CUDA_SUCCESS &&
              A.cuGraphInstantiateWithFlags(&e, g, 0) == CUDA_SUCCESS, "kernel-only graph");
    uint64_t before = graph_mem_queries();
    check(before != UINT64_MAX, "the fake's busy file (version 2) is readable");
    for (int i = 0; i < 100; i++)
        check(A.cuGraphLaunch(e, NULL) == CUDA_SUCCESS, "launch %d", i);
    check(A.cuStreamSynchronize(NULL) == CUDA_SUCCESS, "sync");
    check(graph_mem_queries() == before, "100 launches of a graph without memory nodes: %llu pool reads",
          (unsigned long long)(graph_mem_queries() - before));
    CUdeviceptr d;
    ea = graph_with_alloc(MIB, 1, &d, &ga);
    before = graph_mem_queries();
    for (int i = 0; i < 10; i++)
        check(A.cuGraphLaunch(ea, NULL) == CUDA_SUCCESS, "launch alloc graph %d", i);
    check(A.cuStreamSynchronize(NULL) == CUDA_SUCCESS, "sync");
    check(graph_mem_queries() - before >= 10, "10 launches of a graph with an allocation node: %llu pool reads",
          (unsigned long long)(graph_mem_queries() - before));
    check(region_kind_bytes(0, GS_REGION_KIND_GRAPH) > 0, "and its pool is counted");
    /* destroyed, its handle leaves the set: the next exec may reuse the address */
    check(A.cuGraphExecDestroy(e) == CUDA_SUCCESS && A.cuGraphExecDestroy(ea) == CUDA_SUCCESS, "exec destroy");
    check(A.cuGraphAddMemAllocNode != NULL, "api");
    CUgraphExec e2 = graph_with_alloc(MIB, 1, &d, &ga);
    before = graph_mem_queries();
    check(A.cuGraphLaunch(e2, NULL) == CUDA_SUCCESS && A.cuStreamSynchronize(NULL) == CUDA_SUCCESS, "launch");
    check(graph_mem_queries() > before, "a new allocating graph (maybe at a reused address) is read");
    check(A.cuGraphExecDestroy(e2) == CUDA_SUCCESS, "destroy");
    /* cuGraphInstantiateWithParams is looked at the same way */
    CUDA_GRAPH_INSTANTIATE_PARAMS ip;
    memset(&ip, 0, sizeof ip);
    CUgraphExec e3 = NULL, e4 = NULL;
    check(A.cuGraphInstantiateWithParams(&e3, g, &ip) == CUDA_SUCCESS, "instantiate with params");
    before = graph_mem_queries();
    for (int i = 0; i < 100; i++)
        check(A.cuGraphLaunch(e3, NULL) == CUDA_SUCCESS, "launch %d", i);
    check(A.cuStreamSynchronize(NULL) == CUDA_SUCCESS && graph_mem_queries() == before,
          "instantiated with params, no memory nodes: %llu pool reads", (unsigned long long)(graph_mem_queries() - before));
    /* instantiated where the library cannot see it (the driver's own function): launches read
     * the pool, but at most once a millisecond */
    __typeof__(&cuGraphInstantiateWithFlags) raw =
        (__typeof__(&cuGraphInstantiateWithFlags))libc_dlsym(dlopen("libcuda.so.1", RTLD_NOW), "cuGraphInstantiateWithFlags");
    check(raw != NULL && raw(&e4, g, 0) == CUDA_SUCCESS, "instantiate behind the library's back");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    before = graph_mem_queries();
    for (int i = 0; i < 300; i++)
        check(A.cuGraphLaunch(e4, NULL) == CUDA_SUCCESS, "launch unknown %d", i);
    uint64_t reads = graph_mem_queries() - before;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    check(reads >= 1 && (double)reads <= ms + 2, "unknown graph: %llu pool reads in %.1f ms of launches",
          (unsigned long long)reads, ms);
    check(A.cuStreamSynchronize(NULL) == CUDA_SUCCESS && A.cuGraphExecDestroy(e3) == CUDA_SUCCESS &&
              A.cuGraphExecDestroy(e4) == CUDA_SUCCESS && A.cuGraphDestroy(g) == CUDA_SUCCESS, "destroy");
}

/* Kernels launch and run (a bad compute variable leaves the program ungoverned, not broken). */
static void t_launch(void)
{
    (void)setup(0);
    CUmodule mod;
    CUfunction fn;
    check(A.cuModuleLoadData(&mod, "x") == CUDA_SUCCESS && A.cuModuleGetFunction(&fn, mod, "sleep_200") == CUDA_SUCCESS,
          "module");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 100; i++)
        check(A.cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL) == CUDA_SUCCESS, "launch %d", i);
    check(A.cuStreamSynchronize(NULL) == CUDA_SUCCESS, "sync");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    /* 100 x 200 us = 20 ms of GPU time; ungoverned it is not held back by periods of 1 s */
    check(s >= 0.02 && s < 2.0, "100 kernels of 200 us took %.3f s", s);
}

/* One of launchthreads' threads: 50 short launches on its own stream, each followed by one the
 * driver refuses (a grid of 0: the gate counts a launch before it happens, on credit too, and
 * takes a refused one back), then it exits (the gate counts launches made on credit at thread
 * exit): run_shim_tests.sh reads the count. */
static void *launch_worker(void *p)
{
    CUfunction fn = p;
    CUstream s;
    check(A.cuCtxSetCurrent(g_ctx) == CUDA_SUCCESS && A.cuStreamCreate(&s, CU_STREAM_NON_BLOCKING) == CUDA_SUCCESS,
          "thread stream");
    for (int i = 0; i < 50; i++) {
        check(A.cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, s, NULL, NULL) == CUDA_SUCCESS, "thread launch %d", i);
        check(A.cuLaunchKernel(fn, 0, 1, 1, 1, 1, 1, 0, s, NULL, NULL) == CUDA_ERROR_INVALID_VALUE, "refused %d", i);
    }
    check(A.cuStreamSynchronize(s) == CUDA_SUCCESS && A.cuStreamDestroy_v2(s) == CUDA_SUCCESS, "thread sync");
    return NULL;
}

/* 4 threads launch 50 kernels each (and 50 refused) and exit, then the main thread launches 50:
 * 250 launches. */
static void t_launchthreads(void)
{
    g_ctx = setup(0);
    CUmodule mod;
    CUfunction fn;
    check(A.cuModuleLoadData(&mod, "x") == CUDA_SUCCESS && A.cuModuleGetFunction(&fn, mod, "sleep_5") == CUDA_SUCCESS,
          "module");
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        check(pthread_create(&th[i], NULL, launch_worker, fn) == 0, "thread %d", i);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 50; i++)
        check(A.cuLaunchKernel(fn, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL) == CUDA_SUCCESS, "launch %d", i);
    check(A.cuStreamSynchronize(NULL) == CUDA_SUCCESS, "sync");
}

int main(int argc, char **argv)
{
    scenario = argc > 1 ? argv[1] : "contract";
    mode = argc > 2 ? argv[2] : "direct";
    load_api();
    static const test_scenario all[] = {{"contract", t_contract}, {"edge", t_edge}, {"paths", t_paths}, {"threads", t_threads},
               {"visible", t_visible}, {"shared", t_shared}, {"badenv", t_badenv}, {"passthrough", t_passthrough},
               {"primary", t_primary}, {"nvml", t_nvml}, {"nvmlonly", t_nvmlonly}, {"nonvml", t_nonvml}, {"oversub", t_oversub}, {"scrub", t_scrub}, {"churn", t_churn}, {"killloop", t_killloop}, {"groupused", t_groupused}, {"graph", t_graph}, {"graphpoll", t_graphpoll}, {"launch", t_launch}, {"launchthreads", t_launchthreads}};
    return run_scenario(all, sizeof all / sizeof all[0]);
}
