/*
 * fake_cuda_ipc.c: the legacy interprocess handles (cuIpcGetMemHandle & co.), as far as a
 * test of what passes through libgpushare needs them.
 *
 * As on the GPU, only a cuMemAlloc allocation's base has a handle: VMM memory (cuMemCreate
 * mapped into a reserved range) is refused with CUDA_ERROR_INVALID_VALUE, which is why
 * libgpushare serves its own swappable allocations' handles (native/shim/ipc.c). The handle
 * says "fakecuda-ipc", the exporter's pid, the base and the size. Opening one is not modelled
 * (plain fake allocations are private anonymous memory): a well-formed handle answers
 * CUDA_ERROR_NOT_SUPPORTED, so a test sees the call reached the fake; anything else is
 * CUDA_ERROR_INVALID_VALUE.
 */
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "fake_cuda_state.h"

#define FAKE_IPC_MAGIC "fakecuda-ipc"

typedef struct fake_ipc_handle {
    char magic[16];
    int32_t pid;
    uint32_t pad;
    uint64_t base;
    uint64_t size;
} fake_ipc_handle;
_Static_assert(sizeof(fake_ipc_handle) <= sizeof(CUipcMemHandle), "fits a CUipcMemHandle");

FAKE_EXPORT CUresult cuIpcGetMemHandle(CUipcMemHandle *pHandle, CUdeviceptr dptr)
{
    CUresult r = fake_enter("cuIpcGetMemHandle");
    struct CUctx_st *ctx;
    if (r == CUDA_SUCCESS)
        r = fake_need_ctx(&ctx);
    fake_alloc_t *a = r == CUDA_SUCCESS ? fake_alloc_find((uintptr_t)dptr) : NULL;
    if (r == CUDA_SUCCESS && (!pHandle || !a || a->kind != FAKE_ALLOC_PLAIN))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS) {
        fake_ipc_handle h;
        memset(&h, 0, sizeof h);
        memcpy(h.magic, FAKE_IPC_MAGIC, sizeof FAKE_IPC_MAGIC);
        h.pid = (int32_t)getpid();
        h.base = (uint64_t)a->base;
        h.size = (uint64_t)a->size;
        memset(pHandle, 0, sizeof *pHandle);
        memcpy(pHandle->reserved, &h, sizeof h);
    }
    return fake_leave(r);
}

static CUresult ipc_open(const char *fn, CUdeviceptr *pdptr, CUipcMemHandle handle, unsigned int Flags)
{
    CUresult r = fake_enter(fn);
    fake_ipc_handle h;
    memcpy(&h, handle.reserved, sizeof h);
    if (r == CUDA_SUCCESS && (!pdptr || Flags != CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS ||
                              memcmp(h.magic, FAKE_IPC_MAGIC, sizeof FAKE_IPC_MAGIC) != 0))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS)
        r = CUDA_ERROR_NOT_SUPPORTED; /* well formed; sharing plain memory is not modelled */
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuIpcOpenMemHandle_v2(CUdeviceptr *pdptr, CUipcMemHandle handle, unsigned int Flags)
{
    return ipc_open("cuIpcOpenMemHandle_v2", pdptr, handle, Flags);
}

FAKE_EXPORT CUresult cuIpcOpenMemHandle(CUdeviceptr *pdptr, CUipcMemHandle handle, unsigned int Flags)
{
    return ipc_open("cuIpcOpenMemHandle", pdptr, handle, Flags);
}

/* Nothing is ever opened here, so nothing can be closed. */
FAKE_EXPORT CUresult cuIpcCloseMemHandle(CUdeviceptr dptr)
{
    (void)dptr;
    CUresult r = fake_enter("cuIpcCloseMemHandle");
    if (r == CUDA_SUCCESS)
        r = CUDA_ERROR_INVALID_VALUE;
    return fake_leave(r);
}
