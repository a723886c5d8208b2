/*
 * test_threads.c: NVML is thread-safe and koffi's async calls arrive on worker threads, so
 * several threads init, query and shut down at once; every answer must stay consistent
 * (and ASan must stay quiet).
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "test_machines.h"
#include "test_util.h"

enum { THREADS = 8, ROUNDS = 300 };

/* Each worker counts its own wrong answers; main checks them after joining, because the
 * harness's counters are not meant to be shared between threads. */
typedef struct worker {
    pthread_t thread;
    unsigned int wrong;
} worker_t;

static void *work(void *arg)
{
    worker_t *w = arg;
    for (int round = 0; round < ROUNDS; round++) {
        unsigned int count = 0, n = 0;
        char name[96];
        nvmlDevice_t d = NULL, m = NULL;
        nvmlMemory_v2_t memory = {.version = nvmlMemory_v2};
        nvmlProcessInfo_t infos[4];
        w->wrong += nv.nvmlInit_v2() != NVML_SUCCESS;
        w->wrong += nv.nvmlDeviceGetCount_v2(&count) != NVML_SUCCESS || count != 2;
        w->wrong += nv.nvmlDeviceGetHandleByIndex_v2((unsigned int)round % 2, &d) != NVML_SUCCESS;
        w->wrong += nv.nvmlDeviceGetName(d, name, sizeof name) != NVML_SUCCESS ||
                    strncmp(name, "NVIDIA ", 7) != 0;
        w->wrong += nv.nvmlDeviceGetMemoryInfo_v2(d, &memory) != NVML_SUCCESS || memory.total == 0;
        w->wrong += nv.nvmlDeviceGetHandleByUUID(MIG_UUID0, &m) != NVML_SUCCESS;
        n = 4;
        w->wrong += nv.nvmlDeviceGetComputeRunningProcesses_v3(m, &n, infos) != NVML_SUCCESS || n != 2;
        w->wrong += nv.nvmlShutdown() != NVML_SUCCESS;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    worker_t workers[THREADS];
    test_begin(argc, argv, true);
    test_section("concurrent init, queries and shutdown");
    test_config(TWO_GPUS);
    memset(workers, 0, sizeof workers);
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&workers[i].thread, NULL, work, &workers[i]) == 0);
    for (int i = 0; i < THREADS; i++) {
        CHECK(pthread_join(workers[i].thread, NULL) == 0);
        CHECK_EQ(workers[i].wrong, 0);
    }
    unsigned int count;
    CHECK_RC(nv.nvmlDeviceGetCount_v2(&count), NVML_ERROR_UNINITIALIZED); /* every reference released */
    return test_end();
}
