/*
 * fake_nvml_process.c: nvmlDeviceGetComputeRunningProcesses_v3, with NVML's two-call
 * sizing protocol and "processesGrowBy" to model a process starting between the calls.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "fake_nvml_state.h"

/*
 * Private hook for libgpushare's tests (native/shim/TESTING.md), the only place the two
 * fakes meet: when this process has a libcuda.so.1 loaded and the calling thread has a
 * current context on the device with this GPU's UUID, the calling process is listed too,
 * with usedGpuMemory = total - free as that libcuda reports it (cuMemGetInfo_v2), the way
 * the real NVML lists a process's contexts and allocations. With the fake libcuda (which
 * charges contexts, allocations and pools to one per-process device) both fakes then agree
 * on what this process uses. Functions are looked up with libc's own dlsym, so an
 * interposer's dlsym (libgpushare's) cannot hand its hooks back. A configured process with
 * the same pid wins. GPUSHARE_FAKE_NVML_CUDA_SELF=0 turns the hook off.
 */
typedef int (*cuda_fn_ctx)(void **);
typedef int (*cuda_fn_dev)(int *);
typedef int (*cuda_fn_uuid)(unsigned char *, int);
typedef int (*cuda_fn_info)(size_t *, size_t *);

static bool cuda_self_usage(const char *uuid, unsigned long long *used)
{
    const char *off = getenv("GPUSHARE_FAKE_NVML_CUDA_SELF");
    if (off != NULL && strcmp(off, "0") == 0)
        return false;
    void *cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    if (cuda == NULL || libc == NULL)
        return false;
    void *(*sym)(void *, const char *) = (void *(*)(void *, const char *))dlvsym(libc, "dlsym", "GLIBC_2.34");
    if (sym == NULL)
        sym = (void *(*)(void *, const char *))dlvsym(libc, "dlsym", "GLIBC_2.2.5");
    cuda_fn_ctx get_ctx = sym ? (cuda_fn_ctx)sym(cuda, "cuCtxGetCurrent") : NULL;
    cuda_fn_dev get_dev = sym ? (cuda_fn_dev)sym(cuda, "cuCtxGetDevice") : NULL;
    cuda_fn_uuid get_uuid = sym ? (cuda_fn_uuid)sym(cuda, "cuDeviceGetUuid_v2") : NULL;
    cuda_fn_info get_info = sym ? (cuda_fn_info)sym(cuda, "cuMemGetInfo_v2") : NULL;
    (void)dlclose(cuda);
    (void)dlclose(libc);
    void *ctx = NULL;
    int dev = -1;
    unsigned char b[16];
    size_t free_b = 0, total = 0;
    if (!get_ctx || !get_dev || !get_uuid || !get_info || get_ctx(&ctx) != 0 || ctx == NULL || get_dev(&dev) != 0 ||
        get_uuid(b, dev) != 0 || get_info(&free_b, &total) != 0)
        return false;
    char text[64];
    (void)snprintf(text, sizeof text, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
                   b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    if (strcasecmp(text, uuid) != 0)
        return false;
    *used = total - free_b;
    return true;
}

/* Synthetic processes added by processesGrowBy get pids above every configured one. */
static void grow_processes(fake_gpu_t *g)
{
    unsigned int next_pid = 10000;
    for (unsigned int i = 0; i < g->process_count; i++)
        if (g->processes[i].pid >= next_pid)
            next_pid = g->processes[i].pid + 1;
    for (unsigned int i = 0; i < g->processes_grow_by && g->process_count < FAKE_MAX_PROCESSES; i++) {
        g->processes[g->process_count++] = (nvmlProcessInfo_t){
            .pid = next_pid + i,
            .usedGpuMemory = 16ULL << 20,
            .gpuInstanceId = 0xFFFFFFFFu,
            .computeInstanceId = 0xFFFFFFFFu,
        };
    }
    g->grown = true;
}

/* Whether a GPU's process belongs to the queried handle: all of them for the GPU (NVML
 * aggregates), those of the same GPU/compute instance for a MIG device. */
static bool belongs(const nvmlProcessInfo_t *p, const fake_target_t *t)
{
    return !t->mig ||
           (p->gpuInstanceId == t->mig->gpu_instance_id && p->computeInstanceId == t->mig->compute_instance_id);
}

FAKE_EXPORT nvmlReturn_t nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t device, unsigned int *infoCount,
                                                                 nvmlProcessInfo_t *infos)
{
    fake_target_t t;
    /* *infoCount == 0 is the size query, where infos may be NULL. */
    bool args_ok = infoCount != NULL && (infos != NULL || *infoCount == 0);
    fake_lock();
    nvmlReturn_t r = fake_device_gate(FAKE_FN_nvmlDeviceGetComputeRunningProcesses_v3, device, args_ok,
                                      FAKE_ANY_HANDLE, &t);
    if (r == NVML_SUCCESS) {
        fake_gpu_t *g = t.gpu;
        bool size_query = *infoCount == 0;
        if (!t.mig && g->processes_grow_by > 0 && !g->grown) {
            if (size_query)
                g->grow_armed = true;
            else if (g->grow_armed)
                grow_processes(g);
        }
        unsigned int matching = 0;
        for (unsigned int i = 0; i < g->process_count; i++)
            matching += belongs(&g->processes[i], &t);
        unsigned long long self_used = 0;
        bool self = !t.mig && cuda_self_usage(g->uuid, &self_used);
        for (unsigned int i = 0; self && i < g->process_count; i++)
            self = g->processes[i].pid != (unsigned int)getpid();
        matching += self;
        if (matching > *infoCount) {
            r = NVML_ERROR_INSUFFICIENT_SIZE; /* with the count needed, as NVML does */
            *infoCount = matching;
        } else {
            unsigned int n = 0;
            for (unsigned int i = 0; i < g->process_count; i++)
                if (belongs(&g->processes[i], &t))
                    infos[n++] = g->processes[i];
            if (self)
                infos[n++] = (nvmlProcessInfo_t){.pid = (unsigned int)getpid(),
                                                 .usedGpuMemory = self_used,
                                                 .gpuInstanceId = 0xFFFFFFFFu,
                                                 .computeInstanceId = 0xFFFFFFFFu};
            *infoCount = n;
        }
    }
    fake_unlock();
    return r;
}
