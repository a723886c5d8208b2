/*
 * swap.h: slice swap (swap.c, SWAP.md): with GPUSHARE_SWAP set, cuMemAlloc_v2 memory is built
 * from VMM pieces whose addresses survive a swap, and the daemon swaps the process's slice out
 * to pinned host memory and back in through a control socket.
 */
#ifndef GS_SWAP_H
#define GS_SWAP_H

#include <stdatomic.h>
#include <stdbool.h>

#include "gs_cuda.h"

/* Non-zero while a swap holds the program (from the drain of a swap-out to the end of the
 * swap-in): the held hooks wait in gs_swap_wait_slow. One load on every held call. */
extern _Atomic int gs_swap_held;

/* Waits until no swap holds the program. */
void gs_swap_wait_slow(void);
static inline void gs_swap_wait(void)
{
    if (__builtin_expect(atomic_load_explicit(&gs_swap_held, memory_order_acquire) != 0, 0))
        gs_swap_wait_slow();
}

/* Whether cuMemAlloc_v2 goes through gs_swap_alloc (GPUSHARE_SWAP is set). */
bool gs_swap_on(void);
/* A swappable allocation of `bytes` on the current context's device (reserved range, physical
 * memory mapped in); CUDA_ERROR_NOT_SUPPORTED when this allocation cannot be swappable (no
 * VMM on the device, smaller than the granularity): the caller then uses the plain path. */
CUresult gs_swap_alloc(CUdeviceptr *dptr, size_t bytes);
/* An allocation that cannot be swapped was made (a pool's, cuMemAllocAsync): while this process
 * has no control socket, the daemon hears at once that it may never get one (<pid>.noswap,
 * SWAP.md "Waiting for room"), once per process. One relaxed load after the first. */
void gs_swap_ctl_unswappable(void);
/* Frees p when it is a swappable allocation (*done = true), else leaves it (*done = false). */
CUresult gs_swap_free(CUdeviceptr p, bool *done);

#endif /* GS_SWAP_H */
