/* test_config.c: the environment parser, table-driven, under ASan/UBSan. */
#include "gs_config.h"

#include <stdio.h>
#include <string.h>

static int failures;
static int checks;

#define CHECK(cond, ...)                                                          \
    do {                                                                          \
        checks++;                                                                 \
        if (!(cond)) {                                                            \
            failures++;                                                           \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                  \
            fprintf(stderr, __VA_ARGS__);                                         \
            fputc('\n', stderr);                                                  \
        }                                                                         \
    } while (0)

typedef struct {
    const char *pairs[32]; /* name, value, name, value, ..., NULL */
} env_table;

static const char *table_getenv(void *ctx, const char *name) {
    const env_table *t = ctx;
    for (int i = 0; t->pairs[i] != NULL; i += 2) {
        if (strcmp(t->pairs[i], name) == 0) return t->pairs[i + 1];
    }
    return NULL;
}

typedef struct {
    int count;
    char last_var[64];
    char last_message[512];
} reports;

static void record(void *ctx, const char *variable, const char *message) {
    reports *r = ctx;
    r->count++;
    snprintf(r->last_var, sizeof r->last_var, "%s", variable);
    snprintf(r->last_message, sizeof r->last_message, "%s", message);
}

static int load(gs_config *c, reports *r, env_table env) {
    memset(r, 0, sizeof *r);
    return gs_config_load(c, table_getenv, &env, record, r);
}

static const uint64_t MiB = 1ull << 20, GiB = 1ull << 30;

static void test_bytes(void) {
    struct { const char *text; uint64_t bytes; } good[] = {
        {"8Gi", 8 * GiB}, {"8192Mi", 8 * GiB}, {"8G", 8000000000ull}, {"8GiB", 8 * GiB}, {"1.5Gi", 3 * GiB / 2},
        {"64Mi", 64 * MiB}, {"4096", 4096}, {" 4Ki ", 4096}, {"1k", 1000},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t b = 0;
        char why[256] = "";
        CHECK(gs_parse_bytes(good[i].text, &b, why, sizeof why) == 0 && b == good[i].bytes, "parse_bytes(%s) = %llu (%s)", good[i].text, (unsigned long long)b, why);
    }
    struct { const char *text; const char *why; } bad[] = {
        {"", "not a size"}, {"-8Gi", "negative"}, {"0", "zero"}, {"4096m", "ambiguous"}, {"4g", "ambiguous"},
        {"8Xi", "unknown unit"}, {"eight", "not a size"}, {"1.5", "whole number"}, {"99999999Pi", "too large"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t b = 12345;
        char why[256] = "";
        CHECK(gs_parse_bytes(bad[i].text, &b, why, sizeof why) == -1 && strstr(why, bad[i].why) != NULL && b == 12345, "parse_bytes(%s) should fail with '%s', got '%s'", bad[i].text, bad[i].why, why);
    }
}

static void test_hami_bytes(void) {
    struct { const char *text; uint64_t bytes; } good[] = {{"4096m", 4 * GiB}, {"4g", 4 * GiB}, {"4G", 4 * GiB}, {"512k", 512 * 1024}, {"1000", 1000}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t b = 0;
        char why[256] = "";
        CHECK(gs_parse_hami_bytes(good[i].text, &b, why, sizeof why) == 0 && b == good[i].bytes, "parse_hami_bytes(%s) = %llu (%s)", good[i].text, (unsigned long long)b, why);
    }
    const char *bad[] = {"", "4Gi", "-1g", "1.5g", "0", "g", "99999999999999999999g"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t b = 0;
        char why[256] = "";
        CHECK(gs_parse_hami_bytes(bad[i], &b, why, sizeof why) == -1 && why[0] != '\0', "parse_hami_bytes(%s) should fail", bad[i]);
    }
}

static void test_whole_and_per_device(void) {
    gs_config c;
    reports r;
    CHECK(load(&c, &r, (env_table){{"GPUSHARE_MEMORY_LIMIT", "64Mi", NULL}}) == 0, "64Mi: %s", r.last_message);
    CHECK(gs_config_memory_limit(&c, 0, NULL).bytes == 64 * MiB && gs_config_memory_limit(&c, 3, "GPU-x").bytes == 64 * MiB, "64Mi applies to every device");

    CHECK(load(&c, &r, (env_table){{"GPUSHARE_MEMORY_LIMIT", "0=8Gi,1=4Gi,GPU-1234-abcd=2Gi", NULL}}) == 0, "per device: %s", r.last_message);
    CHECK(gs_config_memory_limit(&c, 0, "GPU-other").bytes == 8 * GiB, "device 0");
    CHECK(gs_config_memory_limit(&c, 1, NULL).bytes == 4 * GiB, "device 1");
    CHECK(gs_config_memory_limit(&c, 1, "GPU-1234-abcd").bytes == 2 * GiB, "a UUID entry beats an ordinal one");
    CHECK(gs_config_memory_limit(&c, 2, NULL).kind == GS_LIMIT_NONE, "device 2 has no limit");

    /* The driver's 16 bytes print as GPU-... in our code and as MIG-... in NVML/nvidia-smi for
     * a MIG device: a MIG- key matches that device, in either hex case. */
    CHECK(load(&c, &r, (env_table){{"GPUSHARE_MEMORY_LIMIT", "MIG-FA4E0001-0000-4000-8000-000000000002=3Gi", NULL}}) == 0, "MIG key: %s", r.last_message);
    CHECK(gs_config_memory_limit(&c, 0, "GPU-fa4e0001-0000-4000-8000-000000000002").bytes == 3 * GiB, "MIG- key matches the driver's UUID");
    CHECK(gs_config_memory_limit(&c, 0, "GPU-fa4e0001-0000-4000-8000-000000000003").kind == GS_LIMIT_NONE, "another UUID does not match");
    CHECK(gs_uuid_same("GPU-ab", "mig-AB") && !gs_uuid_same("GPU-ab", "GPU-abc") && !gs_uuid_same("GPU-", "MIG-") && !gs_uuid_same(NULL, "GPU-a"), "gs_uuid_same");

    CHECK(load(&c, &r, (env_table){{"GPUSHARE_MEMORY_LIMIT", "50%", NULL}}) == 0, "50%%");
    gs_memory_limit half = gs_config_memory_limit(&c, 0, NULL);
    CHECK(half.kind == GS_LIMIT_FRACTION && gs_memory_limit_resolve(half, 81559 * MiB) == 40779 * MiB, "50%% of an H100 is 40779 MiB");
    CHECK(gs_memory_limit_resolve((gs_memory_limit){GS_LIMIT_BYTES, 100 * GiB, 0}, 80 * GiB) == 80 * GiB, "limit above physical resolves to physical");
    CHECK(gs_memory_limit_resolve((gs_memory_limit){GS_LIMIT_NONE, 0, 0}, 80 * GiB) == UINT64_MAX, "no limit");
}

static void test_hami_compat_and_precedence(void) {
    gs_config c;
    reports r;
    CHECK(load(&c, &r, (env_table){{"CUDA_DEVICE_MEMORY_LIMIT", "4096m", "CUDA_DEVICE_MEMORY_LIMIT_1", "1g", "CUDA_DEVICE_SM_LIMIT", "30", NULL}}) == 0, "hami: %s", r.last_message);
    CHECK(gs_config_memory_limit(&c, 0, NULL).bytes == 4 * GiB && gs_config_memory_limit(&c, 1, NULL).bytes == 1 * GiB, "HAMi memory limits");
    CHECK(gs_config_compute_limit(&c, 0, NULL) == 30, "HAMi SM limit");

    CHECK(load(&c, &r, (env_table){{"CUDA_DEVICE_MEMORY_LIMIT", "4096m", "CUDA_DEVICE_MEMORY_LIMIT_1", "1g", "GPUSHARE_MEMORY_LIMIT", "2Gi", NULL}}) == 0, "both");
    CHECK(gs_config_memory_limit(&c, 0, NULL).bytes == 2 * GiB && gs_config_memory_limit(&c, 1, NULL).bytes == 2 * GiB, "GPUSHARE_MEMORY_LIMIT wins over every HAMi memory variable");

    CHECK(load(&c, &r, (env_table){{"CUDA_DEVICE_SM_LIMIT", "100", "CUDA_DEVICE_SM_LIMIT_1", "0", NULL}}) == 0, "sm 100/0");
    CHECK(gs_config_compute_limit(&c, 0, NULL) == 0 && gs_config_compute_limit(&c, 1, NULL) == 0, "HAMi SM limit 100 or 0 means none");

    CHECK(load(&c, &r, (env_table){{"CUDA_DEVICE_SM_LIMIT", "30", "GPUSHARE_COMPUTE_LIMIT", "0=50", NULL}}) == 0, "compute precedence");
    CHECK(gs_config_compute_limit(&c, 0, NULL) == 50 && gs_config_compute_limit(&c, 1, NULL) == 0, "GPUSHARE_COMPUTE_LIMIT replaces CUDA_DEVICE_SM_LIMIT");

    CHECK(load(&c, &r, (env_table){{"CUDA_DEVICE_MEMORY_SHARED_CACHE", "/tmp/hami.cache", NULL}}) == 0 && strcmp(c.region_path, "/tmp/hami.cache") == 0, "HAMi shared cache path");
    CHECK(load(&c, &r, (env_table){{"CUDA_DEVICE_MEMORY_SHARED_CACHE", "/tmp/hami.cache", "GPUSHARE_REGION", "/tmp/own", NULL}}) == 0 && strcmp(c.region_path, "/tmp/own") == 0, "GPUSHARE_REGION wins");
    CHECK(load(&c, &r, (env_table){{"CUDA_TASK_PRIORITY", "0", NULL}}) == 0 && c.priority == GS_PRIORITY_HIGH, "HAMi priority 0 is high");
    CHECK(load(&c, &r, (env_table){{"CUDA_TASK_PRIORITY", "0", "GPUSHARE_PRIORITY", "low", NULL}}) == 0 && c.priority == GS_PRIORITY_LOW, "GPUSHARE_PRIORITY wins");
}

static void test_bad_values_are_reported_and_ignored(void) {
    gs_config c;
    reports r;
    CHECK(load(&c, &r, (env_table){{"GPUSHARE_MEMORY_LIMIT", "4096m", NULL}}) == 1 && strcmp(r.last_var, "GPUSHARE_MEMORY_LIMIT") == 0 && strstr(r.last_message, "ambiguous") != NULL, "ambiguous unit reported: %s", r.last_message);
    CHECK(gs_config_memory_limit(&c, 0, NULL).kind == GS_LIMIT_NONE, "a bad value is ignored");

    CHECK(load(&c, &r, (env_table){{"GPUSHARE_MEMORY_LIMIT", "0=8Gi,1=lots", "CUDA_DEVICE_MEMORY_LIMIT", "1g", NULL}}) == 1, "one bad item");
    CHECK(gs_config_memory_limit(&c, 0, NULL).bytes == 1 * GiB, "a bad GPUSHARE value falls back to HAMi's, whole (not half-applied)");

    struct { const char *name, *value, *why; } bad[] = {
        {"GPUSHARE_MEMORY_LIMIT", "x=8Gi", "DEVICE=VALUE"},
        {"GPUSHARE_MEMORY_LIMIT", "0=8Gi,,1=2Gi", "empty"},
        {"GPUSHARE_MEMORY_LIMIT", "150%", "share of memory"},
        {"GPUSHARE_COMPUTE_LIMIT", "150", "1 to 100"},
        {"GPUSHARE_COMPUTE_LIMIT", "0=-5", "1 to 100"},
        {"CUDA_DEVICE_MEMORY_LIMIT", "4Gi", "HAMi-core size"},
        {"CUDA_DEVICE_MEMORY_LIMIT_2", "lots", "HAMi-core size"},
        {"GPUSHARE_PRIORITY", "urgent", "high, normal or low"},
        {"CUDA_TASK_PRIORITY", "7", "0 (high) or 1 (low)"},
        {"GPUSHARE_ISOLATION", "mps", "time-slice or sm-partition"},
        {"GPUSHARE_LOG_LEVEL", "loud", "error, warn, info or debug"},
        {"GPUSHARE_SCRUB", "maybe", "1 or 0"},
        {"GPUSHARE_COMPUTE_BOARD", "mine", "shared or per-user"},
        {"GPUSHARE_COMPUTE_ACCOUNTING", "clock", "throughput, gpu or time"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int n = load(&c, &r, (env_table){{bad[i].name, bad[i].value, NULL}});
        CHECK(n == 1 && strcmp(r.last_var, bad[i].name) == 0 && strstr(r.last_message, bad[i].why) != NULL, "%s=%s: expected '%s', got %d report(s): %s", bad[i].name, bad[i].value, bad[i].why, n, r.last_message);
    }
}

static void test_switches(void) {
    gs_config c;
    reports r;
    CHECK(load(&c, &r, (env_table){{NULL}}) == 0 && !c.oversubscribe && !c.scrub && c.priority == GS_PRIORITY_NORMAL && c.log_level == GS_LOG_WARN && c.region_path[0] == '\0', "defaults");
    CHECK(load(&c, &r, (env_table){{"GPUSHARE_OVERSUBSCRIBE", "1", "GPUSHARE_SCRUB", "true", "GPUSHARE_ISOLATION", "sm-partition", "GPUSHARE_LOG_LEVEL", "debug", NULL}}) == 0, "switches");
    CHECK(c.oversubscribe && c.scrub && c.isolation == GS_ISOLATION_SM_PARTITION && c.log_level == GS_LOG_DEBUG, "switches set");
    CHECK(!c.compute_board_per_user, "one shared compute board by default");
    CHECK(load(&c, &r, (env_table){{"GPUSHARE_COMPUTE_BOARD", "per-user", NULL}}) == 0 && c.compute_board_per_user, "boards per user");
    CHECK(load(&c, &r, (env_table){{"GPUSHARE_COMPUTE_BOARD", "shared", NULL}}) == 0 && !c.compute_board_per_user, "a shared board, said");
    CHECK(load(&c, &r, (env_table){{NULL}}) == 0 && c.compute_accounting == GS_ACCOUNT_THROUGHPUT, "throughput accounting by default");
    CHECK(load(&c, &r, (env_table){{"GPUSHARE_COMPUTE_ACCOUNTING", "gpu", NULL}}) == 0 && c.compute_accounting == GS_ACCOUNT_GPU, "gpu accounting");
    CHECK(load(&c, &r, (env_table){{"GPUSHARE_COMPUTE_ACCOUNTING", "time", NULL}}) == 0 && c.compute_accounting == GS_ACCOUNT_TIME, "time accounting");
    CHECK(load(&c, &r, (env_table){{"GPUSHARE_COMPUTE_ACCOUNTING", "Gpu", NULL}}) == 1 && c.compute_accounting == GS_ACCOUNT_THROUGHPUT, "a bad accounting: said, the default kept");
}

/* GPUSHARE_SM_OFFSET: whole, per ordinal (falling back to the whole value), and bad forms. */
static void test_sm_offset(void) {
    gs_config c;
    reports r;
    CHECK(load(&c, &r, (env_table){{NULL}}) == 0 && gs_config_sm_offset(&c, 0) == -1, "unset: -1");
    CHECK(load(&c, &r, (env_table){{"GPUSHARE_SM_OFFSET", "64", NULL}}) == 0 && gs_config_sm_offset(&c, 0) == 64 && gs_config_sm_offset(&c, 3) == 64, "whole");
    CHECK(load(&c, &r, (env_table){{"GPUSHARE_SM_OFFSET", "1=64,3=0", NULL}}) == 0, "per device");
    CHECK(gs_config_sm_offset(&c, 0) == -1 && gs_config_sm_offset(&c, 1) == 64 && gs_config_sm_offset(&c, 3) == 0, "per device values");
    static const char *const bad[] = {"-8", "6x", "0=", "=8", "16=8", "0=8,,1=8", "123456"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int n = load(&c, &r, (env_table){{"GPUSHARE_SM_OFFSET", bad[i], NULL}});
        CHECK(n == 1 && strstr(r.last_message, "not an SM offset") != NULL && gs_config_sm_offset(&c, 0) == -1, "bad %s: reported, ignored", bad[i]);
    }
}

int main(void) {
    test_sm_offset();
    test_bytes();
    test_hami_bytes();
    test_whole_and_per_device();
    test_hami_compat_and_precedence();
    test_bad_values_are_reported_and_ignored();
    test_switches();
    if (failures > 0) {
        printf("test_config: %d of %d checks FAILED\n", failures, checks);
        return 1;
    }
    printf("test_config: %d checks passed\n", checks);
    return 0;
}
