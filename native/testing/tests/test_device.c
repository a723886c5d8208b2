/*
 * test_device.c: discovery, identity and telemetry on the two-GPU machine; NVML's string
 * length rule; NULL arguments; bad handles; the versioned memory struct; a lost GPU and
 * forced errors, checked over every function.
 */
#include <stdio.h>
#include <string.h>

#include "test_calls.h"
#include "test_machines.h"
#include "test_util.h"

static void test_discovery(void)
{
    unsigned int count = 99, index = 99;
    nvmlDevice_t d0, d1, by_uuid = NULL;

    test_section("count, handles by index and UUID, index");
    CHECK_RC(nv.nvmlDeviceGetCount_v2(&count), NVML_SUCCESS);
    CHECK_EQ(count, 2);
    d0 = test_gpu(0);
    d1 = test_gpu(1);
    CHECK(d0 != NULL && d1 != NULL && d0 != d1);
    CHECK(test_gpu(0) == d0); /* handles are stable */
    CHECK_RC(nv.nvmlDeviceGetHandleByUUID(UUID1, &by_uuid), NVML_SUCCESS);
    CHECK(by_uuid == d1);
    CHECK_RC(nv.nvmlDeviceGetHandleByUUID("GPU-nope", &by_uuid), NVML_ERROR_NOT_FOUND);
    CHECK_RC(nv.nvmlDeviceGetIndex(d1, &index), NVML_SUCCESS);
    CHECK_EQ(index, 1);
    CHECK_RC(nv.nvmlDeviceGetHandleByIndex_v2(2, &by_uuid), NVML_ERROR_INVALID_ARGUMENT);

    test_section("NULL arguments of the lookups");
    CHECK_RC(nv.nvmlDeviceGetCount_v2(NULL), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetHandleByIndex_v2(0, NULL), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetHandleByUUID(NULL, &by_uuid), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetHandleByUUID(UUID0, NULL), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetIndex(d0, NULL), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlSystemGetDriverVersion(NULL, 80), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlSystemGetNVMLVersion(NULL, 80), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlSystemGetCudaDriverVersion_v2(NULL), NVML_ERROR_INVALID_ARGUMENT);
}

/* NVML's rule: the string and its NUL must fit, else INSUFFICIENT_SIZE and no write. */
static void check_string(nvmlReturn_t (*get)(nvmlDevice_t, char *, unsigned int), nvmlDevice_t d, const char *want)
{
    char buf[128];
    unsigned int fit = (unsigned int)strlen(want) + 1;
    memset(buf, 'x', sizeof buf);
    CHECK_RC(get(d, buf, fit - 1), NVML_ERROR_INSUFFICIENT_SIZE);
    CHECK_EQ(buf[0], 'x');
    CHECK_RC(get(d, buf, 0), NVML_ERROR_INSUFFICIENT_SIZE);
    CHECK_RC(get(d, buf, fit), NVML_SUCCESS);
    CHECK_STR(buf, want);
    CHECK_EQ(buf[fit], 'x'); /* nothing written past the NUL */
    CHECK_RC(get(d, buf, sizeof buf), NVML_SUCCESS);
    CHECK_STR(buf, want);
    CHECK_RC(get(d, NULL, sizeof buf), NVML_ERROR_INVALID_ARGUMENT);
}

static void check_system_string(nvmlReturn_t (*get)(char *, unsigned int), const char *want)
{
    char buf[128];
    unsigned int fit = (unsigned int)strlen(want) + 1;
    CHECK_RC(get(buf, fit - 1), NVML_ERROR_INSUFFICIENT_SIZE);
    CHECK_RC(get(buf, fit), NVML_SUCCESS);
    CHECK_STR(buf, want);
}

static void test_identity(void)
{
    nvmlDevice_t d0 = test_gpu(0), d1 = test_gpu(1);
    int major = -1, minor = -1, cuda = 0;
    unsigned int node = 99;
    nvmlPciInfo_t pci;
    nvmlDeviceAttributes_t a;

    test_section("strings: UUID, name, serial, driver and NVML versions");
    check_string(nv.nvmlDeviceGetUUID, d0, UUID0);
    check_string(nv.nvmlDeviceGetUUID, d1, UUID1);
    check_string(nv.nvmlDeviceGetName, d0, "NVIDIA H100 80GB HBM3");
    check_string(nv.nvmlDeviceGetName, d1, "NVIDIA A100-SXM4-40GB");
    check_string(nv.nvmlDeviceGetSerial, d0, "1650123456789");
    check_system_string(nv.nvmlSystemGetDriverVersion, "580.95.05");
    check_system_string(nv.nvmlSystemGetNVMLVersion, "13.580.95.05");
    CHECK_RC(nv.nvmlSystemGetCudaDriverVersion_v2(&cuda), NVML_SUCCESS);
    CHECK_EQ(cuda, 13000);

    test_section("PCI info");
    memset(&pci, 0x5a, sizeof pci);
    CHECK_RC(nv.nvmlDeviceGetPciInfo_v3(d0, &pci), NVML_SUCCESS);
    CHECK_STR(pci.busId, "00000000:19:00.0");
    CHECK_STR(pci.busIdLegacy, "0000:19:00.0");
    CHECK_EQ(pci.domain, 0);
    CHECK_EQ(pci.bus, 0x19);
    CHECK_EQ(pci.device, 0);
    CHECK_EQ(pci.pciDeviceId, 590418142);
    CHECK_EQ(pci.pciSubSystemId, 0x16C110DE);
    CHECK_RC(nv.nvmlDeviceGetPciInfo_v3(d1, &pci), NVML_SUCCESS);
    CHECK_STR(pci.busId, "00000000:2A:00.0"); /* upper case, as NVML prints it */
    CHECK_EQ(pci.pciSubSystemId, 0x16C110DE); /* the default */
    CHECK_RC(nv.nvmlDeviceGetPciInfo_v3(d0, NULL), NVML_ERROR_INVALID_ARGUMENT);

    test_section("NUMA node, compute capability, attributes");
    CHECK_RC(nv.nvmlDeviceGetNumaNodeId(d0, &node), NVML_SUCCESS);
    CHECK_EQ(node, 0);
    CHECK_RC(nv.nvmlDeviceGetNumaNodeId(d1, &node), NVML_ERROR_NOT_SUPPORTED); /* numaNode -1 */
    CHECK_RC(nv.nvmlDeviceGetNumaNodeId(d0, NULL), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetCudaComputeCapability(d1, &major, &minor), NVML_SUCCESS);
    CHECK_EQ(major, 8);
    CHECK_EQ(minor, 0);
    CHECK_RC(nv.nvmlDeviceGetCudaComputeCapability(d0, NULL, &minor), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetCudaComputeCapability(d0, &major, NULL), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetAttributes_v2(d0, &a), NVML_SUCCESS);
    CHECK_EQ(a.multiprocessorCount, 132);
    CHECK_EQ(a.sharedCopyEngineCount, 8);
    CHECK_EQ(a.sharedDecoderCount, 7);
    CHECK_EQ(a.sharedEncoderCount, 0);
    CHECK_EQ(a.sharedJpegCount, 7);
    CHECK_EQ(a.sharedOfaCount, 1);
    CHECK_EQ(a.gpuInstanceSliceCount, 7);
    CHECK_EQ(a.computeInstanceSliceCount, 7);
    CHECK_EQ(a.memorySizeMB, 81559);
    CHECK_RC(nv.nvmlDeviceGetAttributes_v2(d1, &a), NVML_SUCCESS);
    CHECK_EQ(a.multiprocessorCount, 108);
    CHECK_EQ(a.memorySizeMB, 40960);
    CHECK_RC(nv.nvmlDeviceGetAttributes_v2(d0, NULL), NVML_ERROR_INVALID_ARGUMENT);
}

static void test_memory(void)
{
    nvmlDevice_t d0 = test_gpu(0), d1 = test_gpu(1);
    nvmlMemory_t m1;
    nvmlMemory_v2_t m2;

    test_section("memory v1 counts reserved memory as used");
    CHECK_RC(nv.nvmlDeviceGetMemoryInfo(d0, &m1), NVML_SUCCESS);
    CHECK_EQ(m1.total, 85520809984ULL);
    CHECK_EQ(m1.used, 5678000ULL + 567000000ULL);
    CHECK_EQ(m1.free, 85520809984ULL - 5678000ULL - 567000000ULL);
    CHECK_RC(nv.nvmlDeviceGetMemoryInfo(d1, &m1), NVML_SUCCESS);
    CHECK_EQ(m1.used, 1073741824ULL);
    CHECK_EQ(m1.free, 42949672960ULL - 1073741824ULL);
    CHECK_RC(nv.nvmlDeviceGetMemoryInfo(d0, NULL), NVML_ERROR_INVALID_ARGUMENT);

    test_section("memory v2: versioned struct, reserved apart");
    CHECK_EQ(nvmlMemory_v2, 0x02000028u);
    CHECK_EQ(sizeof(nvmlMemory_v2_t), 40);
    memset(&m2, 0, sizeof m2);
    m2.version = nvmlMemory_v2;
    CHECK_RC(nv.nvmlDeviceGetMemoryInfo_v2(d0, &m2), NVML_SUCCESS);
    CHECK_EQ(m2.version, nvmlMemory_v2);
    CHECK_EQ(m2.total, 85520809984ULL);
    CHECK_EQ(m2.reserved, 567000000ULL);
    CHECK_EQ(m2.used, 5678000ULL);
    CHECK_EQ(m2.free, 85520809984ULL - 5678000ULL - 567000000ULL);

    test_section("memory v2: a wrong version is ARGUMENT_VERSION_MISMATCH");
    const unsigned int wrong[] = {0, 1, 2, 2u << 24, sizeof m2 | (1u << 24), (sizeof m2 + 8) | (2u << 24), 40};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        memset(&m2, 0, sizeof m2);
        m2.version = wrong[i];
        CHECK_RC(nv.nvmlDeviceGetMemoryInfo_v2(d0, &m2), NVML_ERROR_ARGUMENT_VERSION_MISMATCH);
        CHECK_EQ(m2.total, 0);
    }
    CHECK_RC(nv.nvmlDeviceGetMemoryInfo_v2(d0, NULL), NVML_ERROR_INVALID_ARGUMENT);
}

static void test_telemetry(void)
{
    nvmlDevice_t d0 = test_gpu(0), d1 = test_gpu(1);
    nvmlUtilization_t u;
    unsigned int v = 0;
    unsigned long long reasons = 0, ecc = 99;

    test_section("utilization, temperature, power");
    CHECK_RC(nv.nvmlDeviceGetUtilizationRates(d0, &u), NVML_SUCCESS);
    CHECK_EQ(u.gpu, 37);
    CHECK_EQ(u.memory, 12);
    CHECK_RC(nv.nvmlDeviceGetUtilizationRates(d0, NULL), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetTemperature(d1, NVML_TEMPERATURE_GPU, &v), NVML_SUCCESS);
    CHECK_EQ(v, 66);
    CHECK_RC(nv.nvmlDeviceGetTemperature(d1, (nvmlTemperatureSensors_t)1, &v), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetTemperature(d1, NVML_TEMPERATURE_GPU, NULL), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetPowerUsage(d0, &v), NVML_SUCCESS);
    CHECK_EQ(v, 71234);
    CHECK_RC(nv.nvmlDeviceGetPowerUsage(d0, NULL), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetEnforcedPowerLimit(d0, &v), NVML_SUCCESS);
    CHECK_EQ(v, 700000);
    CHECK_RC(nv.nvmlDeviceGetEnforcedPowerLimit(d0, NULL), NVML_ERROR_INVALID_ARGUMENT);

    test_section("clocks");
    const struct {
        nvmlClockType_t type;
        unsigned int current0, max0, current1, max1;
    } clocks[] = {
        {NVML_CLOCK_GRAPHICS, 1750, 1985, 1410, 1410}, /* d1: graphics defaults to SM */
        {NVML_CLOCK_SM, 1755, 1980, 1410, 1410},
        {NVML_CLOCK_MEM, 2619, 2619, 1215, 1215},
        {NVML_CLOCK_VIDEO, 1500, 1710, 1755, 1755}, /* d1: the defaults */
    };
    for (size_t i = 0; i < sizeof clocks / sizeof clocks[0]; i++) {
        CHECK_RC(nv.nvmlDeviceGetClockInfo(d0, clocks[i].type, &v), NVML_SUCCESS);
        CHECK_EQ(v, clocks[i].current0);
        CHECK_RC(nv.nvmlDeviceGetMaxClockInfo(d0, clocks[i].type, &v), NVML_SUCCESS);
        CHECK_EQ(v, clocks[i].max0);
        CHECK_RC(nv.nvmlDeviceGetClockInfo(d1, clocks[i].type, &v), NVML_SUCCESS);
        CHECK_EQ(v, clocks[i].current1);
        CHECK_RC(nv.nvmlDeviceGetMaxClockInfo(d1, clocks[i].type, &v), NVML_SUCCESS);
        CHECK_EQ(v, clocks[i].max1);
    }
    CHECK_RC(nv.nvmlDeviceGetClockInfo(d0, (nvmlClockType_t)4, &v), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetMaxClockInfo(d0, (nvmlClockType_t)4, &v), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetClockInfo(d0, NVML_CLOCK_SM, NULL), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetMaxClockInfo(d0, NVML_CLOCK_SM, NULL), NVML_ERROR_INVALID_ARGUMENT);

    test_section("clocks event reasons, under both names");
    CHECK_RC(nv.nvmlDeviceGetCurrentClocksEventReasons(d0, &reasons), NVML_SUCCESS);
    CHECK_EQ(reasons, nvmlClocksEventReasonGpuIdle | nvmlClocksEventReasonSwPowerCap);
    CHECK_RC(nv.nvmlDeviceGetCurrentClocksThrottleReasons(d0, &reasons), NVML_SUCCESS);
    CHECK_EQ(reasons, 5);
    CHECK_RC(nv.nvmlDeviceGetCurrentClocksEventReasons(d1, &reasons), NVML_SUCCESS);
    CHECK_EQ(reasons, ~0ULL);
    CHECK_RC(nv.nvmlDeviceGetCurrentClocksEventReasons(d0, NULL), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetCurrentClocksThrottleReasons(d0, NULL), NVML_ERROR_INVALID_ARGUMENT);

    test_section("ECC totals");
    CHECK_RC(nv.nvmlDeviceGetTotalEccErrors(d0, NVML_MEMORY_ERROR_TYPE_CORRECTED, NVML_VOLATILE_ECC, &ecc),
             NVML_SUCCESS);
    CHECK_EQ(ecc, 3);
    CHECK_RC(nv.nvmlDeviceGetTotalEccErrors(d0, NVML_MEMORY_ERROR_TYPE_CORRECTED, NVML_AGGREGATE_ECC, &ecc),
             NVML_SUCCESS);
    CHECK_EQ(ecc, 3);
    CHECK_RC(nv.nvmlDeviceGetTotalEccErrors(d0, NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_VOLATILE_ECC, &ecc),
             NVML_SUCCESS);
    CHECK_EQ(ecc, 0);
    /* d1: eccCorrected null and eccUncorrected absent both mean NOT_SUPPORTED. */
    CHECK_RC(nv.nvmlDeviceGetTotalEccErrors(d1, NVML_MEMORY_ERROR_TYPE_CORRECTED, NVML_VOLATILE_ECC, &ecc),
             NVML_ERROR_NOT_SUPPORTED);
    CHECK_RC(nv.nvmlDeviceGetTotalEccErrors(d1, NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_VOLATILE_ECC, &ecc),
             NVML_ERROR_NOT_SUPPORTED);
    CHECK_RC(nv.nvmlDeviceGetTotalEccErrors(d0, (nvmlMemoryErrorType_t)2, NVML_VOLATILE_ECC, &ecc),
             NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetTotalEccErrors(d0, NVML_MEMORY_ERROR_TYPE_CORRECTED, (nvmlEccCounterType_t)2, &ecc),
             NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetTotalEccErrors(d0, NVML_MEMORY_ERROR_TYPE_CORRECTED, NVML_VOLATILE_ECC, NULL),
             NVML_ERROR_INVALID_ARGUMENT);

    test_section("energy and PCIe replays");
    unsigned long long energy = 0;
    unsigned int replays = 99;
    CHECK_RC(nv.nvmlDeviceGetTotalEnergyConsumption(d0, &energy), NVML_SUCCESS);
    CHECK_EQ(energy, 123456789012ULL);
    CHECK_RC(nv.nvmlDeviceGetPcieReplayCounter(d0, &replays), NVML_SUCCESS);
    CHECK_EQ(replays, 7);
    /* d1 leaves both out: NOT_SUPPORTED, as a GPU without the counter answers. */
    CHECK_RC(nv.nvmlDeviceGetTotalEnergyConsumption(d1, &energy), NVML_ERROR_NOT_SUPPORTED);
    CHECK_RC(nv.nvmlDeviceGetPcieReplayCounter(d1, &replays), NVML_ERROR_NOT_SUPPORTED);
    CHECK_RC(nv.nvmlDeviceGetTotalEnergyConsumption(d0, NULL), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetPcieReplayCounter(d0, NULL), NVML_ERROR_INVALID_ARGUMENT);
}

/* Every function taking a device must reject a handle it did not give out. */
static void test_bad_handles(void)
{
    test_section("bad handles are INVALID_ARGUMENT for every function taking one");
    const nvmlDevice_t bad[] = {NULL, test_bogus_handle(), (nvmlDevice_t)(void *)((char *)test_gpu(0) + 1)};
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        test_call_args_t args = {.device = bad[b], .other = test_gpu(1)};
        for (int fn = 0; fn < FAKE_FN_COUNT; fn++) {
            if (!test_takes_device((fake_fn_t)fn))
                continue;
            nvmlReturn_t r = test_call((fake_fn_t)fn, &args);
            if (r != NVML_ERROR_INVALID_ARGUMENT)
                printf("  (%s, bad handle %zu)\n", fake_fn_name((fake_fn_t)fn), b);
            CHECK_RC(r, NVML_ERROR_INVALID_ARGUMENT);
        }
    }
}

static void test_lost_gpu(void)
{
    unsigned int count;
    char name[96];
    test_section("a lost GPU: every call taking it is GPU_IS_LOST, the other GPU works");
    test_init("{\"devices\": [{\"lost\": true}, {\"migMode\": 1, \"migDevices\": [{}]}]}");
    CHECK_RC(nv.nvmlDeviceGetCount_v2(&count), NVML_SUCCESS);
    CHECK_EQ(count, 2);
    nvmlDevice_t lost = test_gpu(0), good = test_gpu(1);
    nvmlDevice_t by_uuid = NULL;
    CHECK_RC(nv.nvmlDeviceGetHandleByUUID("GPU-fa4e0000-0000-4000-8000-000000000000", &by_uuid), NVML_SUCCESS);
    CHECK(by_uuid == lost);
    test_call_args_t args = {.device = lost, .other = good};
    for (int fn = 0; fn < FAKE_FN_COUNT; fn++) {
        if (!test_takes_device((fake_fn_t)fn))
            continue;
        nvmlReturn_t r = test_call((fake_fn_t)fn, &args);
        if (r != NVML_ERROR_GPU_IS_LOST)
            printf("  (%s)\n", fake_fn_name((fake_fn_t)fn));
        CHECK_RC(r, NVML_ERROR_GPU_IS_LOST);
    }
    /* As the second device of a topology query too. */
    nvmlGpuTopologyLevel_t level;
    CHECK_RC(nv.nvmlDeviceGetTopologyCommonAncestor(good, lost, &level), NVML_ERROR_GPU_IS_LOST);
    /* Argument errors still come first. */
    CHECK_RC(nv.nvmlDeviceGetPowerUsage(lost, NULL), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetName(good, name, sizeof name), NVML_SUCCESS);
    test_shutdown();
}

/* Forces a distinct code on every function of GPU 1 (but its lookup by index, to get a
 * handle) and on every SYSTEM-scope one but the lifecycle calls, then checks that each
 * call returns exactly its own code: nothing forced leaks to another function or device. */
static void test_forced_table(void)
{
    char json[8192];
    size_t n = 0;
    const char *sep = "";
    test_section("forced errors over the whole function table");
    n += (size_t)snprintf(json + n, sizeof json - n, "{\"errors\": {");
    for (int fn = 0; fn < FAKE_FN_COUNT; fn++) {
        if (fake_fn_scope((fake_fn_t)fn) != FAKE_SCOPE_SYSTEM || fn == FAKE_FN_nvmlInit_v2 ||
            fn == FAKE_FN_nvmlInitWithFlags || fn == FAKE_FN_nvmlShutdown)
            continue;
        n += (size_t)snprintf(json + n, sizeof json - n, "%s\"%s\": %d", sep, fake_fn_name((fake_fn_t)fn), 100 + fn);
        sep = ", ";
    }
    n += (size_t)snprintf(json + n, sizeof json - n, "}, \"devices\": [{}, {\"uuid\": \"GPU-forced\", \"errors\": {");
    sep = "";
    for (int fn = 0; fn < FAKE_FN_COUNT; fn++) {
        if (fake_fn_scope((fake_fn_t)fn) != FAKE_SCOPE_DEVICE || fn == FAKE_FN_nvmlDeviceGetHandleByIndex_v2)
            continue;
        n += (size_t)snprintf(json + n, sizeof json - n, "%s\"%s\": %d", sep, fake_fn_name((fake_fn_t)fn), 200 + fn);
        sep = ", ";
    }
    (void)snprintf(json + n, sizeof json - n, "}}]}");
    test_init(json);

    nvmlDevice_t good = NULL, forced = NULL;
    CHECK_RC(nv.nvmlDeviceGetHandleByIndex_v2(0, &good), NVML_SUCCESS);
    CHECK_RC(nv.nvmlDeviceGetHandleByIndex_v2(1, &forced), NVML_SUCCESS);
    test_call_args_t args = {.device = forced, .other = good, .index = 1, .uuid = "GPU-forced"};
    for (int fn = 0; fn < FAKE_FN_COUNT; fn++) {
        fake_scope_t scope = fake_fn_scope((fake_fn_t)fn);
        nvmlReturn_t want;
        if (scope == FAKE_SCOPE_NONE || fn == FAKE_FN_nvmlInit_v2 || fn == FAKE_FN_nvmlInitWithFlags ||
            fn == FAKE_FN_nvmlShutdown)
            continue;
        if (fn == FAKE_FN_nvmlDeviceGetHandleByIndex_v2)
            want = NVML_SUCCESS;
        else
            want = (nvmlReturn_t)((scope == FAKE_SCOPE_SYSTEM ? 100 : 200) + fn);
        nvmlReturn_t r = test_call((fake_fn_t)fn, &args);
        if (r != want)
            printf("  (%s)\n", fake_fn_name((fake_fn_t)fn));
        CHECK_RC(r, want);
    }
    /* The unforced GPU is untouched, except by the top-level (system) errors. */
    test_call_args_t other = {.device = good, .other = forced, .index = 0,
                              .uuid = "GPU-fa4e0000-0000-4000-8000-000000000000"};
    CHECK_RC(test_call(FAKE_FN_nvmlDeviceGetPowerUsage, &other), NVML_SUCCESS);
    CHECK_RC(test_call(FAKE_FN_nvmlDeviceGetHandleByUUID, &other), NVML_SUCCESS);
    CHECK_RC(test_call(FAKE_FN_nvmlDeviceGetTopologyCommonAncestor, &other), NVML_SUCCESS);
    /* NULL arguments are checked before a forced code. */
    CHECK_RC(nv.nvmlDeviceGetPowerUsage(forced, NULL), NVML_ERROR_INVALID_ARGUMENT);
    CHECK_RC(nv.nvmlDeviceGetCount_v2(NULL), NVML_ERROR_INVALID_ARGUMENT);
    /* Forcing 0 is the same as not forcing. */
    test_shutdown();
    test_init("{\"devices\": [{\"errors\": {\"nvmlDeviceGetPowerUsage\": 0}}]}");
    unsigned int power;
    CHECK_RC(nv.nvmlDeviceGetPowerUsage(test_gpu(0), &power), NVML_SUCCESS);
    test_shutdown();
}

int main(int argc, char **argv)
{
    test_begin(argc, argv, true);
    test_init(TWO_GPUS);
    test_discovery();
    test_identity();
    test_memory();
    test_telemetry();
    test_bad_handles();
    test_shutdown();
    test_lost_gpu();
    test_forced_table();
    return test_end();
}
