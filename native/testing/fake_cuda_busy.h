/*
 * fake_cuda_busy.h: the per-process busy-time file the fake driver publishes, so a
 * compute limiter (or a fake NVML) can read how much GPU time each process used.
 *
 * With GPUSHARE_FAKE_CUDA_BUSY_DIR (or "busyDir") set, cuInit creates
 * <dir>/<pid>.busy holding one fake_cuda_busy_file_t, mapped shared; the fake updates it
 * after every kernel with relaxed 64-bit atomic stores (readers load the same way).
 * busy_ns is the union of kernel intervals on the device (two streams running at once
 * count once), as a GPU's "busy" would be. Times are CLOCK_MONOTONIC nanoseconds.
 */
#ifndef GS_FAKE_CUDA_BUSY_H
#define GS_FAKE_CUDA_BUSY_H

#include <stdint.h>

#define FAKE_CUDA_BUSY_MAGIC 0x42534647u /* "GFSB" little-endian */
#define FAKE_CUDA_BUSY_VERSION 2u
#define FAKE_CUDA_BUSY_DEVICES 16

typedef struct fake_cuda_busy_device {
    char uuid[48];          /* the device's UUID, so readers can match across processes */
    uint64_t busy_ns;       /* total time at least one kernel of this process ran */
    uint64_t kernels;       /* kernels completed (a graph launch counts its kernel nodes) */
    uint64_t last_end_ns;   /* end of the latest kernel */
} fake_cuda_busy_device_t;

typedef struct fake_cuda_busy_file {
    uint32_t magic;
    uint32_t version;
    int32_t pid;
    uint32_t device_count;  /* visible devices of that process, in its ordinal order */
    fake_cuda_busy_device_t devices[FAKE_CUDA_BUSY_DEVICES];
    /* version 2: calls of cuDeviceGetGraphMemAttribute, so a test can see how often a
     * library polls the graph memory pool (it costs a driver round trip on a GPU) */
    uint64_t graph_mem_queries;
} fake_cuda_busy_file_t;

/*
 * Shared GPU (version 2): with "sharedGpu": true (or GPUSHARE_FAKE_CUDA_SHARED_GPU=1) and a
 * busy directory, the kernels of every process using that directory run one at a time per
 * device, as contexts of different processes time-slice a real GPU: <dir>/<uuid>.gpu holds
 * one fake_cuda_shared_gpu_t per device, and a stream worker claims the device from
 * max(its op's earliest start, free_at_ns) for the op's duration with a compare-and-swap.
 * Claims are served in the order they are made (a process that claims once per kernel
 * alternates with the others, like time slicing). A process's own streams overlap: a
 * kernel joins the process's latest claim while nobody else claimed after it.
 */
#define FAKE_CUDA_SHARED_GPU_MAGIC 0x55504753u /* "SGPU" little-endian */
typedef struct fake_cuda_shared_gpu {
    uint32_t magic;
    uint32_t reserved;
    uint64_t free_at_ns; /* CLOCK_MONOTONIC: the device is claimed until then */
} fake_cuda_shared_gpu_t;

/*
 * Shared memory: with "sharedMemory": true (or GPUSHARE_FAKE_CUDA_SHARED_MEMORY=1) and a busy
 * directory, the processes of the directory share each card's memory, as on a real GPU:
 * <dir>/<uuid>.mem holds a slot per process (its pid, the bytes it holds); a process's free
 * memory is the card's total less its own and every live other's (fake_cuda_sharedmem.c).
 */
#define FAKE_CUDA_SHARED_MEMORY_SLOTS 64
typedef struct fake_cuda_shared_memory {
    struct {
        int32_t pid; /* 0: free; a dead pid's slot is free too */
        uint32_t reserved;
        uint64_t used; /* bytes this process holds on the card */
    } slot[FAKE_CUDA_SHARED_MEMORY_SLOTS];
    /* The most the live processes held together, as a process that had just changed its count
     * added it up (a count read stale is one that only fell since: never under the truth). For
     * the tests of an overlapped hand-over: the incoming slice never took more than the card. */
    uint64_t peak;
} fake_cuda_shared_memory_t;

#endif /* GS_FAKE_CUDA_BUSY_H */
