/*
 * fake_cuda_vmm.c: virtual memory management (cuMemCreate, cuMemAddressReserve, cuMemMap
 * & co.), the path PyTorch's expandable segments and NCCL use.
 *
 * Physical allocations (cuMemCreate) cost their size in device memory until released
 * and unmapped everywhere; address reservations cost nothing. A handle is backed by a
 * memfd, so mapping it really makes the bytes visible at the mapped address, and two
 * mappings of one handle share them, as on the GPU. A handle created asking for
 * CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR exports that memfd (a duplicate of it): another
 * process that imports it maps the same pages, as two processes share one allocation on a
 * GPU. The memfd's name carries the device ordinal ("fake-cuda-vmm-dev<N>"), which the
 * importer reads back from /proc/self/fd.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake_cuda_state.h"

static unsigned long long gran(void)
{
    return fake_state()->config.vmm_granularity;
}

static bool prop_ok(const CUmemAllocationProp *prop)
{
    return prop && prop->type == CU_MEM_ALLOCATION_TYPE_PINNED && prop->location.type == CU_MEM_LOCATION_TYPE_DEVICE &&
           (prop->requestedHandleTypes == CU_MEM_HANDLE_TYPE_NONE ||
            prop->requestedHandleTypes == CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR);
}

FAKE_EXPORT CUresult cuMemGetAllocationGranularity(size_t *granularity, const CUmemAllocationProp *prop,
                                                   CUmemAllocationGranularity_flags option)
{
    CUresult r = fake_enter("cuMemGetAllocationGranularity");
    if (r == CUDA_SUCCESS && (!granularity || !prop_ok(prop) || option > CU_MEM_ALLOC_GRANULARITY_RECOMMENDED))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && !fake_device_valid(prop->location.id))
        r = CUDA_ERROR_INVALID_DEVICE;
    if (r == CUDA_SUCCESS)
        *granularity = (size_t)gran(); /* minimum and recommended agree, as on an H100 */
    return fake_leave(r);
}

static fake_vmm_handle_t *handle_of(CUmemGenericAllocationHandle h)
{
    fake_vmm_handle_t *p = (fake_vmm_handle_t *)(uintptr_t)h;
    return fake_list_has(&fake_state()->vmm_handles, p) ? p : NULL;
}

static void handle_free(fake_vmm_handle_t *h)
{
    if (!h->imported)
        fake_uncharge(h->device, h->size);
    (void)close(h->fd);
    fake_list_remove(&fake_state()->vmm_handles, h);
    free(h);
}

FAKE_EXPORT CUresult cuMemCreate(CUmemGenericAllocationHandle *handle, size_t size, const CUmemAllocationProp *prop,
                                 unsigned long long flags)
{
    CUresult r = fake_enter("cuMemCreate");
    if (r == CUDA_SUCCESS && (!handle || !prop_ok(prop) || flags != 0 || size == 0 || size % gran() != 0))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && !fake_device_valid(prop->location.id))
        r = CUDA_ERROR_INVALID_DEVICE;
    if (r == CUDA_SUCCESS && fake_state()->config.no_shareable &&
        prop->requestedHandleTypes != CU_MEM_HANDLE_TYPE_NONE)
        r = CUDA_ERROR_NOT_SUPPORTED;
    if (r == CUDA_SUCCESS)
        r = fake_charge(prop->location.id, size);
    if (r != CUDA_SUCCESS)
        return fake_leave(r);
    fake_vmm_handle_t *h = calloc(1, sizeof *h);
    char name[40];
    (void)snprintf(name, sizeof name, "fake-cuda-vmm-dev%d", prop->location.id);
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (!h || fd < 0 || ftruncate(fd, (off_t)size) != 0) {
        free(h);
        if (fd >= 0)
            (void)close(fd);
        fake_uncharge(prop->location.id, size);
        return fake_leave(CUDA_ERROR_OUT_OF_MEMORY);
    }
    h->device = prop->location.id;
    h->size = size;
    h->fd = fd;
    h->shareable = prop->requestedHandleTypes == CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
    fake_list_add(&fake_state()->vmm_handles, h);
    *handle = (CUmemGenericAllocationHandle)(uintptr_t)h;
    return fake_leave(CUDA_SUCCESS);
}

/* The handle's memfd, duplicated into *(int *)shareableHandle: the caller owns (and closes) it. */
FAKE_EXPORT CUresult cuMemExportToShareableHandle(void *shareableHandle, CUmemGenericAllocationHandle handle,
                                                  CUmemAllocationHandleType handleType, unsigned long long flags)
{
    CUresult r = fake_enter("cuMemExportToShareableHandle");
    fake_vmm_handle_t *h = r == CUDA_SUCCESS ? handle_of(handle) : NULL;
    if (r == CUDA_SUCCESS && (!shareableHandle || !h || h->released || flags != 0))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && (handleType != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR || !h->shareable))
        r = CUDA_ERROR_INVALID_VALUE; /* as the driver: only a type asked for at cuMemCreate */
    if (r == CUDA_SUCCESS) {
        int fd = fcntl(h->fd, F_DUPFD_CLOEXEC, 0);
        if (fd < 0)
            r = CUDA_ERROR_OUT_OF_MEMORY;
        else
            *(int *)shareableHandle = fd;
    }
    return fake_leave(r);
}

/* Reads the device ordinal back from the memfd's name; -1 when fd is not one of ours. */
static int exported_device(int fd)
{
    char link[64], target[128];
    (void)snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0)
        return -1;
    target[n] = '\0';
    int dev = -1;
    return sscanf(target, "/memfd:fake-cuda-vmm-dev%d", &dev) == 1 ? dev : -1;
}

FAKE_EXPORT CUresult cuMemImportFromShareableHandle(CUmemGenericAllocationHandle *handle, void *osHandle,
                                                    CUmemAllocationHandleType shHandleType)
{
    CUresult r = fake_enter("cuMemImportFromShareableHandle");
    int fd = (int)(intptr_t)osHandle, dev = -1;
    struct stat st;
    if (r == CUDA_SUCCESS && (!handle || shHandleType != CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && (fd < 0 || fstat(fd, &st) != 0 || st.st_size <= 0 || (dev = exported_device(fd)) < 0))
        r = CUDA_ERROR_INVALID_VALUE; /* not an exported fake allocation */
    if (r == CUDA_SUCCESS && !fake_device_valid(dev))
        r = CUDA_ERROR_INVALID_DEVICE;
    if (r != CUDA_SUCCESS)
        return fake_leave(r);
    fake_vmm_handle_t *h = calloc(1, sizeof *h);
    int own = fcntl(fd, F_DUPFD_CLOEXEC, 0); /* the caller keeps (and closes) its fd, as with the driver */
    if (!h || own < 0) {
        free(h);
        if (own >= 0)
            (void)close(own);
        return fake_leave(CUDA_ERROR_OUT_OF_MEMORY);
    }
    h->device = dev;
    h->size = (size_t)st.st_size;
    h->fd = own;
    h->shareable = true;
    h->imported = true;
    fake_list_add(&fake_state()->vmm_handles, h);
    *handle = (CUmemGenericAllocationHandle)(uintptr_t)h;
    return fake_leave(CUDA_SUCCESS);
}

FAKE_EXPORT CUresult cuMemRelease(CUmemGenericAllocationHandle handle)
{
    CUresult r = fake_enter("cuMemRelease");
    fake_vmm_handle_t *h = r == CUDA_SUCCESS ? handle_of(handle) : NULL;
    if (r == CUDA_SUCCESS && (!h || h->released))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS) {
        h->released = true;
        if (h->maps == 0)
            handle_free(h); /* else the memory lives until its last mapping goes */
    }
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuMemAddressReserve(CUdeviceptr *ptr, size_t size, size_t alignment, CUdeviceptr addr,
                                         unsigned long long flags)
{
    (void)addr; /* a hint; the fake takes what mmap gives */
    CUresult r = fake_enter("cuMemAddressReserve");
    if (alignment == 0)
        alignment = (size_t)gran();
    if (r == CUDA_SUCCESS && (!ptr || size == 0 || size % gran() != 0 || flags != 0 ||
                              (alignment & (alignment - 1)) != 0))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r != CUDA_SUCCESS)
        return fake_leave(r);
    /* Over-reserve, then cut to an aligned window: PROT_NONE address space costs nothing. */
    size_t span = size + alignment;
    void *p = mmap(NULL, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    fake_va_t *va = calloc(1, sizeof *va);
    if (p == MAP_FAILED || !va) {
        if (p != MAP_FAILED)
            (void)munmap(p, span);
        free(va);
        return fake_leave(CUDA_ERROR_OUT_OF_MEMORY);
    }
    uintptr_t start = (uintptr_t)p, base = (start + alignment - 1) & ~(uintptr_t)(alignment - 1);
    if (base > start)
        (void)munmap(p, base - start);
    if (start + span > base + size)
        (void)munmap((void *)(base + size), start + span - (base + size));
    va->base = base;
    va->size = size;
    fake_list_add(&fake_state()->vas, va);
    *ptr = (CUdeviceptr)base;
    return fake_leave(CUDA_SUCCESS);
}

static bool overlaps_mapping(uintptr_t base, size_t size)
{
    FAKE_FOREACH(fake_mapping_t, m, &fake_state()->mappings)
    if (base < m->base + m->size && m->base < base + size)
        return true;
    return false;
}

FAKE_EXPORT CUresult cuMemAddressFree(CUdeviceptr ptr, size_t size)
{
    CUresult r = fake_enter("cuMemAddressFree");
    fake_va_t *found = NULL;
    FAKE_FOREACH(fake_va_t, va, &fake_state()->vas)
    if (va->base == ptr && va->size == size)
        found = va;
    if (r == CUDA_SUCCESS && (!found || overlaps_mapping(ptr, size)))
        r = CUDA_ERROR_INVALID_VALUE; /* unknown range, or still mapped */
    if (r == CUDA_SUCCESS) {
        (void)munmap((void *)found->base, found->size);
        fake_list_remove(&fake_state()->vas, found);
        free(found);
    }
    return fake_leave(r);
}

static bool inside_reservation(uintptr_t base, size_t size)
{
    FAKE_FOREACH(fake_va_t, va, &fake_state()->vas)
    if (base >= va->base && size <= va->size && base - va->base <= va->size - size)
        return true;
    return false;
}

FAKE_EXPORT CUresult cuMemMap(CUdeviceptr ptr, size_t size, size_t offset, CUmemGenericAllocationHandle handle,
                              unsigned long long flags)
{
    CUresult r = fake_enter("cuMemMap");
    fake_vmm_handle_t *h = r == CUDA_SUCCESS ? handle_of(handle) : NULL;
    if (r == CUDA_SUCCESS && (!h || h->released || flags != 0 || size == 0 || size % gran() || offset % gran() ||
                              ptr % gran() || offset > h->size || size > h->size - offset))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && (!inside_reservation(ptr, size) || overlaps_mapping(ptr, size)))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r != CUDA_SUCCESS)
        return fake_leave(r);
    fake_mapping_t *m = calloc(1, sizeof *m);
    void *p = m ? mmap((void *)(uintptr_t)ptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, h->fd,
                       (off_t)offset)
                : MAP_FAILED;
    if (p == MAP_FAILED) {
        free(m);
        return fake_leave(CUDA_ERROR_OUT_OF_MEMORY);
    }
    m->base = ptr;
    m->size = size;
    m->handle = h;
    h->maps++;
    fake_list_add(&fake_state()->mappings, m);
    return fake_leave(CUDA_SUCCESS);
}

FAKE_EXPORT CUresult cuMemUnmap(CUdeviceptr ptr, size_t size)
{
    fake_cuda_state_t *st = fake_state();
    CUresult r = fake_enter("cuMemUnmap");
    if (r != CUDA_SUCCESS)
        return fake_leave(r);
    /* The range must be exactly covered by whole mappings. */
    size_t covered = 0;
    FAKE_FOREACH(fake_mapping_t, m, &st->mappings)
    if (m->base < ptr + size && ptr < m->base + m->size) {
        if (m->base < ptr || m->base + m->size > ptr + size)
            return fake_leave(CUDA_ERROR_INVALID_VALUE);
        covered += m->size;
    }
    if (size == 0 || covered != size)
        return fake_leave(CUDA_ERROR_INVALID_VALUE);
    FAKE_FOREACH(fake_mapping_t, m, &st->mappings)
    if (m->base >= ptr && m->base < ptr + size) {
        /* Back to reserved-only address space. */
        (void)mmap((void *)m->base, m->size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
        fake_vmm_handle_t *h = m->handle;
        if (--h->maps == 0 && h->released)
            handle_free(h);
        fake_list_remove(&st->mappings, m);
        free(m);
    }
    return fake_leave(CUDA_SUCCESS);
}

FAKE_EXPORT CUresult cuMemSetAccess(CUdeviceptr ptr, size_t size, const CUmemAccessDesc *desc, size_t count)
{
    CUresult r = fake_enter("cuMemSetAccess");
    if (r == CUDA_SUCCESS && (!desc || count == 0 || size == 0))
        r = CUDA_ERROR_INVALID_VALUE;
    for (size_t i = 0; r == CUDA_SUCCESS && i < count; i++)
        if (desc[i].location.type != CU_MEM_LOCATION_TYPE_DEVICE || !fake_device_valid(desc[i].location.id) ||
            desc[i].flags > CU_MEM_ACCESS_FLAGS_PROT_READWRITE)
            r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && !fake_range_valid(ptr, size))
        r = CUDA_ERROR_INVALID_VALUE; /* must be mapped; access rights themselves are not modelled */
    return fake_leave(r);
}
