/*
 * fake_cuda_busy.c: per-device busy-time accounting and its shared file
 * (fake_cuda_busy.h).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fake_cuda_busy.h"
#include "fake_cuda_state.h"

/* The mapped file, when configured; global like the driver state it mirrors. */
static fake_cuda_busy_file_t *busy_file;

void fake_busy_open(void)
{
    const fake_cuda_state_t *st = fake_state();
    if (!st->config.busy_dir[0] || busy_file)
        return;
    char path[400];
    (void)snprintf(path, sizeof path, "%s/%d.busy", st->config.busy_dir, (int)getpid());
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || ftruncate(fd, sizeof *busy_file) != 0) {
        (void)fprintf(stderr, "fake libcuda: cannot create %s; busy time is not published\n", path);
        if (fd >= 0)
            (void)close(fd);
        return;
    }
    void *p = mmap(NULL, sizeof *busy_file, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    (void)close(fd);
    if (p == MAP_FAILED)
        return;
    busy_file = p;
    busy_file->pid = (int32_t)getpid();
    busy_file->version = FAKE_CUDA_BUSY_VERSION;
    busy_file->device_count = st->device_count;
    for (unsigned int i = 0; i < st->device_count && i < FAKE_CUDA_BUSY_DEVICES; i++)
        (void)snprintf(busy_file->devices[i].uuid, sizeof busy_file->devices[i].uuid, "%s",
                       st->devices[i].cfg.uuid);
    /* The magic last: a reader that sees it sees a complete header. */
    __atomic_store_n(&busy_file->magic, FAKE_CUDA_BUSY_MAGIC, __ATOMIC_RELEASE);
}

void fake_busy_record(int device, uint64_t start_ns, uint64_t end_ns, unsigned int kernels)
{
    fake_device_t *d = &fake_state()->devices[device];
    uint64_t from = start_ns > d->busy_until_ns ? start_ns : d->busy_until_ns;
    if (end_ns > from)
        d->busy_ns += end_ns - from;
    if (end_ns > d->busy_until_ns)
        d->busy_until_ns = end_ns;
    d->kernels += kernels;
    if (busy_file && device < FAKE_CUDA_BUSY_DEVICES) {
        fake_cuda_busy_device_t *b = &busy_file->devices[device];
        __atomic_store_n(&b->busy_ns, d->busy_ns, __ATOMIC_RELAXED);
        __atomic_store_n(&b->kernels, d->kernels, __ATOMIC_RELAXED);
        __atomic_store_n(&b->last_end_ns, d->busy_until_ns, __ATOMIC_RELAXED);
    }
}
