/*
 * test_client_unified.c: how the client tells device from host addresses for cuMemcpy's
 * default direction (client_unified.c), under ASan and UBSan, with the copies it would make
 * recorded instead of sent: allocations' reserved ranges, module and library globals (device
 * while this process has no memory on their pages; forgotten at unload; a stale global
 * replaced by whatever the worker hands out at its addresses later), and the host memmove for
 * two host addresses.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include "client.h"

#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int failures;
static void check_at(int line, int ok, const char *what) {
    if (ok) return;
    printf("test_client_unified: FAIL line %d: %s\n", line, what);
    failures++;
}
#define CHECK(cond) check_at(__LINE__, (cond) != 0, #cond)

/* What the client would have sent: the last copy's kind ('H' host to device, 'D' device to
 * host, 'd' device to device) and its addresses. */
static char last_kind;
static uint64_t last_dst, last_src;
static CUresult seen(char kind, uint64_t dst, uint64_t src) {
    last_kind = kind, last_dst = dst, last_src = src;
    return CUDA_SUCCESS;
}
CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src, size_t n) { (void)n; return seen('H', dst, (uintptr_t)src); }
CUresult cuMemcpyDtoH_v2(void *dst, CUdeviceptr src, size_t n) { (void)n; return seen('D', (uintptr_t)dst, src); }
CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n) { (void)n; return seen('d', dst, src); }
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src, size_t n, CUstream s) { (void)s; return cuMemcpyHtoD_v2(dst, src, n); }
CUresult cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t n, CUstream s) { (void)s; return cuMemcpyDtoH_v2(dst, src, n); }
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) { (void)s; return cuMemcpyDtoD_v2(dst, src, n); }
CUresult cuStreamSynchronize(CUstream s) { (void)s; return CUDA_SUCCESS; }
void gsr_log_once(const char *what, int *logged) { (void)what, (void)logged; }
CUresult cuMemcpy(CUdeviceptr dst, CUdeviceptr src, size_t ByteCount);

/* An address range no memory of this process lies in: mapped, then unmapped. */
static uint64_t free_range(size_t bytes) {
    void *p = mmap(NULL, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(p != MAP_FAILED);
    munmap(p, bytes);
    return (uintptr_t)p;
}

int main(void) {
    static unsigned char host[64];
    const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    uint64_t a = free_range(16 * page);

    /* A global (not on a page boundary) is device memory to cuMemcpy, both ways. */
    uint64_t g = a + 2 * page + 0x10;
    gsr_device_global_add(g, 0x100, 7);
    last_kind = 0;
    CHECK(cuMemcpy(g + 8, (uintptr_t)host, 16) == CUDA_SUCCESS && last_kind == 'H' && last_dst == g + 8);
    CHECK(cuMemcpy((uintptr_t)host, g, 16) == CUDA_SUCCESS && last_kind == 'D' && last_src == g);
    gsr_device_global_add(g, 0x100, 7); /* asked again: the same record */
    CHECK(cuMemcpy(g, (uintptr_t)host, 16) == CUDA_SUCCESS && last_kind == 'H');

    /* This process's memory on the global's page: refused, never guessed. */
    void *clash = mmap((void *)(uintptr_t)(a + 2 * page), page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK(clash != MAP_FAILED);
    last_kind = 0;
    CHECK(cuMemcpy(g, (uintptr_t)host, 16) == CUDA_ERROR_NOT_SUPPORTED && last_kind == 0);
    munmap(clash, page);

    /* Unloaded: its addresses are no device memory of the session any more (a host copy). */
    gsr_device_globals_forget(7);
    static unsigned char h2[16];
    last_kind = 0;
    CHECK(cuMemcpy((uintptr_t)h2, (uintptr_t)host, 16) == CUDA_SUCCESS && last_kind == 0);

    /* A stale global (its context went without an unload) under a new allocation: the
     * allocation's range wins, every address of it a device address. */
    gsr_device_global_add(a + 0x2000, 0x100, 9);
    gsr_device_range_add(a, 16 * page);
    last_kind = 0;
    CHECK(cuMemcpy(a + 0x5000, (uintptr_t)host, 16) == CUDA_SUCCESS && last_kind == 'H');
    CHECK(cuMemcpy(a + 0x2010, (uintptr_t)host, 16) == CUDA_SUCCESS && last_kind == 'H');
    gsr_device_range_remove(a);

    /* A stale global replaced by a larger one at the same address: all of it recorded. */
    uint64_t b = free_range(4 * page);
    gsr_device_global_add(b, 0x40, 11);
    gsr_device_global_add(b, 2 * page, 12);
    last_kind = 0;
    CHECK(cuMemcpy(b + page + 8, (uintptr_t)host, 16) == CUDA_SUCCESS && last_kind == 'H');
    gsr_device_globals_forget(11);
    CHECK(cuMemcpy(b + page + 8, (uintptr_t)host, 16) == CUDA_SUCCESS && last_kind == 'H'); /* 12's, kept */
    gsr_device_globals_forget(12);

    if (failures) return 1;
    printf("test_client_unified: PASS (globals as device addresses, clashes refused, unload, stale records replaced)\n");
    return 0;
}
