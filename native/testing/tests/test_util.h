/*
 * test_util.h: a tiny harness for the native tests. Each test program takes the library
 * to test as argv[1] and loads it with dlopen by that explicit path (never by soname, so a
 * real libnvidia-ml.so.1 on the machine cannot be picked up by mistake).
 */
#ifndef GS_TEST_UTIL_H
#define GS_TEST_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#include "fake_nvml_model.h"
#include "gs_nvml.h"

/* Pointers to every function of the loaded library, named as in NVML: nv.nvmlInit_v2(). */
typedef struct nvml_api {
#define TEST_API_MEMBER(name, scope) __typeof__(&name) name;
    FAKE_NVML_FUNCTIONS(TEST_API_MEMBER)
#undef TEST_API_MEMBER
} nvml_api_t;

extern nvml_api_t nv;

/* Loads argv[1] and resolves every function (exit status 2 if that fails). Test programs
 * that do not load a library pass load = false. */
void test_begin(int argc, char **argv, bool load);
/* Prints the summary line and returns the exit status (0: every check passed). */
int test_end(void);
/* Names the scenario that following failures belong to. */
void test_section(const char *name);

void test_check(bool ok, const char *expr, const char *file, int line);
void test_check_rc(nvmlReturn_t got, nvmlReturn_t want, const char *expr, const char *file, int line);
void test_check_eq(unsigned long long got, unsigned long long want, const char *expr, const char *file, int line);
void test_check_str(const char *got, const char *want, const char *expr, const char *file, int line);

#define CHECK(cond) test_check((cond), #cond, __FILE__, __LINE__)
#define CHECK_RC(expr, want) test_check_rc((expr), (want), #expr, __FILE__, __LINE__)
#define CHECK_EQ(got, want) \
    test_check_eq((unsigned long long)(got), (unsigned long long)(want), #got, __FILE__, __LINE__)
#define CHECK_STR(got, want) test_check_str((got), (want), #got, __FILE__, __LINE__)

/* Sets GPUSHARE_FAKE_NVML to json (NULL unsets it). */
void test_config(const char *json);
/* test_config(json), then nvmlInit_v2 must succeed. */
void test_init(const char *json);
/* nvmlShutdown must succeed. */
void test_shutdown(void);
/* test_config(json) and nvmlInit_v2 with stderr captured into buf; returns its result. */
nvmlReturn_t test_init_capture(const char *json, char *buf, size_t size);
/* nvmlDeviceGetHandleByIndex_v2(index), which must succeed. */
nvmlDevice_t test_gpu(unsigned int index);
/* nvmlDeviceGetMigDeviceHandleByIndex(gpu, index), which must succeed. */
nvmlDevice_t test_mig(nvmlDevice_t gpu, unsigned int index);

/* An address that is no handle the library gave out. */
nvmlDevice_t test_bogus_handle(void);

#endif /* GS_TEST_UTIL_H */
