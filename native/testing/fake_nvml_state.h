/*
 * fake_nvml_state.h: the fake's one piece of mutable state (init reference count, the
 * loaded machine, the handle tables) and the checks every entry point runs first.
 *
 * Entry points take the lock, run a gate, do their work, release the lock:
 *
 *     fake_target_t t;
 *     fake_lock();
 *     nvmlReturn_t r = fake_device_gate(FAKE_FN_nvmlDeviceGetPowerUsage, device, power != NULL,
 *                                       FAKE_GPU_HANDLES, &t);
 *     if (r == NVML_SUCCESS)
 *         *power = t.gpu->power_usage;
 *     fake_unlock();
 *     return r;
 */
#ifndef GS_FAKE_NVML_STATE_H
#define GS_FAKE_NVML_STATE_H

#include <stdbool.h>

#include "fake_nvml_model.h"

/* Marks an NVML entry point: the library is built with -fvisibility=hidden, so only these
 * are exported (and fake_nvml.map then keeps anything but nvml* out). */
#define FAKE_EXPORT __attribute__((visibility("default")))

/* What an nvmlDevice_t points at: an entry of a static table in fake_nvml_state.c. Its
 * address is the handle; the indices say which GPU (and MIG device) it stands for. */
struct nvmlDevice_st {
    unsigned int gpu;
    unsigned int mig;
    bool is_mig;
};

/* A resolved handle: the GPU, and the MIG device when the handle is one (else NULL). */
typedef struct fake_target {
    fake_gpu_t *gpu;
    fake_mig_t *mig;
    unsigned int gpu_index;
} fake_target_t;

/* Which handles a function serves; the other kind gets NVML_ERROR_NOT_SUPPORTED. */
typedef enum fake_handles {
    FAKE_ANY_HANDLE,
    FAKE_GPU_HANDLES,
    FAKE_MIG_HANDLES
} fake_handles_t;

/* NVML is thread-safe, and koffi's async calls come from worker threads: every entry
 * point holds this lock while it touches the state. */
void fake_lock(void);
void fake_unlock(void);

/* nvmlInit*: the first reference loads the machine from the environment. */
nvmlReturn_t fake_acquire(fake_fn_t fn);
/* nvmlShutdown: the last reference unloads it. */
nvmlReturn_t fake_release(void);

/* The loaded machine; only while initialized and locked. */
fake_machine_t *fake_machine(void);

nvmlDevice_t fake_gpu_handle(unsigned int gpu);
nvmlDevice_t fake_mig_handle(unsigned int gpu, unsigned int mig);

/* Resolves a handle of the loaded machine; false for anything else (stale, foreign,
 * NULL, or a MIG handle whose device is not configured). */
bool fake_resolve(nvmlDevice_t device, fake_target_t *t);

/* The code forced for fn on this target (the MIG device's own, or the GPU's), or 0. */
int fake_forced(const fake_target_t *t, fake_fn_t fn);

/* For functions without a device argument: UNINITIALIZED, then INVALID_ARGUMENT when
 * !args_ok, then a code forced in the top-level "errors". */
nvmlReturn_t fake_system_gate(fake_fn_t fn, bool args_ok);

/* For functions taking a device, in this order: UNINITIALIZED; INVALID_ARGUMENT for a bad
 * handle or !args_ok; GPU_IS_LOST when the GPU is "lost"; a forced code; NOT_SUPPORTED when
 * the function does not serve this kind of handle. On success *t is filled. */
nvmlReturn_t fake_device_gate(fake_fn_t fn, nvmlDevice_t device, bool args_ok, fake_handles_t serves,
                              fake_target_t *t);

#endif /* GS_FAKE_NVML_STATE_H */
