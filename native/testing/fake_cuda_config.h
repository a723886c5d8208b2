/*
 * fake_cuda_config.h: the fake driver's configuration, read from GPUSHARE_FAKE_CUDA
 * (FAKE_CUDA.md) by cuInit.
 */
#ifndef GS_FAKE_CUDA_CONFIG_H
#define GS_FAKE_CUDA_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define FAKE_CUDA_ENV "GPUSHARE_FAKE_CUDA"
#define FAKE_CUDA_BUSY_ENV "GPUSHARE_FAKE_CUDA_BUSY_DIR"
#define FAKE_CUDA_MAX_DEVICES 16
#define FAKE_CUDA_MAX_ERRORS 32

typedef struct fake_cuda_device_config {
    char name[96];
    char uuid[48];                       /* "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" */
    unsigned long long total_bytes;
    unsigned long long reserved_bytes;   /* taken before the program starts (others, driver) */
    unsigned long long context_bytes;    /* what one context costs on this device */
    unsigned int sm_count;
    unsigned int cc_major, cc_minor;
    unsigned int pci_domain, pci_bus, pci_device;
    unsigned int sm_partition_min;       /* green contexts: smallest group */
    unsigned int sm_alignment;           /* green contexts: group sizes are multiples */
    unsigned int sm_groupable;           /* green contexts: SMs the splits can use (GPCs with too few SMs
                                            for a group leave the rest out: 120 of 132 on an H200) */
} fake_cuda_device_config_t;

typedef struct fake_cuda_forced_error {
    char fn[64];
    int code;
} fake_cuda_forced_error_t;

typedef struct fake_cuda_config {
    int driver_version;
    unsigned long long alloc_rounding;   /* plain/pitch/managed/array/pool sizes round up to it */
    unsigned long long pitch_alignment;
    unsigned long long vmm_granularity;
    unsigned long long pool_chunk_bytes;
    bool managed_on_host;                /* "managedResidency": "host" */
    bool reuse_freed;                    /* "reuseFreed": freed address ranges come back, bytes intact */
    bool no_shareable;                   /* "noShareable": cuMemCreate refuses a POSIX fd handle type */
    unsigned long long default_kernel_us;
    /* "checkpointStepMillis": how long each step another process asks of this one takes at
     * least: lock, checkpoint, restore, unlock (FAKE_CKPT_LOCK - 1 ...) */
    unsigned long long checkpoint_step_ms[4];
    unsigned int device_count;
    fake_cuda_device_config_t devices[FAKE_CUDA_MAX_DEVICES];
    unsigned int error_count;
    fake_cuda_forced_error_t errors[FAKE_CUDA_MAX_ERRORS];
    char busy_dir[256];                  /* empty: no busy-time file */
    bool shared_memory;                  /* "sharedMemory": the processes of busy_dir share each card's memory */
    bool shared_gpu;                     /* "sharedGpu": kernels of all processes of busy_dir serialize */
    bool inline_launch;                  /* "inlineLaunch": a 0 us kernel onto an idle stream completes in the call */
    unsigned long long launch_touch_bytes; /* "launchTouchBytes": bytes a launch walks through (cache pressure) */
    unsigned long long host_alloc_us;      /* "hostAllocMicros": how long pinning host memory takes (outside the fake's lock) */
    /* "pauseAt": the nth call of fn (this process's, counted from 1) announces itself as the
     * file <dir>/reached and waits, before doing anything, until <dir>/go exists (fn empty: none) */
    struct {
        char fn[64];
        unsigned long long nth;
        char dir[256];
    } pause_at;
} fake_cuda_config_t;

/* Fills *c from the environment; unset or empty gives one default H100. On failure
 * returns false with a one-line reason in err. */
bool fake_cuda_config_load(fake_cuda_config_t *c, char *err, size_t err_size);

/* Applies CUDA_VISIBLE_DEVICES to the configured devices: visible[i] is the configured
 * index of ordinal i. Returns the number visible. Like the real driver, the list stops at
 * the first entry that is invalid or names no device (indexes, "GPU-<uuid>" or a unique
 * UUID prefix; unset: all devices). */
unsigned int fake_cuda_visible(const fake_cuda_config_t *c, const char *env, unsigned int visible[FAKE_CUDA_MAX_DEVICES]);

#endif /* GS_FAKE_CUDA_CONFIG_H */
