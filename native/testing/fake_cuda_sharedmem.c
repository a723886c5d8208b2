/*
 * fake_cuda_sharedmem.c: one card's memory shared by the processes of a busy directory
 * ("sharedMemory": true, or GPUSHARE_FAKE_CUDA_SHARED_MEMORY=1, with "busyDir"), as the
 * processes of a real GPU share its memory: each process's free memory is the card's total
 * less what every live process of the directory holds. For the tests of memory overcommit,
 * where one process's allocation must fail because another holds the card (SWAP.md).
 *
 * <dir>/<uuid>.mem holds one fake_cuda_shared_memory_t: a slot per process (its pid and the
 * bytes it holds, stored after every change of its count). A process takes the first slot
 * that is free or whose pid is dead. Nothing is locked across processes: two allocations of
 * different processes at the same instant may both see room the other then takes (the test's
 * programs do not race so); a killed process's bytes are not counted once its pid is gone.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake_cuda_busy.h"
#include "fake_cuda_state.h"

/* The mapped card files and this process's slot in each; global like the driver state they
 * mirror, changed under the fake's lock. */
static fake_cuda_shared_memory_t *card[FAKE_CUDA_BUSY_DEVICES];
static int slot_of[FAKE_CUDA_BUSY_DEVICES];

static bool pid_alive(int32_t pid)
{
    return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

static fake_cuda_shared_memory_t *map_card(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return NULL;
    struct stat sb;
    void *p = MAP_FAILED;
    if (fstat(fd, &sb) == 0 && ((size_t)sb.st_size >= sizeof(fake_cuda_shared_memory_t) ||
                                ftruncate(fd, (off_t)sizeof(fake_cuda_shared_memory_t)) == 0))
        p = mmap(NULL, sizeof(fake_cuda_shared_memory_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    (void)close(fd);
    return p == MAP_FAILED ? NULL : p;
}

void fake_shared_memory_open(void)
{
    const fake_cuda_state_t *st = fake_state();
    if (!st->config.busy_dir[0] || !st->config.shared_memory)
        return;
    int32_t me = (int32_t)getpid();
    for (unsigned int i = 0; i < st->device_count && i < FAKE_CUDA_BUSY_DEVICES; i++) {
        char path[400];
        (void)snprintf(path, sizeof path, "%s/%s.mem", st->config.busy_dir, st->devices[i].cfg.uuid);
        fake_cuda_shared_memory_t *c = map_card(path);
        int slot = -1;
        for (int k = 0; c && slot < 0 && k < FAKE_CUDA_SHARED_MEMORY_SLOTS; k++) {
            int32_t was = __atomic_load_n(&c->slot[k].pid, __ATOMIC_ACQUIRE);
            if ((was == 0 || (was != me && !pid_alive(was))) &&
                __atomic_compare_exchange_n(&c->slot[k].pid, &was, me, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
                __atomic_store_n(&c->slot[k].used, 0, __ATOMIC_RELEASE);
                slot = k;
            }
        }
        if (slot < 0) {
            (void)fprintf(stderr, "fake libcuda: cannot share %s (no file or no free slot); device %u's memory is this process's own\n", path, i);
            if (c)
                (void)munmap(c, sizeof *c);
            continue;
        }
        card[i] = c;
        slot_of[i] = slot;
    }
}

unsigned long long fake_shared_memory_others(int device)
{
    const fake_cuda_shared_memory_t *c = device >= 0 && device < FAKE_CUDA_BUSY_DEVICES ? card[device] : NULL;
    if (!c)
        return 0;
    unsigned long long sum = 0;
    for (int k = 0; k < FAKE_CUDA_SHARED_MEMORY_SLOTS; k++) {
        int32_t pid = __atomic_load_n(&c->slot[k].pid, __ATOMIC_ACQUIRE);
        if (k != slot_of[device] && pid != 0 && pid_alive(pid))
            sum += __atomic_load_n(&c->slot[k].used, __ATOMIC_ACQUIRE);
    }
    return sum;
}

void fake_shared_memory_note(int device, unsigned long long used)
{
    fake_cuda_shared_memory_t *c = device >= 0 && device < FAKE_CUDA_BUSY_DEVICES ? card[device] : NULL;
    if (!c)
        return;
    __atomic_store_n(&c->slot[slot_of[device]].used, (uint64_t)used, __ATOMIC_RELEASE);
    uint64_t sum = (uint64_t)used + fake_shared_memory_others(device);
    uint64_t was = __atomic_load_n(&c->peak, __ATOMIC_ACQUIRE);
    while (sum > was && !__atomic_compare_exchange_n(&c->peak, &was, sum, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
    }
}
