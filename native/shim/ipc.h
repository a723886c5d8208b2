/*
 * ipc.h: CUDA IPC handles for swappable allocations (ipc.c, SWAP.md "Sharing memory between
 * processes"), and what ipc.c needs of swap.c.
 */
#ifndef GS_IPC_H
#define GS_IPC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "gs_cuda.h"

/* Mappings of this process's swappable memory open in other processes now (each importer's
 * connection while it holds one). A swap-out is refused while any is (swap.c). */
extern _Atomic int gs_ipc_live;

/* The handle type swappable memory of dev is created with: CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR
 * where the device supports it and the driver has not refused it, else CU_MEM_HANDLE_TYPE_NONE. */
CUmemAllocationHandleType gs_ipc_handle_type(CUdevice dev);
/* The driver refused to create shareable memory on dev (error r): later allocations there are
 * created without a handle type (and cannot be shared); said once. */
void gs_ipc_not_shareable(CUdevice dev, CUresult r);
/* The allocation at base was freed: its handles open nothing any more (a later allocation may
 * get the same address). */
void gs_ipc_forget(CUdeviceptr base);

/* swap.c: the swappable allocation holding ptr (its base, mapped size, device, and whether it
 * was created shareable); false when ptr is in none. */
bool gs_swap_find(CUdeviceptr ptr, CUdeviceptr *base, size_t *size, CUdevice *dev, bool *shareable);
/* swap.c: a file descriptor for the physical memory of the allocation at base (waits while the
 * slice is swapped out), its mapped size, and gs_ipc_live counted up by one; the caller owns
 * the descriptor. */
CUresult gs_swap_export(CUdeviceptr base, int *fd, size_t *size);

#endif /* GS_IPC_H */
