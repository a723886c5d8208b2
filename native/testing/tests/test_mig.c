/*
 * test_mig.c: MIG mode, MIG device handles and what they serve; GPUs without MIG or with
 * MIG disabled; a lost parent; errors forced on one MIG device.
 */
#include <stdio.h>
#include <string.h>

#include "test_calls.h"
#include "test_machines.h"
#include "test_util.h"

static void test_mig_mode(void)
{
    nvmlDevice_t d0 = test_gpu(0), d1 = test_gpu(1), mig = NULL;
    unsigned int current = 9, pending = 9, max = 9, is_mig = 9;

    test_section("MIG mode and device count");
    CHECK_RC(nv.nvmlDeviceGetMigMode(d0, &current, &pending), NVML_SUCCESS);
    CHECK_EQ(current, NVML_DEVICE_MIG_ENABLE);
    CHECK_EQ(pending, NVML_DEVICE_MIG_DISABLE);
    CHECK_RC(nv.nvmlDeviceGetMigMode(d0, NULL, &pending), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetMigMode(d0, &current, NULL), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetMigMode(d1, &current, &pending), NVML_ERROR_NOT_SUPPORTED); /* no migMode */
    CHECK_RC(nv.nvmlDeviceGetMaxMigDeviceCount(d0, &max), NVML_SUCCESS);
    CHECK_EQ(max, 7);
    CHECK_RC(nv.nvmlDeviceGetMaxMigDeviceCount(d1, &max), NVML_SUCCESS);
    CHECK_EQ(max, 0);
    CHECK_RC(nv.nvmlDeviceGetMaxMigDeviceCount(d0, NULL), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceIsMigDeviceHandle(d0, &is_mig), NVML_SUCCESS);
    CHECK_EQ(is_mig, 0);
    CHECK_RC(nv.nvmlDeviceIsMigDeviceHandle(d0, NULL), NVML_ERROR_INVALID_ARGUMENT);

    test_section("MIG handles by index");
    nvmlDevice_t m0 = test_mig(d0, 0), m1 = test_mig(d0, 1);
    CHECK(m0 != NULL && m1 != NULL && m0 != m1 && m0 != d0 && m0 != d1);
    CHECK(test_mig(d0, 0) == m0);
    CHECK_RC(nv.nvmlDeviceGetMigDeviceHandleByIndex(d0, 2, &mig), NVML_ERROR_NOT_FOUND);  /* empty slot */
    CHECK_RC(nv.nvmlDeviceGetMigDeviceHandleByIndex(d0, 6, &mig), NVML_ERROR_NOT_FOUND);
    CHECK_RC(nv.nvmlDeviceGetMigDeviceHandleByIndex(d0, 7, &mig), NVML_ERROR_INVALID_ARGUMENT); /* >= max */
    CHECK_RC(nv.nvmlDeviceGetMigDeviceHandleByIndex(d0, 0, NULL), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetMigDeviceHandleByIndex(d1, 0, &mig), NVML_ERROR_NOT_SUPPORTED);
    CHECK_RC(nv.nvmlDeviceGetMigDeviceHandleByIndex(m0, 0, &mig), NVML_ERROR_NOT_SUPPORTED);
}

static void test_mig_handles(void)
{
    nvmlDevice_t d0 = test_gpu(0), d1 = test_gpu(1);
    nvmlDevice_t m0 = test_mig(d0, 0), m1 = test_mig(d0, 1), parent = NULL, by_uuid = NULL;
    unsigned int v = 99;
    char text[96];
    nvmlMemory_t mem;
    nvmlMemory_v2_t mem2 = {.version = nvmlMemory_v2};
    nvmlDeviceAttributes_t a;

    test_section("what MIG handles serve");
    CHECK_RC(nv.nvmlDeviceIsMigDeviceHandle(m1, &v), NVML_SUCCESS);
    CHECK_EQ(v, 1);
    CHECK_RC(nv.nvmlDeviceGetUUID(m0, text, sizeof text), NVML_SUCCESS);
    CHECK_STR(text, MIG_UUID0);
    CHECK_RC(nv.nvmlDeviceGetUUID(m1, text, (unsigned int)strlen(MIG_UUID1)), NVML_ERROR_INSUFFICIENT_SIZE);
    CHECK_RC(nv.nvmlDeviceGetName(m1, text, sizeof text), NVML_SUCCESS);
    CHECK_STR(text, "NVIDIA H100 80GB HBM3 MIG 3g.40gb");
    CHECK_RC(nv.nvmlDeviceGetGpuInstanceId(m0, &v), NVML_SUCCESS);
    CHECK_EQ(v, 9);
    CHECK_RC(nv.nvmlDeviceGetComputeInstanceId(m0, &v), NVML_SUCCESS);
    CHECK_EQ(v, 0);
    CHECK_RC(nv.nvmlDeviceGetGpuInstanceId(m1, &v), NVML_SUCCESS);
    CHECK_EQ(v, 2);
    CHECK_RC(nv.nvmlDeviceGetComputeInstanceId(m1, &v), NVML_SUCCESS);
    CHECK_EQ(v, 1);
    CHECK_RC(nv.nvmlDeviceGetGpuInstanceId(m0, NULL), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetComputeInstanceId(m0, NULL), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetMemoryInfo(m0, &mem), NVML_SUCCESS);
    CHECK_EQ(mem.total, 10200547328ULL);
    CHECK_EQ(mem.used, 13000000ULL);
    CHECK_EQ(mem.free, 10200547328ULL - 13000000ULL);
    CHECK_RC(nv.nvmlDeviceGetMemoryInfo_v2(m1, &mem2), NVML_SUCCESS);
    CHECK_EQ(mem2.total, 42144366592ULL);
    CHECK_EQ(mem2.used, 0);
    CHECK_EQ(mem2.reserved, 0);
    CHECK_EQ(mem2.free, 42144366592ULL);
    CHECK_RC(nv.nvmlDeviceGetAttributes_v2(m0, &a), NVML_SUCCESS);
    CHECK_EQ(a.multiprocessorCount, 16);
    CHECK_EQ(a.sharedCopyEngineCount, 1);
    CHECK_EQ(a.sharedDecoderCount, 1);
    CHECK_EQ(a.sharedJpegCount, 1);
    CHECK_EQ(a.gpuInstanceSliceCount, 1);
    CHECK_EQ(a.computeInstanceSliceCount, 1);
    CHECK_EQ(a.memorySizeMB, 10200547328ULL >> 20);
    CHECK_RC(nv.nvmlDeviceGetAttributes_v2(m1, &a), NVML_SUCCESS);
    CHECK_EQ(a.multiprocessorCount, 60);
    CHECK_EQ(a.gpuInstanceSliceCount, 1); /* the MIG default */

    test_section("parent handle and lookups by MIG UUID");
    CHECK_RC(nv.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(m1, &parent), NVML_SUCCESS);
    CHECK(parent == d0);
    CHECK_RC(nv.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(m1, NULL), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(d1, &parent), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetHandleByUUID(MIG_UUID1, &by_uuid), NVML_SUCCESS);
    CHECK(by_uuid == m1);

    test_section("GPU handles do not serve the MIG-only queries");
    CHECK_RC(nv.nvmlDeviceGetGpuInstanceId(d0, &v), NVML_ERROR_NOT_SUPPORTED);
    CHECK_RC(nv.nvmlDeviceGetComputeInstanceId(d1, &v), NVML_ERROR_NOT_SUPPORTED);

    test_section("every other query answers a MIG handle NOT_SUPPORTED");
    static const fake_fn_t served[] = {
        FAKE_FN_nvmlDeviceGetUUID,
        FAKE_FN_nvmlDeviceGetName,
        FAKE_FN_nvmlDeviceGetMemoryInfo,
        FAKE_FN_nvmlDeviceGetMemoryInfo_v2,
        FAKE_FN_nvmlDeviceGetAttributes_v2,
        FAKE_FN_nvmlDeviceIsMigDeviceHandle,
        FAKE_FN_nvmlDeviceGetGpuInstanceId,
        FAKE_FN_nvmlDeviceGetComputeInstanceId,
        FAKE_FN_nvmlDeviceGetDeviceHandleFromMigDeviceHandle,
        FAKE_FN_nvmlDeviceGetComputeRunningProcesses_v3,
    };
    test_call_args_t args = {.device = m0, .other = d1};
    for (int fn = 0; fn < FAKE_FN_COUNT; fn++) {
        if (!test_takes_device((fake_fn_t)fn))
            continue;
        nvmlReturn_t want = NVML_ERROR_NOT_SUPPORTED;
        for (size_t i = 0; i < sizeof served / sizeof served[0]; i++)
            if ((int)served[i] == fn)
                want = NVML_SUCCESS;
        nvmlReturn_t r = test_call((fake_fn_t)fn, &args);
        if (r != want)
            printf("  (%s)\n", fake_fn_name((fake_fn_t)fn));
        CHECK_RC(r, want);
    }
    nvmlGpuTopologyLevel_t level;
    CHECK_RC(nv.nvmlDeviceGetTopologyCommonAncestor(d0, m0, &level), NVML_ERROR_NOT_SUPPORTED);
}

static void test_mig_disabled(void)
{
    unsigned int current = 9, pending = 9, max = 9;
    nvmlDevice_t mig;
    test_section("MIG supported but disabled, pending enable: configured MIG devices are hidden");
    test_init("{\"devices\": [{\"migMode\": 0, \"migPendingMode\": 1, \"maxMigDeviceCount\": 7,"
              " \"migDevices\": [{\"uuid\": \"MIG-hidden\"}]}, {\"migMode\": 1}]}");
    CHECK_RC(nv.nvmlDeviceGetHandleByUUID("MIG-hidden", &mig), NVML_ERROR_NOT_FOUND);
    nvmlDevice_t d = test_gpu(0);
    CHECK_RC(nv.nvmlDeviceGetMigMode(d, &current, &pending), NVML_SUCCESS);
    CHECK_EQ(current, 0);
    CHECK_EQ(pending, 1);
    CHECK_RC(nv.nvmlDeviceGetMaxMigDeviceCount(d, &max), NVML_SUCCESS);
    CHECK_EQ(max, 0);
    CHECK_RC(nv.nvmlDeviceGetMigDeviceHandleByIndex(d, 0, &mig), NVML_ERROR_INVALID_ARGUMENT);

    test_section("MIG enabled without MIG devices");
    d = test_gpu(1);
    CHECK_RC(nv.nvmlDeviceGetMigMode(d, &current, &pending), NVML_SUCCESS);
    CHECK_EQ(current, 1);
    CHECK_EQ(pending, 1); /* migPendingMode defaults to migMode */
    CHECK_RC(nv.nvmlDeviceGetMaxMigDeviceCount(d, &max), NVML_SUCCESS);
    CHECK_EQ(max, 7);
    CHECK_RC(nv.nvmlDeviceGetMigDeviceHandleByIndex(d, 0, &mig), NVML_ERROR_NOT_FOUND);
    test_shutdown();
}

static void test_mig_defaults_and_stale(void)
{
    char text[96];
    unsigned int v;
    nvmlDevice_t stale;
    test_section("MIG defaults; more than 7 MIG devices");
    test_init("{\"devices\": [{\"migMode\": 1, \"migDevices\": [{}, {}, {}, {}, {}, {}, {}, {}]}]}");
    nvmlDevice_t d = test_gpu(0);
    CHECK_RC(nv.nvmlDeviceGetMaxMigDeviceCount(d, &v), NVML_SUCCESS);
    CHECK_EQ(v, 8);
    nvmlDevice_t m = test_mig(d, 7);
    stale = m;
    CHECK_RC(nv.nvmlDeviceGetUUID(m, text, sizeof text), NVML_SUCCESS);
    CHECK_STR(text, "MIG-fa4e0000-0000-4000-8000-000000000007");
    CHECK_RC(nv.nvmlDeviceGetName(m, text, sizeof text), NVML_SUCCESS);
    CHECK_STR(text, "NVIDIA H100 80GB HBM3 MIG 1g.10gb");
    CHECK_RC(nv.nvmlDeviceGetGpuInstanceId(m, &v), NVML_SUCCESS);
    CHECK_EQ(v, 8);
    test_shutdown();

    test_section("a MIG handle from an earlier machine is invalid");
    test_init("{\"devices\": [{\"migMode\": 1, \"migDevices\": [{}]}]}");
    CHECK_RC(nv.nvmlDeviceGetUUID(stale, text, sizeof text), NVML_ERROR_INVALID_ARGUMENT);
    test_shutdown();
}

static void test_mig_lost_and_forced(void)
{
    char text[96];
    unsigned int v;
    test_section("a lost GPU's MIG devices are lost too");
    test_init("{\"devices\": [{\"migMode\": 1, \"migDevices\": [{}], \"lost\": true}]}");
    nvmlDevice_t d = test_gpu(0), m = NULL;
    CHECK_RC(nv.nvmlDeviceGetMigDeviceHandleByIndex(d, 0, &m), NVML_ERROR_GPU_IS_LOST);
    CHECK_RC(nv.nvmlDeviceGetHandleByUUID("MIG-fa4e0000-0000-4000-8000-000000000000", &m), NVML_SUCCESS);
    CHECK_RC(nv.nvmlDeviceGetUUID(m, text, sizeof text), NVML_ERROR_GPU_IS_LOST);
    CHECK_RC(nv.nvmlDeviceIsMigDeviceHandle(m, &v), NVML_ERROR_GPU_IS_LOST);
    test_shutdown();

    test_section("errors forced on a MIG device stay on it");
    test_init("{\"devices\": [{\"migMode\": 1, \"errors\": {\"nvmlDeviceGetName\": 17},"
              " \"migDevices\": [{\"errors\": {\"nvmlDeviceGetUUID\": 14, \"nvmlDeviceGetHandleByUUID\": 6}}, {}]}]}");
    d = test_gpu(0);
    nvmlDevice_t m0 = test_mig(d, 0), m1 = test_mig(d, 1);
    CHECK_RC(nv.nvmlDeviceGetUUID(m0, text, sizeof text), NVML_ERROR_CORRUPTED_INFOROM);
    CHECK_RC(nv.nvmlDeviceGetUUID(m1, text, sizeof text), NVML_SUCCESS);
    CHECK_RC(nv.nvmlDeviceGetUUID(d, text, sizeof text), NVML_SUCCESS);
    CHECK_RC(nv.nvmlDeviceGetName(d, text, sizeof text), NVML_ERROR_OPERATING_SYSTEM);
    CHECK_RC(nv.nvmlDeviceGetName(m0, text, sizeof text), NVML_SUCCESS);
    CHECK_RC(nv.nvmlDeviceGetHandleByUUID("MIG-fa4e0000-0000-4000-8000-000000000000", &m), NVML_ERROR_NOT_FOUND);
    CHECK_RC(nv.nvmlDeviceGetHandleByUUID("MIG-fa4e0000-0000-4000-8000-000000000001", &m), NVML_SUCCESS);
    CHECK(m == m1);
    test_shutdown();
}

int main(int argc, char **argv)
{
    test_begin(argc, argv, true);
    test_init(TWO_GPUS);
    test_mig_mode();
    test_mig_handles();
    test_shutdown();
    test_mig_disabled();
    test_mig_defaults_and_stale();
    test_mig_lost_and_forced();
    return test_end();
}
