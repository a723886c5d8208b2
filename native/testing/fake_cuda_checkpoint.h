/*
 * fake_cuda_checkpoint.h: the file through which the fake driver lets one process
 * checkpoint another, as the real driver lets cuda-checkpoint (or gpushare's daemon) act on
 * a task's pid.
 *
 * With GPUSHARE_FAKE_CUDA_CHECKPOINT_DIR=<dir> set in a process, its cuInit creates
 * <dir>/<pid>.ckpt (one fake_cuda_ckpt_file_t, mapped shared) and starts an agent thread,
 * the fake's counterpart of the real driver's restore thread. Another process that calls
 * cuCheckpointProcess*(pid, ...) with the same variable set writes a request into the file
 * (under flock, one controller at a time), wakes the agent with a futex and waits for its
 * answer. The agent does the work inside the target, as the real driver does:
 *   lock        takes the fake's global mutex and keeps it, after the target's queued GPU
 *               work drains: every later CUDA call of the target blocks until unlock;
 *   checkpoint  copies every device allocation's bytes to host memory, discards the device
 *               pages (they read as zero until restored) and gives the device memory back
 *               (the target's cuMemGetInfo and this file's `used` show 0);
 *   restore     charges the memory again (CUDA_ERROR_OUT_OF_MEMORY when it no longer fits),
 *               optionally on other devices of the same name (gpuPairs: old -> new UUID,
 *               every visible device named), and copies the bytes back;
 *   unlock      releases the mutex.
 * Wrong order: CUDA_ERROR_ILLEGAL_STATE. A pid with no such file, or whose process is gone:
 * CUDA_ERROR_NOT_FOUND. No answer in time (the target is stopped, or lock's timeout
 * passed): CUDA_ERROR_TIMEOUT. Without the variable, only the caller's own pid can be
 * driven (others: CUDA_ERROR_NOT_SUPPORTED). The target's configured "errors" for
 * cuCheckpointProcess{Lock,Checkpoint,Restore,Unlock} make its agent fail that step. Contents of VMM (cuMemCreate) memory are not
 * moved; its accounting is.
 */
#ifndef GS_FAKE_CUDA_CHECKPOINT_H
#define GS_FAKE_CUDA_CHECKPOINT_H

#include <stdint.h>

#define FAKE_CUDA_CKPT_ENV "GPUSHARE_FAKE_CUDA_CHECKPOINT_DIR"
#define FAKE_CUDA_CKPT_MAGIC 0x4b434647u /* "GFCK" little-endian */
#define FAKE_CUDA_CKPT_VERSION 1u
#define FAKE_CUDA_CKPT_DEVICES 16
#define FAKE_CUDA_CKPT_PAIRS 16

enum fake_ckpt_op { FAKE_CKPT_LOCK = 1, FAKE_CKPT_CHECKPOINT, FAKE_CKPT_RESTORE, FAKE_CKPT_UNLOCK };

typedef struct fake_cuda_ckpt_device {
    char uuid[48];          /* the physical device behind this ordinal now (restore may remap) */
    uint64_t used;          /* device bytes the process holds now (0 while checkpointed) */
    uint64_t on_host;       /* bytes of device memory contents held on the host by checkpoint */
} fake_cuda_ckpt_device_t;

typedef struct fake_cuda_ckpt_file {
    uint32_t magic;
    uint32_t version;
    int32_t pid;
    int32_t agent_tid;      /* cuCheckpointProcessGetRestoreThreadId */
    uint32_t state;         /* CUprocessState, written by the agent */
    uint32_t request_seq;   /* futex: a controller bumps it after filling the request */
    uint32_t done_seq;      /* futex: the agent sets it to request_seq when answered */
    uint32_t op;            /* enum fake_ckpt_op */
    int32_t result;         /* CUresult of the answered request */
    uint32_t lock_timeout_ms;
    uint32_t pair_count;
    uint32_t device_count;
    unsigned char pairs[FAKE_CUDA_CKPT_PAIRS][2][16]; /* old UUID, new UUID (CUuuid bytes) */
    fake_cuda_ckpt_device_t devices[FAKE_CUDA_CKPT_DEVICES];
} fake_cuda_ckpt_file_t;

#endif /* GS_FAKE_CUDA_CHECKPOINT_H */
