/*
 * test_check.h: what the shim's C test programs (shim_test, partition_test, compute_test) share:
 * a failure counter that reports and carries on, so one run shows every failed check; the C
 * library's own dlsym, to reach the real entry points past libgpushare's dlsym override; and
 * the name cuGetProcAddress takes for a symbol; and the scenario dispatch. Header-only: each program is one translation unit.
 */
#ifndef GS_SHIM_TEST_CHECK_H
#define GS_SHIM_TEST_CHECK_H

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Per program: counts for its summary line, and what is running, for the failure lines
 * (mode: how the driver is reached, NULL where the program has no modes). */
static int checks, failures;
static const char *scenario = "?";
static const char *mode;

__attribute__((format(printf, 2, 3))) static void check(int ok, const char *fmt, ...)
{
    checks++;
    if (ok)
        return;
    failures++;
    va_list ap;
    va_start(ap, fmt);
    if (mode)
        fprintf(stderr, "FAIL [%s %s] ", scenario, mode);
    else
        fprintf(stderr, "FAIL [%s] ", scenario);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* glibc's dlsym itself (2.34 moved it into libc proper; older ones export the 2.2.5 version). */
static inline void *libc_dlsym(void *h, const char *name)
{
    void *libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    void *(*sym)(void *, const char *) = (void *(*)(void *, const char *))dlvsym(libc, "dlsym", "GLIBC_2.34");
    if (!sym)
        sym = (void *(*)(void *, const char *))dlvsym(libc, "dlsym", "GLIBC_2.2.5");
    return sym(h, name);
}

/* One scenario of a test program, chosen by name on its command line. */
typedef struct {
    const char *name;
    void (*fn)(void);
} test_scenario;

/* Runs the scenario named `scenario` (an unknown name is a failed check), prints the summary
 * line the runner scripts read, and returns the program's exit status. */
static int run_scenario(const test_scenario *all, size_t n)
{
    int found = 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(all[i].name, scenario) == 0) {
            found = 1;
            all[i].fn();
        }
    check(found, "unknown scenario");
    if (mode)
        printf("%s %s: %d checks, %d failed\n", scenario, mode, checks, failures);
    else
        printf("%s: %d checks, %d failed\n", scenario, checks, failures);
    return failures ? 1 : 0;
}

/* The name cuGetProcAddress takes for an API symbol: the unversioned one (cuMemAlloc for
 * cuMemAlloc_v2); the version is the call's cudaVersion argument. */
static inline const char *proc_name(const char *sym, char *buf, size_t len)
{
    snprintf(buf, len, "%s", sym);
    char *v = strstr(buf, "_v2");
    if (v && v[3] == '\0')
        *v = '\0';
    return buf;
}

#endif
