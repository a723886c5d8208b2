/*
 * fake_cuda_test.c: the harness behind fake_cuda_test.h.
 */
#define _GNU_SOURCE
#include "fake_cuda_test.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "fake_cuda_busy.h"

/* Counters for the one test program this process runs. */
static struct {
    unsigned int checks;
    unsigned int failures;
} fct;

bool fct_check(bool ok, const char *file, int line, const char *what)
{
    __atomic_add_fetch(&fct.checks, 1, __ATOMIC_RELAXED);
    if (!ok) {
        __atomic_add_fetch(&fct.failures, 1, __ATOMIC_RELAXED);
        (void)fprintf(stderr, "  %s:%d: failed: %s\n", file, line, what);
    }
    return ok;
}

bool fct_check_rc(CUresult got, CUresult want, const char *file, int line, const char *what)
{
    if (got != want) {
        const char *g = "?", *w = "?";
        (void)cuGetErrorName(got, &g);
        (void)cuGetErrorName(want, &w);
        (void)fprintf(stderr, "  %s:%d: %s returned %s (%d), expected %s (%d)\n", file, line, what, g, (int)got, w,
                      (int)want);
    }
    return fct_check(got == want, file, line, what);
}

bool fct_check_u64(unsigned long long got, unsigned long long want, const char *file, int line, const char *what)
{
    if (got != want)
        (void)fprintf(stderr, "  %s:%d: got %llu, expected %llu\n", file, line, got, want);
    return fct_check(got == want, file, line, what);
}

int fct_finish(const char *name)
{
    if (fct.failures)
        (void)printf("FAIL %s (%u of %u checks failed)\n", name, fct.failures, fct.checks);
    else
        (void)printf("PASS %s (%u checks)\n", name, fct.checks);
    return fct.failures ? 1 : 0;
}

void fct_configure(const char *json, const char *visible)
{
    if (setenv("GPUSHARE_FAKE_CUDA", json, 1) != 0)
        abort();
    if (visible ? setenv("CUDA_VISIBLE_DEVICES", visible, 1) != 0 : unsetenv("CUDA_VISIBLE_DEVICES") != 0)
        abort();
}

unsigned long long fct_free(void)
{
    size_t f = 0, t = 0;
    if (cuMemGetInfo_v2(&f, &t) != CUDA_SUCCESS)
        return ~0ULL;
    return f;
}

uint64_t fct_now_ns(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

bool fct_busy_dir(char *dir, size_t size)
{
    const char *work = getenv("FAKE_CUDA_TEST_WORK");
    (void)snprintf(dir, size, "%s", work ? work : "/tmp");
    return setenv("GPUSHARE_FAKE_CUDA_BUSY_DIR", dir, 1) == 0;
}

double fct_elapsed_ms(CUevent a, CUevent b)
{
    float ms = -1;
    CHECK_OK(cuEventElapsedTime_v2(&ms, a, b));
    return ms;
}

bool fct_busy_read(const char *dir, int dev, uint64_t *busy_ns, uint64_t *kernels)
{
    char path[400];
    (void)snprintf(path, sizeof path, "%s/%d.busy", dir, (int)getpid());
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    if (fd < 0)
        return false;
    fake_cuda_busy_file_t *bf = mmap(NULL, sizeof *bf, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(bf != MAP_FAILED);
    bool ok = bf != MAP_FAILED;
    if (ok) {
        CHECK_EQ(bf->magic, FAKE_CUDA_BUSY_MAGIC);
        CHECK_EQ(bf->pid, getpid());
        *busy_ns = __atomic_load_n(&bf->devices[dev].busy_ns, __ATOMIC_RELAXED);
        *kernels = bf->devices[dev].kernels;
        (void)munmap(bf, sizeof *bf);
    }
    (void)close(fd);
    return ok;
}
