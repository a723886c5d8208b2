/*
 * fake_nvml_state.c: init reference counting, the loaded machine and the handle tables.
 */
#include "fake_nvml_state.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fake_nvml_config.h"

/* The fake's only mutable state. It is global because NVML's API is: nvmlInit takes no
 * context and handles must stay valid pointers between calls, so the machine and the
 * handle tables live here, for the life of the library, guarded by `lock`. */
static struct {
    pthread_mutex_t lock;
    unsigned int refcount; /* nvmlInit calls not yet matched by nvmlShutdown */
    fake_machine_t machine;
    struct nvmlDevice_st gpu_handles[FAKE_MAX_GPUS];
    struct nvmlDevice_st mig_handles[FAKE_MAX_GPUS][FAKE_MAX_MIG];
} state = {.lock = PTHREAD_MUTEX_INITIALIZER};

void fake_lock(void)
{
    /* Cannot fail for a default mutex used correctly; nothing sensible to do if it did. */
    (void)pthread_mutex_lock(&state.lock);
}

void fake_unlock(void)
{
    (void)pthread_mutex_unlock(&state.lock);
}

/* Control characters (a key decoded from "\n", say) would break the one-line promise. */
static void print_config_error(char *message)
{
    for (char *p = message; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    (void)fprintf(stderr, "gpushare fake NVML: %s\n", message);
}

static void fill_handles(void)
{
    for (unsigned int g = 0; g < FAKE_MAX_GPUS; g++) {
        state.gpu_handles[g] = (struct nvmlDevice_st){.gpu = g};
        for (unsigned int m = 0; m < FAKE_MAX_MIG; m++)
            state.mig_handles[g][m] = (struct nvmlDevice_st){.gpu = g, .mig = m, .is_mig = true};
    }
}

nvmlReturn_t fake_acquire(fake_fn_t fn)
{
    if (state.refcount > 0) {
        int forced = state.machine.errors.code[fn];
        if (forced)
            return (nvmlReturn_t)forced;
        state.refcount++;
        return NVML_SUCCESS;
    }
    char why[512];
    if (!fake_config_load(&state.machine, why, sizeof why)) {
        print_config_error(why);
        return NVML_ERROR_UNKNOWN;
    }
    nvmlReturn_t result = NVML_SUCCESS;
    if (!state.machine.driver_loaded)
        result = NVML_ERROR_DRIVER_NOT_LOADED;
    else if (state.machine.errors.code[fn])
        result = (nvmlReturn_t)state.machine.errors.code[fn];
    if (result != NVML_SUCCESS) {
        memset(&state.machine, 0, sizeof state.machine);
        return result;
    }
    fill_handles();
    state.refcount = 1;
    return NVML_SUCCESS;
}

nvmlReturn_t fake_release(void)
{
    if (state.refcount == 0)
        return NVML_ERROR_UNINITIALIZED;
    /* A forced nvmlShutdown error still releases the reference, so one failing test
     * cannot leave the library initialized for the next. */
    int forced = state.machine.errors.code[FAKE_FN_nvmlShutdown];
    if (--state.refcount == 0)
        memset(&state.machine, 0, sizeof state.machine);
    return (nvmlReturn_t)forced;
}

fake_machine_t *fake_machine(void)
{
    return &state.machine;
}

nvmlDevice_t fake_gpu_handle(unsigned int gpu)
{
    return &state.gpu_handles[gpu];
}

nvmlDevice_t fake_mig_handle(unsigned int gpu, unsigned int mig)
{
    return &state.mig_handles[gpu][mig];
}

/* Whether p is the address of an element of the array at base (by integer arithmetic:
 * comparing pointers into different objects is undefined in C). */
static bool element_of(const void *p, const void *base, size_t count, size_t size, size_t *index)
{
    uintptr_t a = (uintptr_t)p, b = (uintptr_t)base;
    if (a < b || a >= b + count * size || (a - b) % size != 0)
        return false;
    *index = (a - b) / size;
    return true;
}

bool fake_resolve(nvmlDevice_t device, fake_target_t *t)
{
    size_t i;
    if (state.refcount == 0 || !device)
        return false;
    if (element_of(device, state.gpu_handles, FAKE_MAX_GPUS, sizeof state.gpu_handles[0], &i)) {
        if (i >= state.machine.gpu_count)
            return false;
        *t = (fake_target_t){.gpu = &state.machine.gpus[i], .gpu_index = (unsigned int)i};
        return true;
    }
    if (element_of(device, state.mig_handles, (size_t)FAKE_MAX_GPUS * FAKE_MAX_MIG, sizeof state.mig_handles[0][0],
                   &i)) {
        size_t g = i / FAKE_MAX_MIG, m = i % FAKE_MAX_MIG;
        if (g >= state.machine.gpu_count || m >= state.machine.gpus[g].mig_count)
            return false;
        *t = (fake_target_t){.gpu = &state.machine.gpus[g], .mig = &state.machine.gpus[g].mig[m],
                             .gpu_index = (unsigned int)g};
        return true;
    }
    return false;
}

int fake_forced(const fake_target_t *t, fake_fn_t fn)
{
    return t->mig ? t->mig->errors.code[fn] : t->gpu->errors.code[fn];
}

nvmlReturn_t fake_system_gate(fake_fn_t fn, bool args_ok)
{
    if (state.refcount == 0)
        return NVML_ERROR_UNINITIALIZED;
    if (!args_ok)
        return NVML_ERROR_INVALID_ARGUMENT;
    return (nvmlReturn_t)state.machine.errors.code[fn];
}

nvmlReturn_t fake_device_gate(fake_fn_t fn, nvmlDevice_t device, bool args_ok, fake_handles_t serves,
                              fake_target_t *t)
{
    if (state.refcount == 0)
        return NVML_ERROR_UNINITIALIZED;
    if (!fake_resolve(device, t) || !args_ok)
        return NVML_ERROR_INVALID_ARGUMENT;
    if (t->gpu->lost)
        return NVML_ERROR_GPU_IS_LOST;
    int forced = fake_forced(t, fn);
    if (forced)
        return (nvmlReturn_t)forced;
    if ((serves == FAKE_GPU_HANDLES && t->mig) || (serves == FAKE_MIG_HANDLES && !t->mig))
        return NVML_ERROR_NOT_SUPPORTED;
    return NVML_SUCCESS;
}
