/*
 * test_util.c: the harness of test_util.h.
 */
#include "test_util.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake_nvml_config.h"

/* The loaded library's functions, global so every test reads as nv.nvmlX(...); written once
 * by test_begin, before any test runs. */
nvml_api_t nv;

/* The harness's counters and labels: one test program is one run, so they are plain
 * process-wide state. */
static struct {
    const char *program;
    const char *library;
    const char *section;
    unsigned int checks;
    unsigned int failures;
} run;

static const char *base_name(const char *path)
{
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static void *must_dlsym(void *lib, const char *path, const char *name)
{
    void *sym = dlsym(lib, name);
    if (!sym) {
        (void)fprintf(stderr, "%s: %s does not export %s\n", run.program, path, name);
        exit(2);
    }
    return sym;
}

void test_begin(int argc, char **argv, bool load)
{
    run.program = base_name(argv[0]);
    run.section = "start";
    run.library = "no library";
    if (!load)
        return;
    if (argc < 2) {
        (void)fprintf(stderr, "usage: %s path/to/libnvidia-ml.so.1\n", argv[0]);
        exit(2);
    }
    run.library = argv[1];
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        (void)fprintf(stderr, "%s: dlopen: %s\n", run.program, dlerror());
        exit(2);
    }
    /* Kept open on purpose: unloading it would hide its frames from LeakSanitizer. */
#define TEST_API_LOAD(name, scope)                    \
    {                                                 \
        void *sym = must_dlsym(lib, argv[1], #name);  \
        memcpy(&nv.name, &sym, sizeof sym);           \
    }
    FAKE_NVML_FUNCTIONS(TEST_API_LOAD)
#undef TEST_API_LOAD
}

int test_end(void)
{
    if (run.failures == 0) {
        printf("%s: %u checks passed (%s)\n", run.program, run.checks, run.library);
        return 0;
    }
    printf("%s: %u of %u checks FAILED (%s)\n", run.program, run.failures, run.checks, run.library);
    return 1;
}

void test_section(const char *name)
{
    run.section = name;
}

static void failed(const char *file, int line, const char *what)
{
    run.failures++;
    printf("FAIL %s:%d [%s] %s\n", file, line, run.section, what);
}

void test_check(bool ok, const char *expr, const char *file, int line)
{
    run.checks++;
    if (!ok)
        failed(file, line, expr);
}

void test_check_rc(nvmlReturn_t got, nvmlReturn_t want, const char *expr, const char *file, int line)
{
    char what[512];
    run.checks++;
    if (got == want)
        return;
    (void)snprintf(what, sizeof what, "%s returned %d (%s), want %d (%s)", expr, (int)got, nv.nvmlErrorString ?
                   nv.nvmlErrorString(got) : "?", (int)want, nv.nvmlErrorString ? nv.nvmlErrorString(want) : "?");
    failed(file, line, what);
}

void test_check_eq(unsigned long long got, unsigned long long want, const char *expr, const char *file, int line)
{
    char what[512];
    run.checks++;
    if (got == want)
        return;
    (void)snprintf(what, sizeof what, "%s is %llu (0x%llx), want %llu (0x%llx)", expr, got, got, want, want);
    failed(file, line, what);
}

void test_check_str(const char *got, const char *want, const char *expr, const char *file, int line)
{
    char what[512];
    run.checks++;
    if (got && want && strcmp(got, want) == 0)
        return;
    (void)snprintf(what, sizeof what, "%s is \"%s\", want \"%s\"", expr, got ? got : "(null)", want ? want : "(null)");
    failed(file, line, what);
}

void test_config(const char *json)
{
    int rc = json ? setenv(FAKE_NVML_ENV, json, 1) : unsetenv(FAKE_NVML_ENV);
    if (rc != 0) {
        perror("setenv");
        exit(2);
    }
}

void test_init(const char *json)
{
    test_config(json);
    CHECK_RC(nv.nvmlInit_v2(), NVML_SUCCESS);
}

void test_shutdown(void)
{
    CHECK_RC(nv.nvmlShutdown(), NVML_SUCCESS);
}

nvmlReturn_t test_init_capture(const char *json, char *buf, size_t size)
{
    char path[] = "/tmp/gs-test-stderr-XXXXXX";
    int fd = mkstemp(path);
    int saved = dup(STDERR_FILENO);
    if (fd < 0 || saved < 0) {
        perror("mkstemp/dup");
        exit(2);
    }
    (void)unlink(path);
    test_config(json);
    fflush(stderr);
    if (dup2(fd, STDERR_FILENO) < 0) {
        perror("dup2");
        exit(2);
    }
    nvmlReturn_t r = nv.nvmlInit_v2();
    fflush(stderr);
    if (dup2(saved, STDERR_FILENO) < 0) {
        perror("dup2");
        exit(2);
    }
    (void)close(saved);
    ssize_t n = pread(fd, buf, size - 1, 0);
    buf[n > 0 ? (size_t)n : 0] = '\0';
    (void)close(fd);
    return r;
}

nvmlDevice_t test_gpu(unsigned int index)
{
    nvmlDevice_t d = NULL;
    CHECK_RC(nv.nvmlDeviceGetHandleByIndex_v2(index, &d), NVML_SUCCESS);
    return d;
}

nvmlDevice_t test_mig(nvmlDevice_t gpu, unsigned int index)
{
    nvmlDevice_t d = NULL;
    CHECK_RC(nv.nvmlDeviceGetMigDeviceHandleByIndex(gpu, index, &d), NVML_SUCCESS);
    return d;
}

nvmlDevice_t test_bogus_handle(void)
{
    static int not_a_device;
    return (nvmlDevice_t)(void *)&not_a_device;
}
