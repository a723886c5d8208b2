/*
 * fake_nvml_process.c: nvmlDeviceGetComputeRunningProcesses_v3, with NVML's two-call
 * sizing protocol and "processesGrowBy" to model a process starting between the calls.
 */
#include <stddef.h>

#include "fake_nvml_state.h"

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
        if (matching > *infoCount) {
            r = NVML_ERROR_INSUFFICIENT_SIZE; /* with the count needed, as NVML does */
            *infoCount = matching;
        } else {
            unsigned int n = 0;
            for (unsigned int i = 0; i < g->process_count; i++)
                if (belongs(&g->processes[i], &t))
                    infos[n++] = g->processes[i];
            *infoCount = n;
        }
    }
    fake_unlock();
    return r;
}
