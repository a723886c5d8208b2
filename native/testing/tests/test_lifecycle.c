/*
 * test_lifecycle.c: init reference counting, calls before init, configuration sources,
 * driver not loaded, bad configuration, forced init/shutdown errors, error strings.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_calls.h"
#include "test_machines.h"
#include "test_util.h"

static void test_uninitialized(void)
{
    test_section("every call before nvmlInit is UNINITIALIZED");
    test_call_args_t args = {.device = test_bogus_handle(), .other = test_bogus_handle(), .uuid = UUID0};
    for (int fn = 0; fn < FAKE_FN_COUNT; fn++) {
        if (fn == FAKE_FN_nvmlInit_v2 || fn == FAKE_FN_nvmlInitWithFlags || fn == FAKE_FN_nvmlErrorString)
            continue;
        nvmlReturn_t r = test_call((fake_fn_t)fn, &args);
        if (r != NVML_ERROR_UNINITIALIZED)
            printf("  (%s)\n", fake_fn_name((fake_fn_t)fn));
        CHECK_RC(r, NVML_ERROR_UNINITIALIZED);
    }
    /* NULL handles too: UNINITIALIZED comes before argument checks, as in NVML. */
    CHECK_RC(nv.nvmlDeviceGetCount_v2(NULL), NVML_ERROR_UNINITIALIZED);
    CHECK_RC(nv.nvmlDeviceGetUUID(NULL, NULL, 0), NVML_ERROR_UNINITIALIZED);
}

static void test_refcount(void)
{
    unsigned int count;
    test_section("init is reference counted");
    test_init(TWO_GPUS);
    CHECK_RC(nv.nvmlInit_v2(), NVML_SUCCESS);
    CHECK_RC(nv.nvmlInitWithFlags(NVML_INIT_FLAG_NO_GPUS | NVML_INIT_FLAG_NO_ATTACH), NVML_SUCCESS);
    CHECK_RC(nv.nvmlShutdown(), NVML_SUCCESS);
    CHECK_RC(nv.nvmlShutdown(), NVML_SUCCESS);
    CHECK_RC(nv.nvmlDeviceGetCount_v2(&count), NVML_SUCCESS);
    CHECK_EQ(count, 2);
    nvmlDevice_t d = test_gpu(1);
    CHECK_RC(nv.nvmlShutdown(), NVML_SUCCESS);
    CHECK_RC(nv.nvmlDeviceGetCount_v2(&count), NVML_ERROR_UNINITIALIZED);
    CHECK_RC(nv.nvmlDeviceGetIndex(d, &count), NVML_ERROR_UNINITIALIZED);
    CHECK_RC(nv.nvmlShutdown(), NVML_ERROR_UNINITIALIZED);

    test_section("the machine is reloaded at the next first init");
    test_config("{\"devices\": [{}]}");
    CHECK_RC(nv.nvmlInitWithFlags(0), NVML_SUCCESS);
    CHECK_RC(nv.nvmlDeviceGetCount_v2(&count), NVML_SUCCESS);
    CHECK_EQ(count, 1);
    /* A handle of the previous machine's second GPU is no longer valid. */
    CHECK_RC(nv.nvmlDeviceGetIndex(d, &count), NVML_ERROR_INVALID_ARGUMENT);
    test_shutdown();
}

static void test_default_machine(void)
{
    char text[NVML_DEVICE_NAME_V2_BUFFER_SIZE];
    unsigned int count, current, pending;
    int cuda;
    unsigned long long ecc;
    nvmlMemory_v2_t memory = {.version = nvmlMemory_v2};

    test_section("unset GPUSHARE_FAKE_NVML: one default H100");
    test_init(NULL);
    CHECK_RC(nv.nvmlDeviceGetCount_v2(&count), NVML_SUCCESS);
    CHECK_EQ(count, 1);
    nvmlDevice_t d = test_gpu(0);
    CHECK_RC(nv.nvmlDeviceGetName(d, text, sizeof text), NVML_SUCCESS);
    CHECK_STR(text, "NVIDIA H100 80GB HBM3");
    CHECK_RC(nv.nvmlDeviceGetUUID(d, text, sizeof text), NVML_SUCCESS);
    CHECK_STR(text, "GPU-fa4e0000-0000-4000-8000-000000000000");
    CHECK_RC(nv.nvmlDeviceGetMemoryInfo_v2(d, &memory), NVML_SUCCESS);
    CHECK_EQ(memory.total, 85520809984ULL);
    CHECK_EQ(memory.reserved, 567000000ULL);
    CHECK_EQ(memory.used, 0);
    CHECK_RC(nv.nvmlDeviceGetMigMode(d, &current, &pending), NVML_SUCCESS);
    CHECK_EQ(current, NVML_DEVICE_MIG_DISABLE);
    CHECK_RC(nv.nvmlDeviceGetTotalEccErrors(d, NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_AGGREGATE_ECC, &ecc),
             NVML_SUCCESS);
    CHECK_EQ(ecc, 0);
    CHECK_RC(nv.nvmlSystemGetDriverVersion(text, sizeof text), NVML_SUCCESS);
    CHECK_STR(text, "580.95.05");
    CHECK_RC(nv.nvmlSystemGetNVMLVersion(text, sizeof text), NVML_SUCCESS);
    CHECK_STR(text, "13.580.95.05");
    CHECK_RC(nv.nvmlSystemGetCudaDriverVersion_v2(&cuda), NVML_SUCCESS);
    CHECK_EQ(cuda, 13000);
    test_shutdown();

    test_section("empty GPUSHARE_FAKE_NVML is the default too");
    test_init("");
    CHECK_RC(nv.nvmlDeviceGetCount_v2(&count), NVML_SUCCESS);
    CHECK_EQ(count, 1);
    test_shutdown();

    test_section("a machine without \"devices\" has none");
    test_init("  {\"driverVersion\": \"535.1\"}");
    CHECK_RC(nv.nvmlDeviceGetCount_v2(&count), NVML_SUCCESS);
    CHECK_EQ(count, 0);
    nvmlDevice_t none;
    CHECK_RC(nv.nvmlDeviceGetHandleByIndex_v2(0, &none), NVML_ERROR_INVALID_ARGUMENT);
    test_shutdown();
}

static void test_config_file(void)
{
    char path[] = "/tmp/gs-test-machine-XXXXXX";
    char text[64];
    unsigned int count;
    int fd = mkstemp(path);
    const char json[] = "// a comment, as in FAKE_NVML.md\n{\"devices\": [{\"name\": \"From a file\"}, {}]}\n";

    test_section("GPUSHARE_FAKE_NVML as a file path");
    CHECK(fd >= 0);
    CHECK(fd >= 0 && write(fd, json, sizeof json - 1) == (ssize_t)(sizeof json - 1));
    if (fd >= 0)
        (void)close(fd);
    test_init(path);
    CHECK_RC(nv.nvmlDeviceGetCount_v2(&count), NVML_SUCCESS);
    CHECK_EQ(count, 2);
    CHECK_RC(nv.nvmlDeviceGetName(test_gpu(0), text, sizeof text), NVML_SUCCESS);
    CHECK_STR(text, "From a file");
    test_shutdown();
    (void)unlink(path);

    test_section("a missing file fails init with one stderr line");
    char err[1024];
    CHECK_RC(test_init_capture(path, err, sizeof err), NVML_ERROR_UNKNOWN);
    CHECK(strstr(err, "gpushare fake NVML: GPUSHARE_FAKE_NVML=/tmp/gs-test-machine-") == err);
    CHECK(strstr(err, "cannot open: No such file or directory\n") != NULL);
}

/* The example in FAKE_NVML.md must stay a valid configuration. The tests run from native/
 * (make's directory); from elsewhere this check says it is skipped. */
static void test_documented_example(void)
{
    static char doc[16384];
    const char *path = "testing/FAKE_NVML.md";
    FILE *f = fopen(path, "r");
    test_section("the FAKE_NVML.md example loads");
    if (!f) {
        printf("skip: %s not found from this directory\n", path);
        return;
    }
    size_t n = fread(doc, 1, sizeof doc - 1, f);
    (void)fclose(f);
    doc[n] = '\0';
    char *start = strstr(doc, "```jsonc\n");
    char *end = start ? strstr(start + 9, "```") : NULL;
    CHECK(start != NULL && end != NULL);
    if (!start || !end)
        return;
    *end = '\0';
    test_init(start + 9);
    unsigned int count, mode, pending;
    char uuid[96];
    CHECK_RC(nv.nvmlDeviceGetCount_v2(&count), NVML_SUCCESS);
    CHECK_EQ(count, 1);
    CHECK_RC(nv.nvmlDeviceGetUUID(test_gpu(0), uuid, sizeof uuid), NVML_SUCCESS);
    CHECK_STR(uuid, "GPU-8c1f...");
    CHECK_RC(nv.nvmlDeviceGetMigMode(test_gpu(0), &mode, &pending), NVML_SUCCESS);
    CHECK_EQ(mode, 0);
    unsigned int power;
    CHECK_RC(nv.nvmlDeviceGetPowerUsage(test_gpu(0), &power), NVML_ERROR_NOT_SUPPORTED); /* forced 3 */
    test_shutdown();
}

static void test_driver_not_loaded(void)
{
    unsigned int count;
    test_section("driverLoaded false");
    test_config("{\"driverLoaded\": false, \"devices\": [{}]}");
    CHECK_RC(nv.nvmlInit_v2(), NVML_ERROR_DRIVER_NOT_LOADED);
    CHECK_RC(nv.nvmlInitWithFlags(0), NVML_ERROR_DRIVER_NOT_LOADED);
    CHECK_RC(nv.nvmlDeviceGetCount_v2(&count), NVML_ERROR_UNINITIALIZED);
    CHECK_RC(nv.nvmlShutdown(), NVML_ERROR_UNINITIALIZED);
}

/* Each bad configuration: nvmlInit_v2 -> UNKNOWN, exactly one stderr line naming the problem. */
static void expect_bad(const char *json, const char *message_part)
{
    char err[2048];
    CHECK_RC(test_init_capture(json, err, sizeof err), NVML_ERROR_UNKNOWN);
    const char *newline = strchr(err, '\n');
    CHECK(strncmp(err, "gpushare fake NVML: ", 20) == 0);
    CHECK(newline != NULL && newline[1] == '\0');
    if (!strstr(err, message_part))
        printf("  stderr was: %s  wanted: %s\n", err, message_part);
    CHECK(strstr(err, message_part) != NULL);
    unsigned int count;
    CHECK_RC(nv.nvmlDeviceGetCount_v2(&count), NVML_ERROR_UNINITIALIZED);
}

static void test_bad_config(void)
{
    test_section("unparseable JSON");
    expect_bad("{", "invalid JSON: line 1, column 2: expected a \"key\" but found end of input");
    expect_bad("{\"devices\": [}", "invalid JSON: line 1, column 14: expected a value but found '}'");
    expect_bad("{\"devices\": [{},]}", "expected a value but found ']'");
    expect_bad("{\n  \"a\": 1,\n  \"a\": 2\n}", "line 3, column 3: duplicate key \"a\"");
    expect_bad("{} x", "unexpected 'x' after the JSON value");
    expect_bad("{\"driverVersion\": \"a\nb\"}", "control character 0x0a in string");
    expect_bad("{\"x\": 01}", "leading zeros");
    expect_bad("{/* never closed", "unterminated /* comment");

    test_section("invalid configuration");
    expect_bad("{\"devicez\": []}", "GPUSHARE_FAKE_NVML (inline JSON): unknown field \"devicez\"");
    expect_bad("{\"devices\": [{\"memoryTotl\": 1}]}", "devices[0]: unknown field \"memoryTotl\"");
    expect_bad("{\"devices\": {}}", "devices: expected an array, found object");
    expect_bad("{\"devices\": [{\"temperature\": \"hot\"}]}",
               "devices[0]: temperature: expected a number, found string");
    expect_bad("{\"devices\": [{\"temperature\": 41.5}]}", "temperature: expected an integer");
    expect_bad("{\"devices\": [{\"powerUsage\": -1}]}", "powerUsage: must not be negative");
    expect_bad("{\"devices\": [{\"utilizationGpu\": 101}]}", "utilizationGpu: 101 is larger than 100");
    expect_bad("{\"devices\": [{\"numaNode\": -2}]}", "numaNode: -2 is outside -1..2147483647");
    expect_bad("{\"devices\": [{\"memoryTotal\": 10, \"memoryUsed\": 8, \"memoryReserved\": 3}]}",
               "memoryUsed + memoryReserved (8 + 3) exceed memoryTotal (10)");
    expect_bad("{\"devices\": [{\"memoryTotal\": 18446744073709551616}]}", "memoryTotal: expected an integer");
    expect_bad("{\"devices\": [{\"uuid\": \"\"}]}", "uuid: must not be empty");
    expect_bad("{\"devices\": [{\"serial\": \"0123456789012345678901234567890\"}]}",
               "serial: longer than NVML's 29-byte buffer allows");
    expect_bad("{\"devices\": [{\"pciBusId\": \"0:19:00.0\"}]}", "pciBusId \"0:19:00.0\" is not DDDDDDDD:BB:DD.F");
    expect_bad("{\"devices\": [{\"computeCapability\": [9]}]}", "computeCapability: expected [major, minor]");
    expect_bad("{\"devices\": [{}, {\"uuid\": \"GPU-fa4e0000-0000-4000-8000-000000000000\"}]}",
               "devices[1]: uuid \"GPU-fa4e0000-0000-4000-8000-000000000000\" repeats devices[0]");
    expect_bad("{\"devices\": [{\"pciBusId\": \"0000:10:00.0\"}, {\"pciBusId\": \"00000000:10:00.0\"}]}",
               "devices[1]: pciBusId repeats devices[0]");
    expect_bad("{\"devices\": [{\"migPendingMode\": 1}]}", "migPendingMode needs migMode");
    expect_bad("{\"devices\": [{\"migMode\": 2}]}", "migMode: 2 is larger than 1");
    expect_bad("{\"devices\": [{\"migMode\": 1, \"maxMigDeviceCount\": 1, \"migDevices\": [{}, {}]}]}",
               "maxMigDeviceCount (1) is below the number of migDevices (2)");
    expect_bad("{\"devices\": [{\"migMode\": 1, \"migDevices\": [{\"gpuInstanceId\": 3}, {\"gpuInstanceId\": 3}]}]}",
               "devices[0].migDevices[1]: same gpuInstanceId/computeInstanceId as migDevices[0]");
    expect_bad("{\"devices\": [{\"migMode\": 1, \"migDevices\": [{\"size\": 1}]}]}",
               "devices[0].migDevices[0]: unknown field \"size\"");
    expect_bad("{\"devices\": [{\"migMode\": 1, \"migDevices\": [{\"uuid\": \"X\"}, {\"uuid\": \"X\"}]}]}",
               "devices[0].migDevices[1]: uuid \"X\" repeats devices[0].migDevices[0]");
    expect_bad("{\"devices\": [{\"processes\": [{\"usedGpuMemory\": 1}]}]}",
               "devices[0].processes[0]: pid is required");
    expect_bad("{\"devices\": [{\"processes\": [{\"pid\": 4294967296}]}]}",
               "pid: 4294967296 is larger than 4294967295");
    expect_bad("{\"devices\": [{\"processesGrowBy\": 257}]}", "processesGrowBy: 257 is larger than 256");
    expect_bad("{\"devices\": [{\"topology\": [0, 10, 20, 30, 40, 50, 0, 10, 20, 30, 40, 50, 0, 10, 20, 30,"
               " 40, 50, 0, 10, 20, 30, 40, 50, 0, 10, 20, 30, 40, 50, 0, 10, 20]}]}",
               "devices[0]: topology: more than 32 entries");
    expect_bad("{\"devices\": [{\"topology\": [5]}]}", "topology[0]: expected an nvmlGpuTopologyLevel_t");
    expect_bad("{\"devices\": [{\"nvlinks\": [{\"link\": 18}]}]}", "nvlinks[0]: link: 18 is larger than 17");
    expect_bad("{\"devices\": [{\"nvlinks\": [{\"link\": 1}, {\"link\": 1}]}]}", "nvlinks[1]: link 1 is listed twice");
    expect_bad("{\"devices\": [{\"nvlinks\": [{\"active\": true}]}]}", "nvlinks[0]: link is required");
    expect_bad("{\"devices\": [{\"nvlinks\": [{\"link\": 0, \"remotePciBusId\": \"bad\"}]}]}",
               "remotePciBusId \"bad\" is not DDDDDDDD:BB:DD.F");
    expect_bad("{\"devices\": [{\"lost\": 1}]}", "lost: expected true or false, found number");
    expect_bad("{\"errors\": {\"nvmlDeviceGetPowerUsage\": 3}}",
               "errors: nvmlDeviceGetPowerUsage cannot be forced here: put it in the device's \"errors\"");
    expect_bad("{\"devices\": [{\"errors\": {\"nvmlInit_v2\": 3}}]}",
               "devices[0].errors: nvmlInit_v2 cannot be forced here: put it in the top-level \"errors\"");
    expect_bad("{\"devices\": [{\"errors\": {\"nvmlDeviceGetPowerUsag\": 3}}]}",
               "\"nvmlDeviceGetPowerUsag\" is not a function the fake implements");
    expect_bad("{\"errors\": {\"nvmlErrorString\": 1}}", "nvmlErrorString cannot be forced here");
    expect_bad("{\"devices\": [{\"errors\": {\"nvmlDeviceGetPowerUsage\": -3}}]}", "must not be negative");
    expect_bad("{\"devices\": [{\"na\\nme\": 1}]}", "unknown field \"na?me\"");
}

static void test_forced_lifecycle(void)
{
    unsigned int count;
    test_section("forced nvmlInit_v2 / nvmlInitWithFlags / nvmlShutdown errors");
    test_config("{\"errors\": {\"nvmlInit_v2\": 4}}");
    CHECK_RC(nv.nvmlInit_v2(), NVML_ERROR_NO_PERMISSION);
    CHECK_RC(nv.nvmlDeviceGetCount_v2(&count), NVML_ERROR_UNINITIALIZED);
    CHECK_RC(nv.nvmlInitWithFlags(0), NVML_SUCCESS); /* only nvmlInit_v2 was forced */
    CHECK_RC(nv.nvmlInit_v2(), NVML_ERROR_NO_PERMISSION); /* nested init: still forced, no reference taken */
    test_shutdown();
    CHECK_RC(nv.nvmlShutdown(), NVML_ERROR_UNINITIALIZED);

    test_config("{\"errors\": {\"nvmlInitWithFlags\": 18, \"nvmlShutdown\": 999}}");
    CHECK_RC(nv.nvmlInitWithFlags(0), NVML_ERROR_LIB_RM_VERSION_MISMATCH);
    CHECK_RC(nv.nvmlInit_v2(), NVML_SUCCESS);
    /* A forced shutdown error still releases the reference. */
    CHECK_RC(nv.nvmlShutdown(), NVML_ERROR_UNKNOWN);
    CHECK_RC(nv.nvmlDeviceGetCount_v2(&count), NVML_ERROR_UNINITIALIZED);
}

static void test_error_strings(void)
{
    static const struct {
        nvmlReturn_t code;
        const char *text;
    } expected[] = {
        {NVML_SUCCESS, "Success"},
        {NVML_ERROR_UNINITIALIZED, "Uninitialized"},
        {NVML_ERROR_INVALID_ARGUMENT, "Invalid Argument"},
        {NVML_ERROR_NOT_SUPPORTED, "Not Supported"},
        {NVML_ERROR_NO_PERMISSION, "Insufficient Permissions"},
        {NVML_ERROR_ALREADY_INITIALIZED, "Already Initialized"},
        {NVML_ERROR_NOT_FOUND, "Not Found"},
        {NVML_ERROR_INSUFFICIENT_SIZE, "Insufficient Size"},
        {NVML_ERROR_INSUFFICIENT_POWER, "Insufficient External Power"},
        {NVML_ERROR_DRIVER_NOT_LOADED, "Driver Not Loaded"},
        {NVML_ERROR_TIMEOUT, "Timeout"},
        {NVML_ERROR_IRQ_ISSUE, "Interrupt Request Issue"},
        {NVML_ERROR_LIBRARY_NOT_FOUND, "NVML Shared Library Not Found"},
        {NVML_ERROR_FUNCTION_NOT_FOUND, "Function Not Found"},
        {NVML_ERROR_CORRUPTED_INFOROM, "Corrupted infoROM"},
        {NVML_ERROR_GPU_IS_LOST, "GPU is lost"},
        {NVML_ERROR_RESET_REQUIRED, "GPU requires reset"},
        {NVML_ERROR_OPERATING_SYSTEM, "GPU access blocked by the operating system"},
        {NVML_ERROR_LIB_RM_VERSION_MISMATCH, "Driver/library version mismatch"},
        {NVML_ERROR_IN_USE, "In use by another client"},
        {NVML_ERROR_MEMORY, "Insufficient Memory"},
        {NVML_ERROR_NO_DATA, "No data"},
        {NVML_ERROR_VGPU_ECC_NOT_SUPPORTED, "vGPU ECC not supported"},
        {NVML_ERROR_INSUFFICIENT_RESOURCES, "Insufficient Resources"},
        {NVML_ERROR_FREQ_NOT_SUPPORTED, "Invalid Frequency"},
        {NVML_ERROR_ARGUMENT_VERSION_MISMATCH, "Argument version mismatch"},
        {NVML_ERROR_DEPRECATED, "Requested functionality has been deprecated"},
        {NVML_ERROR_NOT_READY, "System is not in ready state"},
        {NVML_ERROR_GPU_NOT_FOUND, "No supported GPUs were found"},
        {NVML_ERROR_INVALID_STATE, "Resource not in correct state to perform requested operation"},
        {NVML_ERROR_UNKNOWN, "Unknown Error"},
        {(nvmlReturn_t)30, "Unknown Error"},
        {(nvmlReturn_t)12345, "Unknown Error"},
        {(nvmlReturn_t)-1, "Unknown Error"},
    };
    test_section("nvmlErrorString: NVML's own strings, no init needed");
    for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
        CHECK_STR(nv.nvmlErrorString(expected[i].code), expected[i].text);
}

int main(int argc, char **argv)
{
    test_begin(argc, argv, true);
    test_error_strings();
    test_uninitialized();
    test_refcount();
    test_default_machine();
    test_config_file();
    test_documented_example();
    test_driver_not_loaded();
    test_bad_config();
    test_forced_lifecycle();
    test_uninitialized(); /* and everything was released again */
    return test_end();
}
