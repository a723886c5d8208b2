/*
 * fake_cuda_busy.c: per-device busy-time accounting and its shared file
 * (fake_cuda_busy.h).
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake_cuda_busy.h"
#include "fake_cuda_state.h"

/* The mapped files, when configured; global like the driver state they mirror. */
static fake_cuda_busy_file_t *busy_file;
static fake_cuda_shared_gpu_t *shared_gpu[FAKE_CUDA_BUSY_DEVICES];

static void *map_file(const char *path, size_t size, bool truncate)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0644);
    if (fd < 0)
        return NULL;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || ((size_t)sb.st_size < size && ftruncate(fd, (off_t)size) != 0)) {
        (void)close(fd);
        return NULL;
    }
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    (void)close(fd);
    return p == MAP_FAILED ? NULL : p;
}

static void shared_gpu_open(const fake_cuda_state_t *st)
{
    for (unsigned int i = 0; i < st->device_count && i < FAKE_CUDA_BUSY_DEVICES; i++) {
        char path[400];
        (void)snprintf(path, sizeof path, "%s/%s.gpu", st->config.busy_dir, st->devices[i].cfg.uuid);
        shared_gpu[i] = map_file(path, sizeof *shared_gpu[i], false);
        if (!shared_gpu[i])
            (void)fprintf(stderr, "fake libcuda: cannot map %s; device %u is not shared\n", path, i);
    }
}

/* This process's latest run of claims per device ends at own_end; the device was free for
 * it from own_from (what others claimed ended there). Under the fake's lock. */
static uint64_t own_from[FAKE_CUDA_BUSY_DEVICES], own_end[FAKE_CUDA_BUSY_DEVICES];

uint64_t fake_shared_gpu_claim(int device, uint64_t earliest_ns, uint64_t duration_ns)
{
    fake_cuda_shared_gpu_t *g = device >= 0 && device < FAKE_CUDA_BUSY_DEVICES ? shared_gpu[device] : NULL;
    if (!g)
        return earliest_ns;
    uint64_t was = __atomic_load_n(&g->free_at_ns, __ATOMIC_ACQUIRE), start, end;
    bool join;
    do {
        /* Kernels of one process's streams run side by side, as one context's streams do on
         * a GPU: while nobody else claimed the device after our latest claim, a kernel that
         * could start before that claim ends joins it (starts at its earliest, or when the
         * device became free for the process's run if that is later: a worker that woke
         * late is the host's delay) instead of queueing behind it; another process's claim
         * still waits for all of it. */
        join = was == own_end[device] && own_end[device] != 0 && earliest_ns < own_end[device];
        start = join ? (earliest_ns > own_from[device] ? earliest_ns : own_from[device])
                     : (was > earliest_ns ? was : earliest_ns);
        end = start + duration_ns;
        if (join && end < was)
            end = was;
    } while (!__atomic_compare_exchange_n(&g->free_at_ns, &was, end, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE));
    if (!join)
        own_from[device] = was;
    own_end[device] = end;
    return start;
}

void fake_busy_count_graph_query(void)
{
    if (busy_file)
        __atomic_fetch_add(&busy_file->graph_mem_queries, 1, __ATOMIC_RELAXED);
}

void fake_busy_open(void)
{
    const fake_cuda_state_t *st = fake_state();
    if (!st->config.busy_dir[0] || busy_file)
        return;
    char path[400];
    if (st->config.shared_gpu)
        shared_gpu_open(st);
    (void)snprintf(path, sizeof path, "%s/%d.busy", st->config.busy_dir, (int)getpid());
    void *p = map_file(path, sizeof *busy_file, true);
    if (!p) {
        (void)fprintf(stderr, "fake libcuda: cannot create %s; busy time is not published\n", path);
        return;
    }
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
