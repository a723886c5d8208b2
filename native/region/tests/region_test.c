/*
 * region_test.c: the region tests' harness (see region_test.h).
 */
#define _DEFAULT_SOURCE

#include "region_test.h"

#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* The harness's state: counters for the summary line, the run's temporary directory. */
static struct {
    const char *program;
    const char *section;
    _Atomic unsigned checks, failures; /* checks run from many threads */
    char tmpdir[256];
} T = {.program = "?", .section = "-"};

void rt_begin(const char *program)
{
    T.program = program;
    setvbuf(stdout, NULL, _IOLBF, 0);
}

void rt_section(const char *name)
{
    T.section = name;
    printf("-- %s\n", name);
}

void rt_check(bool ok, const char *expr, const char *file, int line)
{
    T.checks++;
    if (ok)
        return;
    T.failures++;
    printf("FAIL [%s] %s:%d (pid %d): %s\n", T.section, file, line, (int)getpid(), expr);
}

void rt_check_eq(unsigned long long got, unsigned long long want, const char *expr, const char *file, int line)
{
    T.checks++;
    if (got == want)
        return;
    T.failures++;
    printf("FAIL [%s] %s:%d (pid %d): %s is %llu, expected %llu\n", T.section, file, line, (int)getpid(), expr, got,
           want);
}

unsigned rt_failures(void)
{
    return T.failures;
}

int rt_end(void)
{
    printf("%s: %u checks, %u failed: %s\n", T.program, T.checks, T.failures, T.failures ? "FAIL" : "PASS");
    return T.failures ? 1 : 0;
}

const char *rt_tmpdir(void)
{
    if (T.tmpdir[0])
        return T.tmpdir;
    const char *base = getenv("TMPDIR");
    (void)snprintf(T.tmpdir, sizeof T.tmpdir, "%s/gs-region-test-XXXXXX", base && *base ? base : "/tmp");
    if (mkdtemp(T.tmpdir) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
    return T.tmpdir;
}

void rt_path(char *buf, size_t len, const char *name)
{
    (void)snprintf(buf, len, "%s/%s", rt_tmpdir(), name);
}

gs_region_options rt_options(const char *path, uint64_t limit0)
{
    gs_region_options o = {.path = path, .has_limits = 1, .device_count = 2};
    o.mem_limit[0] = limit0;
    o.core_limit_pct[0] = 50;
    o.priority[0] = 1;
    return o;
}

int rt_open(const gs_region_options *o, int want, const char *file, int line)
{
    char err[512] = "";
    int rc = gs_region_open(o, err, sizeof err);
    rt_check_eq((unsigned long long)rc, (unsigned long long)want, "gs_region_open", file, line);
    if (rc != want)
        printf("     open said: %s (%s)\n", err, gs_region_strerror(rc));
    return rc;
}

uint64_t rt_now_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void rt_sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

gs_region_file *rt_map(const char *path)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        perror(path);
        exit(2);
    }
    void *p = mmap(NULL, GS_REGION_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    if (close(fd) != 0)
        perror("close");
    return p;
}

void rt_unmap(gs_region_file *f)
{
    if (munmap(f, GS_REGION_FILE_SIZE) != 0)
        perror("munmap");
}

uint64_t rt_self_start(void)
{
    char buf[1024];
    int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
    if (fd >= 0 && close(fd) != 0)
        perror("close");
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (p == NULL)
        return 0;
    p += 2;
    for (int field = 3; field < 22; field++) {
        p = strchr(p, ' ');
        if (p == NULL)
            return 0;
        p++;
    }
    return strtoull(p, NULL, 10);
}

uint64_t rt_rand(uint64_t *s)
{
    uint64_t x = *s ? *s : 0x9e3779b97f4a7c15u;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}
