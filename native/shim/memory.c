/*
 * memory.c: allocation and free policies: plain, pitch, managed, VMM physical memory and
 * arrays. Each allocation reserves its bytes in the region before the driver is asked
 * (so two threads or processes can never both pass the limit), commits them when the
 * driver succeeded, cancels them when it failed, and remembers what it took (track.c) so
 * the free gives back exactly that. Frees of pointers we never saw pass through.
 *
 * Why one file of over 400 lines: every allocation family follows that one reserve, commit,
 * cancel pattern with its own size arithmetic; kept together, the pattern is read once.
 */
#include "hooks.h"
#include "log.h"
#include "scrub.h"
#include "state.h"
#include "ipc.h"
#include "swap.h"
#include "track.h"

/* One allocation in progress. */
typedef struct acct {
    int dev;
    CUcontext ctx;
    int st; /* 0: reserved (commit or cancel r); 1: refused; -1: not accounted */
    gs_region_reservation r;
} acct;

/* The current context (NULL when none or on error). */
static CUcontext current_ctx(void)
{
    const gs_real_fns *R = gs_real();
    CUcontext c = NULL;
    if (R->cuCtxGetCurrent == NULL || R->cuCtxGetCurrent(&c) != CUDA_SUCCESS)
        return NULL;
    return c;
}

/* Reserves on the current context's device; false when the limit refuses. */
static bool acct_begin_ex(acct *a, gs_region_kind kind, uint64_t bytes, bool quiet)
{
    a->ctx = current_ctx();
    a->dev = a->ctx != NULL ? gs_current_device() : -1;
    a->st = a->dev >= 0 ? gs_reserve_ex(a->dev, kind, bytes, &a->r, quiet) : -1;
    return a->st != 1;
}

static bool acct_begin(acct *a, gs_region_kind kind, uint64_t bytes)
{
    return acct_begin_ex(a, kind, bytes, false);
}

/* The driver answered: commit and remember `key`, or cancel. */
static void acct_end(acct *a, CUresult r, gs_space space, uint64_t key)
{
    if (a->st != 0)
        return;
    if (r != CUDA_SUCCESS) {
        gs_cancel(&a->r);
        return;
    }
    gs_commit(&a->r);
    gs_track_entry e = {.dev = a->dev, .kind = (gs_region_kind)a->r.kind, .bytes = a->r.bytes, .ctx = a->ctx};
    if (!gs_track_put(space, key, &e))
        gs_release(a->dev, e.kind, e.bytes); /* cannot remember it: do not hold it forever */
}

/*
 * The driver took `actual` bytes where we reserved a->r.bytes: settle before committing.
 * More: reserve the difference (false when the limit refuses it: the caller frees).
 * Less: commit, then give the surplus back (briefly over-counted, never under-counted).
 */
static bool acct_settle(acct *a, uint64_t actual)
{
    if (a->st != 0 || actual == a->r.bytes)
        return true;
    if (actual > a->r.bytes) {
        gs_region_reservation extra;
        int st = gs_reserve(a->dev, (gs_region_kind)a->r.kind, actual - a->r.bytes, &extra);
        if (st == 1)
            return false;
        if (st == 0)
            gs_commit(&extra);
        gs_commit(&a->r);
    } else {
        gs_commit(&a->r);
        gs_release(a->dev, (gs_region_kind)a->r.kind, a->r.bytes - actual);
    }
    a->st = 2; /* committed */
    a->r.bytes = actual;
    return true;
}

static void acct_remember(acct *a, gs_space space, uint64_t key)
{
    if (a->st == 0) {
        acct_end(a, CUDA_SUCCESS, space, key);
    } else if (a->st == 2) {
        gs_track_entry e = {.dev = a->dev, .kind = (gs_region_kind)a->r.kind, .bytes = a->r.bytes, .ctx = a->ctx};
        if (!gs_track_put(space, key, &e))
            gs_release(a->dev, e.kind, e.bytes);
    }
}

/* Gives back what `key` took once the driver freed it; on failure it stays taken. */
typedef struct untrack {
    bool known;
    gs_space space;
    uint64_t key;
    gs_track_entry e;
} untrack;

static untrack untrack_begin(gs_space space, uint64_t key)
{
    untrack u = {.space = space, .key = key};
    /* Forget first: once the driver frees it, another thread may get the same pointer. */
    u.known = gs_track_take(space, key, &u.e);
    return u;
}

static void untrack_end(const untrack *u, CUresult r)
{
    if (!u->known)
        return;
    if (r == CUDA_SUCCESS)
        gs_release(u->e.dev, u->e.kind, u->e.bytes);
    else
        (void)gs_track_put(u->space, u->key, &u->e);
}

/* ---- oversubscription: past the limit, managed memory kept on the host ---------------- */

/* Asks the driver to keep [p, p+n) on the host and to map it for dev (so kernels read it
 * over the bus instead of migrating it). CUDA 12.2+ takes a CUmemLocation (cuMemAdvise_v2);
 * older drivers take CU_DEVICE_CPU. Advice is a hint: failures change nothing we count. */
static void keep_on_host(CUdeviceptr p, size_t n, int dev)
{
    const gs_real_fns *R = gs_real();
    CUmemLocation host = {.type = CU_MEM_LOCATION_TYPE_HOST, .id = 0};
    CUmemLocation device = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = dev};
    if (R->cuMemAdvise_v2(p, n, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, host) != CUDA_SUCCESS)
        (void)R->cuMemAdvise(p, n, CU_MEM_ADVISE_SET_PREFERRED_LOCATION, CU_DEVICE_CPU);
    if (R->cuMemAdvise_v2(p, n, CU_MEM_ADVISE_SET_ACCESSED_BY, device) != CUDA_SUCCESS)
        (void)R->cuMemAdvise(p, n, CU_MEM_ADVISE_SET_ACCESSED_BY, (CUdevice)dev);
}

/*
 * GPUSHARE_OVERSUBSCRIBE=1: an allocation the limit refused (`refused`: its device and
 * context) is served as managed memory advised to stay on the host, counted as kind HOST
 * (never against the limit) and freed by cuMemFree like any other pointer. When the driver
 * cannot give managed memory, the answer is the refusal: CUDA_ERROR_OUT_OF_MEMORY.
 */
static CUresult host_backed(CUdeviceptr *dptr, size_t bytes, unsigned int flags, const acct *refused)
{
    const gs_real_fns *R = gs_real();
    acct h = {.dev = refused->dev, .ctx = refused->ctx};
    h.st = gs_reserve(h.dev, GS_REGION_KIND_HOST, bytes, &h.r);
    CUresult r = h.st == 1 ? CUDA_ERROR_OUT_OF_MEMORY : R->cuMemAllocManaged(dptr, bytes, flags);
    char b[48];
    if (r != CUDA_SUCCESS) {
        acct_end(&h, r, GS_SPACE_PTR, 0);
        gs_log(GS_LOG_WARN, "device %d: %s past the limit; host-backed memory failed too (%d)", h.dev,
               gs_human_bytes(bytes, b, sizeof b), (int)r);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    keep_on_host(*dptr, bytes, h.dev);
    acct_end(&h, r, GS_SPACE_PTR, (uint64_t)*dptr);
    gs_log(GS_LOG_INFO, "device %d: %s past the limit served from host memory (GPUSHARE_OVERSUBSCRIBE)", h.dev,
           gs_human_bytes(bytes, b, sizeof b));
    return CUDA_SUCCESS;
}

/* ---- plain and managed -------------------------------------------------------------- */

/* cuMemAlloc_v2: swappable (swap.c) under GPUSHARE_SWAP when the allocation can be, else
 * the driver's. */
static CUresult plain_alloc(gs_fn_cuMemAlloc_v2 plain, CUdeviceptr *dptr, size_t bytesize)
{
    if (gs_swap_on()) {
        CUresult r = gs_swap_alloc(dptr, bytesize);
        if (r != CUDA_ERROR_NOT_SUPPORTED)
            return r;
    }
    return plain(dptr, bytesize);
}

/* cuMemAlloc_v2 (plain) or cuMemAllocManaged (managed): counted; past the limit with
 * GPUSHARE_OVERSUBSCRIBE, host-backed. */
static CUresult device_alloc(gs_fn_cuMemAlloc_v2 plain, gs_fn_cuMemAllocManaged managed, CUdeviceptr *dptr,
                             size_t bytesize, unsigned int flags)
{
    acct a;
    if (acct_begin_ex(&a, GS_REGION_KIND_ALLOC, bytesize, gs_cfg.oversubscribe)) {
        CUresult r = managed != NULL ? managed(dptr, bytesize, flags) : plain_alloc(plain, dptr, bytesize);
        acct_end(&a, r, GS_SPACE_PTR, r == CUDA_SUCCESS ? (uint64_t)*dptr : 0);
        return r;
    }
    if (gs_cfg.oversubscribe && dptr != NULL && bytesize > 0)
        return host_backed(dptr, bytesize, flags, &a);
    return CUDA_ERROR_OUT_OF_MEMORY;
}

CUresult gs_memory_alloc(gs_fn_cuMemAlloc_v2 real, CUdeviceptr *dptr, size_t bytesize)
{
    return device_alloc(real, NULL, dptr, bytesize, CU_MEM_ATTACH_GLOBAL);
}

/* Managed memory counts as device memory: it may all become resident. Past the limit with
 * GPUSHARE_OVERSUBSCRIBE it is the same managed memory, advised to stay on the host. */
CUresult gs_memory_alloc_managed(gs_fn_cuMemAllocManaged real, CUdeviceptr *dptr, size_t bytesize, unsigned int flags)
{
    /* On an overcommitted GPU the daemon makes room by swapping slices, which moves no managed
     * memory: more than the card has free would leave the driver evicting pages under everyone
     * (SWAP.md, "Memory overcommit"). */
    size_t free = 0, total = 0;
    if (gs_cfg.overcommit && bytesize > 0 && gs_real()->cuMemGetInfo_v2(&free, &total) == CUDA_SUCCESS &&
        bytesize > free) {
        char a[48], f[48];
        gs_log(GS_LOG_WARN, "managed memory of %s refused: this GPU is overcommitted (GPUSHARE_OVERCOMMIT) and has %s free",
               gs_human_bytes(bytesize, a, sizeof a), gs_human_bytes(free, f, sizeof f));
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    return device_alloc(NULL, real, dptr, bytesize, flags);
}

/* The pre-3.2 ABI (32-bit pointers): never host-backed (managed addresses do not fit). */
CUresult gs_memory_alloc_v1(gs_fn_cuMemAlloc real, CUdeviceptr_v1 *dptr, unsigned int bytesize)
{
    acct a;
    if (!acct_begin(&a, GS_REGION_KIND_ALLOC, bytesize))
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult r = real(dptr, bytesize);
    acct_end(&a, r, GS_SPACE_PTR, r == CUDA_SUCCESS ? (uint64_t)*dptr : 0);
    return r;
}

/* Before the driver frees p: what it took, forgotten (and p zeroed under GPUSHARE_SCRUB). */
static untrack free_begin(CUdeviceptr p)
{
    untrack u = untrack_begin(GS_SPACE_PTR, (uint64_t)p);
    gs_scrub_before_free(p, u.known ? &u.e : NULL);
    return u;
}

CUresult gs_memory_free(gs_fn_cuMemFree_v2 real, CUdeviceptr dptr)
{
    untrack u = free_begin(dptr);
    bool swappable = false;
    CUresult r = gs_swap_on() ? gs_swap_free(dptr, &swappable) : CUDA_SUCCESS;
    if (!swappable)
        r = real(dptr);
    else if (r == CUDA_SUCCESS)
        gs_ipc_forget(dptr); /* its IPC handles open nothing now (ipc.c) */
    untrack_end(&u, r);
    return r;
}

CUresult gs_memory_free_v1(gs_fn_cuMemFree real, CUdeviceptr_v1 dptr)
{
    untrack u = free_begin((CUdeviceptr)dptr);
    CUresult r = real(dptr);
    untrack_end(&u, r);
    return r;
}

/* ---- pitch ---------------------------------------------------------------------------- */

/* The pitch is the driver's choice (at most 512-byte alignment on current GPUs), so we
 * reserve round_up(width, 512) x height, then settle to the real pitch x height. When that
 * bound is refused but width x height would fit, we reserve that, allocate, and settle
 * (which frees and refuses if the real size does not fit). */
typedef CUresult (*pitch_call)(const gs_real_fns *R, void *dptr, void *pitch, size_t w, size_t h, unsigned elem,
                               uint64_t *actual_pitch, uint64_t *ptr);

static CUresult pitch_v2(const gs_real_fns *R, void *dptr, void *pitch, size_t w, size_t h, unsigned elem,
                         uint64_t *actual_pitch, uint64_t *ptr)
{
    CUresult r = R->cuMemAllocPitch_v2(dptr, pitch, w, h, elem);
    if (r == CUDA_SUCCESS) {
        *actual_pitch = *(size_t *)pitch;
        *ptr = *(CUdeviceptr *)dptr;
    }
    return r;
}

static CUresult pitch_v1(const gs_real_fns *R, void *dptr, void *pitch, size_t w, size_t h, unsigned elem,
                         uint64_t *actual_pitch, uint64_t *ptr)
{
    CUresult r = R->cuMemAllocPitch(dptr, pitch, (unsigned)w, (unsigned)h, elem);
    if (r == CUDA_SUCCESS) {
        *actual_pitch = *(unsigned int *)pitch;
        *ptr = *(CUdeviceptr_v1 *)dptr;
    }
    return r;
}

static CUresult pitch_alloc(pitch_call call, void *dptr, void *pitch, size_t w, size_t h, unsigned elem)
{
    const gs_real_fns *R = gs_real();
    uint64_t upper = ((uint64_t)w + 511u) / 512u * 512u, lower = (uint64_t)w;
    if (h != 0 && (upper > UINT64_MAX / h))
        upper = lower = UINT64_MAX / h; /* absurd: the driver refuses it */
    acct a;
    /* Host-backed pitched memory is linear memory at the widest pitch the driver would
     * choose (512); only for the 64-bit ABI (managed addresses do not fit 32 bits). */
    bool host_ok = gs_cfg.oversubscribe && call == pitch_v2 && w > 0 && h > 0 && (elem == 4 || elem == 8 || elem == 16) &&
                   upper * h <= SIZE_MAX;
    if (!acct_begin_ex(&a, GS_REGION_KIND_ALLOC, upper * h, true) &&
        !acct_begin_ex(&a, GS_REGION_KIND_ALLOC, lower * h, host_ok)) {
        if (!host_ok)
            return CUDA_ERROR_OUT_OF_MEMORY;
        CUresult r = host_backed(dptr, (size_t)(upper * h), CU_MEM_ATTACH_GLOBAL, &a);
        if (r == CUDA_SUCCESS)
            *(size_t *)pitch = (size_t)upper;
        return r;
    }
    uint64_t p = 0, ptr = 0;
    CUresult r = call(R, dptr, pitch, w, h, elem, &p, &ptr);
    if (r != CUDA_SUCCESS) {
        acct_end(&a, r, GS_SPACE_PTR, 0);
        return r;
    }
    if (!acct_settle(&a, p * h)) {
        (void)R->cuMemFree_v2((CUdeviceptr)ptr);
        gs_cancel(&a.r);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    acct_remember(&a, GS_SPACE_PTR, ptr);
    return r;
}

CUresult gs_memory_alloc_pitch(gs_fn_cuMemAllocPitch_v2 real, CUdeviceptr *dptr, size_t *pPitch, size_t WidthInBytes,
                               size_t Height, unsigned int ElementSizeBytes)
{
    return dptr && pPitch ? pitch_alloc(pitch_v2, dptr, pPitch, WidthInBytes, Height, ElementSizeBytes)
                          : real(dptr, pPitch, WidthInBytes, Height, ElementSizeBytes);
}

CUresult gs_memory_alloc_pitch_v1(gs_fn_cuMemAllocPitch real, CUdeviceptr_v1 *dptr, unsigned int *pPitch,
                                  unsigned int WidthInBytes, unsigned int Height, unsigned int ElementSizeBytes)
{
    return dptr && pPitch ? pitch_alloc(pitch_v1, dptr, pPitch, WidthInBytes, Height, ElementSizeBytes)
                          : real(dptr, pPitch, WidthInBytes, Height, ElementSizeBytes);
}

/* ---- virtual memory management: physical memory only ---------------------------------- */

/* cuMemCreate takes physical memory on prop->location (address reservations and mappings
 * cost nothing); it is counted until cuMemRelease, whatever the current context. */
CUresult gs_memory_create(gs_fn_cuMemCreate real, CUmemGenericAllocationHandle *handle, size_t size,
                          const CUmemAllocationProp *prop, unsigned long long flags)
{
    if (prop == NULL || handle == NULL || prop->location.type != CU_MEM_LOCATION_TYPE_DEVICE)
        return real(handle, size, prop, flags);
    acct a = {.dev = prop->location.id, .ctx = NULL};
    a.st = gs_reserve(a.dev, GS_REGION_KIND_VMM, size, &a.r);
    if (a.st == 1)
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult r = real(handle, size, prop, flags);
    acct_end(&a, r, GS_SPACE_VMM, r == CUDA_SUCCESS ? (uint64_t)*handle : 0);
    return r;
}

/* cuMemRelease: vmm.c (a released handle may live on in its mappings). */

/* ---- arrays ----------------------------------------------------------------------------- */

/* Bytes of one element (all channels), or 0 for formats we cannot size (video formats):
 * those pass through uncounted. *block: 4x4 block-compressed, bytes per block. */
static uint64_t element_bytes(CUarray_format f, unsigned channels, unsigned *block)
{
    *block = 0;
    switch (f) {
    case CU_AD_FORMAT_UNSIGNED_INT8:
    case CU_AD_FORMAT_SIGNED_INT8: return channels;
    case CU_AD_FORMAT_UNSIGNED_INT16:
    case CU_AD_FORMAT_SIGNED_INT16:
    case CU_AD_FORMAT_HALF: return 2ull * channels;
    case CU_AD_FORMAT_UNSIGNED_INT32:
    case CU_AD_FORMAT_SIGNED_INT32:
    case CU_AD_FORMAT_FLOAT: return 4ull * channels;
    case CU_AD_FORMAT_UNORM_INT8X1:
    case CU_AD_FORMAT_SNORM_INT8X1: return 1;
    case CU_AD_FORMAT_UNORM_INT8X2:
    case CU_AD_FORMAT_SNORM_INT8X2:
    case CU_AD_FORMAT_UNORM_INT16X1:
    case CU_AD_FORMAT_SNORM_INT16X1: return 2;
    case CU_AD_FORMAT_UNORM_INT8X4:
    case CU_AD_FORMAT_SNORM_INT8X4:
    case CU_AD_FORMAT_UNORM_INT16X2:
    case CU_AD_FORMAT_SNORM_INT16X2:
    case CU_AD_FORMAT_UNORM_INT_101010_2: return 4;
    case CU_AD_FORMAT_UNORM_INT16X4:
    case CU_AD_FORMAT_SNORM_INT16X4: return 8;
    case CU_AD_FORMAT_BC1_UNORM:
    case CU_AD_FORMAT_BC1_UNORM_SRGB:
    case CU_AD_FORMAT_BC4_UNORM:
    case CU_AD_FORMAT_BC4_SNORM: *block = 8; return 8;
    case CU_AD_FORMAT_BC2_UNORM:
    case CU_AD_FORMAT_BC2_UNORM_SRGB:
    case CU_AD_FORMAT_BC3_UNORM:
    case CU_AD_FORMAT_BC3_UNORM_SRGB:
    case CU_AD_FORMAT_BC5_UNORM:
    case CU_AD_FORMAT_BC5_SNORM:
    case CU_AD_FORMAT_BC6H_UF16:
    case CU_AD_FORMAT_BC6H_SF16:
    case CU_AD_FORMAT_BC7_UNORM:
    case CU_AD_FORMAT_BC7_UNORM_SRGB: *block = 16; return 16;
    default: return 0;
    }
}

/* Bytes of a w x h x d array (h, d: 0 means 1); 0 when unknown or absurd. */
static uint64_t level_bytes(uint64_t w, uint64_t h, uint64_t d, CUarray_format f, unsigned channels)
{
    unsigned block;
    uint64_t e = element_bytes(f, channels, &block);
    h = h ? h : 1;
    d = d ? d : 1;
    if (e == 0)
        return 0;
    uint64_t row = block ? (w + 3) / 4 * e : w * e;
    if (block)
        h = (h + 3) / 4;
    if (row != 0 && (h > UINT64_MAX / row || row * h > UINT64_MAX / d))
        return 0;
    return row * h * d;
}

/* A mipmapped array: the sum of its levels, each halving width/height (and depth, unless
 * the depth counts layers or cube faces), never below 1. */
static uint64_t mipmap_bytes(const CUDA_ARRAY3D_DESCRIPTOR *desc, unsigned levels)
{
    uint64_t sum = 0, w = desc->Width, h = desc->Height, d = desc->Depth;
    bool layers = (desc->Flags & (CUDA_ARRAY3D_LAYERED | CUDA_ARRAY3D_CUBEMAP)) != 0;
    for (unsigned l = 0; l < (levels ? levels : 1u); l++) {
        uint64_t b = level_bytes(w, h, d, desc->Format, desc->NumChannels);
        if (b == 0 || sum > UINT64_MAX - b)
            return 0;
        sum += b;
        w = w > 1 ? w / 2 : 1;
        h = h > 1 ? h / 2 : h;
        if (!layers)
            d = d > 1 ? d / 2 : d;
    }
    return sum;
}

/* One array creation: its driver call (one of the create_* members, with its handle and
 * descriptor) and where the handle goes. */
typedef struct array_args {
    CUarray *ph;
    CUmipmappedArray *pm; /* a mipmapped array's handle (else ph) */
    const CUDA_ARRAY_DESCRIPTOR *d2;
    const CUDA_ARRAY3D_DESCRIPTOR *d3;
    const CUDA_ARRAY_DESCRIPTOR_v1 *d2v1;
    const CUDA_ARRAY3D_DESCRIPTOR_v1 *d3v1;
    unsigned levels;
    gs_fn_cuArrayCreate_v2 create_2d;
    gs_fn_cuArray3DCreate_v2 create_3d;
    gs_fn_cuArrayCreate create_2d_v1;
    gs_fn_cuArray3DCreate create_3d_v1;
    gs_fn_cuMipmappedArrayCreate create_mip;
} array_args;

static CUresult array_create(const array_args *a)
{
    if (a->create_2d != NULL)
        return a->create_2d(a->ph, a->d2);
    if (a->create_3d != NULL)
        return a->create_3d(a->ph, a->d3);
    if (a->create_2d_v1 != NULL)
        return a->create_2d_v1(a->ph, a->d2v1);
    if (a->create_3d_v1 != NULL)
        return a->create_3d_v1(a->ph, a->d3v1);
    return a->create_mip(a->pm, a->d3, a->levels);
}

/* Shared by the array creators: reserve the computed size, create, commit or cancel. Zero
 * bytes (no handle or descriptor, or a format we cannot size): the driver decides, uncounted. */
static CUresult array_alloc(uint64_t bytes, const array_args *args)
{
    acct a;
    if (bytes == 0)
        return array_create(args);
    if (!acct_begin(&a, GS_REGION_KIND_ARRAY, bytes))
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult r = array_create(args);
    if (args->pm != NULL)
        acct_end(&a, r, GS_SPACE_MIPMAP, r == CUDA_SUCCESS ? (uint64_t)(uintptr_t)*args->pm : 0);
    else
        acct_end(&a, r, GS_SPACE_ARRAY, r == CUDA_SUCCESS ? (uint64_t)(uintptr_t)*args->ph : 0);
    return r;
}

CUresult gs_memory_array_create(gs_fn_cuArrayCreate_v2 real, CUarray *pHandle, const CUDA_ARRAY_DESCRIPTOR *pAllocateArray)
{
    const CUDA_ARRAY_DESCRIPTOR *d = pAllocateArray;
    uint64_t bytes = pHandle && d ? level_bytes(d->Width, d->Height, 1, d->Format, d->NumChannels) : 0;
    return array_alloc(bytes, &(array_args){.ph = pHandle, .d2 = d, .create_2d = real});
}

CUresult gs_memory_array_3d_create(gs_fn_cuArray3DCreate_v2 real, CUarray *pHandle,
                                   const CUDA_ARRAY3D_DESCRIPTOR *pAllocateArray)
{
    uint64_t bytes = pHandle && pAllocateArray ? mipmap_bytes(pAllocateArray, 1) : 0;
    return array_alloc(bytes, &(array_args){.ph = pHandle, .d3 = pAllocateArray, .create_3d = real});
}

/* The pre-3.2 ABI (32-bit dimensions): libcuda still exports it for old binaries. */
CUresult gs_memory_array_create_v1(gs_fn_cuArrayCreate real, CUarray *pHandle,
                                   const CUDA_ARRAY_DESCRIPTOR_v1 *pAllocateArray)
{
    const CUDA_ARRAY_DESCRIPTOR_v1 *d = pAllocateArray;
    uint64_t bytes = pHandle && d ? level_bytes(d->Width, d->Height, 1, d->Format, d->NumChannels) : 0;
    return array_alloc(bytes, &(array_args){.ph = pHandle, .d2v1 = d, .create_2d_v1 = real});
}

CUresult gs_memory_array_3d_create_v1(gs_fn_cuArray3DCreate real, CUarray *pHandle,
                                      const CUDA_ARRAY3D_DESCRIPTOR_v1 *pAllocateArray)
{
    const CUDA_ARRAY3D_DESCRIPTOR_v1 *d = pAllocateArray;
    uint64_t bytes = 0;
    if (pHandle != NULL && d != NULL) {
        CUDA_ARRAY3D_DESCRIPTOR wide = {.Width = d->Width, .Height = d->Height, .Depth = d->Depth, .Format = d->Format,
                                        .NumChannels = d->NumChannels, .Flags = d->Flags};
        bytes = mipmap_bytes(&wide, 1);
    }
    return array_alloc(bytes, &(array_args){.ph = pHandle, .d3v1 = d, .create_3d_v1 = real});
}

CUresult gs_memory_mipmap_create(gs_fn_cuMipmappedArrayCreate real, CUmipmappedArray *pHandle,
                                 const CUDA_ARRAY3D_DESCRIPTOR *pMipmappedArrayDesc, unsigned int numMipmapLevels)
{
    uint64_t bytes = pHandle && pMipmappedArrayDesc ? mipmap_bytes(pMipmappedArrayDesc, numMipmapLevels) : 0;
    return array_alloc(bytes, &(array_args){.pm = pHandle, .d3 = pMipmappedArrayDesc, .levels = numMipmapLevels,
                                            .create_mip = real});
}

CUresult gs_memory_array_destroy(gs_fn_cuArrayDestroy real, CUarray hArray)
{
    untrack u = untrack_begin(GS_SPACE_ARRAY, (uint64_t)(uintptr_t)hArray);
    CUresult r = real(hArray);
    untrack_end(&u, r);
    return r;
}

CUresult gs_memory_mipmap_destroy(gs_fn_cuMipmappedArrayDestroy real, CUmipmappedArray hMipmappedArray)
{
    untrack u = untrack_begin(GS_SPACE_MIPMAP, (uint64_t)(uintptr_t)hMipmappedArray);
    CUresult r = real(hMipmappedArray);
    untrack_end(&u, r);
    return r;
}
