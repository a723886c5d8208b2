/*
 * test_process.c: nvmlDeviceGetComputeRunningProcesses_v3: NVML's size query, too small
 * buffers, "processesGrowBy" (a process starting between the two calls), MIG filtering.
 */
#include <string.h>

#include "test_machines.h"
#include "test_util.h"

static void check_process(const nvmlProcessInfo_t *p, unsigned int pid, unsigned long long used, unsigned int gi,
                          unsigned int ci)
{
    CHECK_EQ(p->pid, pid);
    CHECK_EQ(p->usedGpuMemory, used);
    CHECK_EQ(p->gpuInstanceId, gi);
    CHECK_EQ(p->computeInstanceId, ci);
}

static void test_sizing(void)
{
    nvmlDevice_t d0 = test_gpu(0);
    nvmlProcessInfo_t infos[8];
    unsigned int count;

    test_section("size query: count 0 (infos NULL allowed) -> INSUFFICIENT_SIZE with the count");
    count = 0;
    CHECK_RC(nv.nvmlDeviceGetComputeRunningProcesses_v3(d0, &count, NULL), NVML_ERROR_INSUFFICIENT_SIZE);
    CHECK_EQ(count, 3);
    count = 0;
    CHECK_RC(nv.nvmlDeviceGetComputeRunningProcesses_v3(d0, &count, infos), NVML_ERROR_INSUFFICIENT_SIZE);
    CHECK_EQ(count, 3);

    test_section("too small a buffer -> INSUFFICIENT_SIZE with the count needed, buffer untouched");
    memset(infos, 0xab, sizeof infos);
    count = 2;
    CHECK_RC(nv.nvmlDeviceGetComputeRunningProcesses_v3(d0, &count, infos), NVML_ERROR_INSUFFICIENT_SIZE);
    CHECK_EQ(count, 3);
    CHECK_EQ(infos[0].pid, 0xabababab);

    test_section("exact and larger buffers");
    count = 3;
    CHECK_RC(nv.nvmlDeviceGetComputeRunningProcesses_v3(d0, &count, infos), NVML_SUCCESS);
    CHECK_EQ(count, 3);
    check_process(&infos[0], 4242, 1048576000ULL, 9, 0);
    check_process(&infos[1], 4343, 2097152000ULL, 2, 1);
    check_process(&infos[2], 4444, ~0ULL, 9, 0); /* NVML_VALUE_NOT_AVAILABLE survives */
    memset(infos, 0, sizeof infos);
    count = 8;
    CHECK_RC(nv.nvmlDeviceGetComputeRunningProcesses_v3(d0, &count, infos), NVML_SUCCESS);
    CHECK_EQ(count, 3);
    CHECK_EQ(infos[2].pid, 4444);
    CHECK_EQ(infos[3].pid, 0);

    test_section("NULL arguments");
    CHECK_RC(nv.nvmlDeviceGetComputeRunningProcesses_v3(d0, NULL, infos), NVML_ERROR_INVALID_ARGUMENT);
    count = 3;
    CHECK_RC(nv.nvmlDeviceGetComputeRunningProcesses_v3(d0, &count, NULL), NVML_ERROR_INVALID_ARGUMENT);
}

static void test_mig_processes(void)
{
    nvmlDevice_t d0 = test_gpu(0);
    nvmlDevice_t m0 = test_mig(d0, 0), m1 = test_mig(d0, 1);
    nvmlProcessInfo_t infos[8];
    unsigned int count = 0;

    test_section("a MIG handle lists the processes of its GPU/compute instance");
    CHECK_RC(nv.nvmlDeviceGetComputeRunningProcesses_v3(m0, &count, NULL), NVML_ERROR_INSUFFICIENT_SIZE);
    CHECK_EQ(count, 2);
    count = 8;
    CHECK_RC(nv.nvmlDeviceGetComputeRunningProcesses_v3(m0, &count, infos), NVML_SUCCESS);
    CHECK_EQ(count, 2);
    CHECK_EQ(infos[0].pid, 4242);
    CHECK_EQ(infos[1].pid, 4444);
    count = 1;
    CHECK_RC(nv.nvmlDeviceGetComputeRunningProcesses_v3(m1, &count, infos), NVML_SUCCESS);
    CHECK_EQ(count, 1);
    check_process(&infos[0], 4343, 2097152000ULL, 2, 1);
}

static void test_grow_by(void)
{
    nvmlDevice_t d1 = test_gpu(1);
    nvmlProcessInfo_t infos[8];
    unsigned int count = 0;

    test_section("processesGrowBy: the fill after a size query finds more processes");
    CHECK_RC(nv.nvmlDeviceGetComputeRunningProcesses_v3(d1, &count, NULL), NVML_ERROR_INSUFFICIENT_SIZE);
    CHECK_EQ(count, 1);
    count = 1;
    CHECK_RC(nv.nvmlDeviceGetComputeRunningProcesses_v3(d1, &count, infos), NVML_ERROR_INSUFFICIENT_SIZE);
    CHECK_EQ(count, 3);
    count = 3;
    CHECK_RC(nv.nvmlDeviceGetComputeRunningProcesses_v3(d1, &count, infos), NVML_SUCCESS);
    CHECK_EQ(count, 3);
    check_process(&infos[0], 5001, 1000, 0xFFFFFFFFu, 0xFFFFFFFFu);
    check_process(&infos[1], 10000, 16ULL << 20, 0xFFFFFFFFu, 0xFFFFFFFFu);
    check_process(&infos[2], 10001, 16ULL << 20, 0xFFFFFFFFu, 0xFFFFFFFFu);

    test_section("processesGrowBy happens once; the new processes stay");
    count = 0;
    CHECK_RC(nv.nvmlDeviceGetComputeRunningProcesses_v3(d1, &count, NULL), NVML_ERROR_INSUFFICIENT_SIZE);
    CHECK_EQ(count, 3);
    count = 3;
    CHECK_RC(nv.nvmlDeviceGetComputeRunningProcesses_v3(d1, &count, infos), NVML_SUCCESS);
    CHECK_EQ(count, 3);
}

static void test_grow_by_variants(void)
{
    nvmlProcessInfo_t infos[8];
    unsigned int count;

    test_section("processesGrowBy without a size query first: nothing grows until one");
    test_init("{\"devices\": [{\"processes\": [{\"pid\": 20000}], \"processesGrowBy\": 1}, {}]}");
    nvmlDevice_t d = test_gpu(0);
    count = 8;
    CHECK_RC(nv.nvmlDeviceGetComputeRunningProcesses_v3(d, &count, infos), NVML_SUCCESS);
    CHECK_EQ(count, 1);
    CHECK_EQ(infos[0].usedGpuMemory, 0);
    CHECK_EQ(infos[0].gpuInstanceId, 0xFFFFFFFFu);
    count = 0;
    CHECK_RC(nv.nvmlDeviceGetComputeRunningProcesses_v3(d, &count, NULL), NVML_ERROR_INSUFFICIENT_SIZE);
    CHECK_EQ(count, 1);
    /* A buffer with room to spare absorbs the new process. */
    count = 8;
    CHECK_RC(nv.nvmlDeviceGetComputeRunningProcesses_v3(d, &count, infos), NVML_SUCCESS);
    CHECK_EQ(count, 2);
    CHECK_EQ(infos[1].pid, 20001);

    test_section("no processes: the size query succeeds with 0");
    nvmlDevice_t idle = test_gpu(1);
    count = 0;
    CHECK_RC(nv.nvmlDeviceGetComputeRunningProcesses_v3(idle, &count, NULL), NVML_SUCCESS);
    CHECK_EQ(count, 0);
    count = 8;
    CHECK_RC(nv.nvmlDeviceGetComputeRunningProcesses_v3(idle, &count, infos), NVML_SUCCESS);
    CHECK_EQ(count, 0);
    test_shutdown();

    test_section("processesGrowBy with no processes yet, and the state resets with the machine");
    test_init("{\"devices\": [{\"processesGrowBy\": 2}]}");
    d = test_gpu(0);
    count = 0;
    CHECK_RC(nv.nvmlDeviceGetComputeRunningProcesses_v3(d, &count, NULL), NVML_SUCCESS);
    CHECK_EQ(count, 0);
    count = 1;
    CHECK_RC(nv.nvmlDeviceGetComputeRunningProcesses_v3(d, &count, infos), NVML_ERROR_INSUFFICIENT_SIZE);
    CHECK_EQ(count, 2);
    test_shutdown();
    test_init("{\"devices\": [{\"processesGrowBy\": 2}]}");
    count = 8;
    CHECK_RC(nv.nvmlDeviceGetComputeRunningProcesses_v3(test_gpu(0), &count, infos), NVML_SUCCESS);
    CHECK_EQ(count, 0);
    test_shutdown();
}

int main(int argc, char **argv)
{
    test_begin(argc, argv, true);
    test_init(TWO_GPUS);
    test_sizing();
    test_mig_processes();
    test_grow_by();
    test_shutdown();
    test_grow_by_variants();
    return test_end();
}
