/*
 * fake_cuda_state.c: the one state struct, its lock and gates, object lists, device
 * memory accounting and the registry of device pointers.
 */
#define _GNU_SOURCE
#include "fake_cuda_state.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* Global because the driver API is global: every entry point of the process shares the
 * devices, contexts and allocations, exactly as with the real libcuda. */
static fake_cuda_state_t fake = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .changed = PTHREAD_COND_INITIALIZER,
};

fake_cuda_state_t *fake_state(void)
{
    return &fake;
}

void fake_lock(void)
{
    (void)pthread_mutex_lock(&fake.lock);
}

void fake_unlock(void)
{
    (void)pthread_mutex_unlock(&fake.lock);
}

/* "pauseAt" (FAKE_CUDA.md): a test's gate at the nth call of one entry point, before the
 * fake's lock is taken, so the process's other threads go on meanwhile. The test sees
 * <dir>/reached appear (holding the pid), does what it means to do at that step (kill the
 * process, close the daemon's connection), then creates <dir>/go. */
static void pause_point(const char *fn)
{
    static atomic_ullong calls;
    const fake_cuda_config_t *c = &fake.config;
    if (c->pause_at.fn[0] == '\0' || strcmp(c->pause_at.fn, fn) != 0 || atomic_fetch_add(&calls, 1) + 1 != c->pause_at.nth)
        return;
    char path[sizeof c->pause_at.dir + 16];
    (void)snprintf(path, sizeof path, "%s/reached", c->pause_at.dir);
    FILE *f = fopen(path, "we");
    if (f != NULL) {
        (void)fprintf(f, "%d\n", (int)getpid());
        (void)fclose(f);
    }
    (void)snprintf(path, sizeof path, "%s/go", c->pause_at.dir);
    for (int ms = 0; ms < 60000; ms++) {
        if (access(path, F_OK) == 0)
            return;
        struct timespec t = {0, 1000000};
        (void)nanosleep(&t, NULL);
    }
    (void)fprintf(stderr, "fake libcuda: pauseAt %s: no %s within 60 s; going on\n", fn, path);
}

CUresult fake_enter(const char *fn)
{
    pause_point(fn);
    fake_lock();
    if (!fake.initialized)
        return CUDA_ERROR_NOT_INITIALIZED;
    for (unsigned int i = 0; i < fake.config.error_count; i++)
        if (strcmp(fake.config.errors[i].fn, fn) == 0)
            return (CUresult)fake.config.errors[i].code;
    return CUDA_SUCCESS;
}

CUresult fake_leave(CUresult r)
{
    fake_unlock();
    return r;
}

uint64_t fake_now_ns(void)
{
    struct timespec ts;
    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ---- lists -------------------------------------------------------------------------- */
void fake_list_add(fake_list_t *l, void *obj)
{
    fake_link_t *n = obj;
    n->prev = NULL;
    n->next = l->head;
    if (l->head)
        l->head->prev = n;
    l->head = n;
    l->count++;
}

void fake_list_remove(fake_list_t *l, void *obj)
{
    fake_link_t *n = obj;
    if (n->prev)
        n->prev->next = n->next;
    else
        l->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    n->prev = n->next = NULL;
    l->count--;
}

bool fake_list_has(const fake_list_t *l, const void *obj)
{
    if (!obj)
        return false;
    for (const fake_link_t *n = l->head; n; n = n->next)
        if (n == obj)
            return true;
    return false;
}

/* ---- devices and memory ------------------------------------------------------------- */
bool fake_device_valid(CUdevice dev)
{
    return dev >= 0 && (unsigned int)dev < fake.device_count;
}

unsigned long long fake_round_up(unsigned long long v, unsigned long long to)
{
    return to <= 1 ? v : (v + to - 1) / to * to;
}

unsigned long long fake_free_bytes(int device)
{
    const fake_device_t *d = &fake.devices[device];
    fake_shared_memory_note(device, d->used); /* a checkpoint's change shows here too */
    unsigned long long taken = d->used + d->cfg.reserved_bytes + fake_shared_memory_others(device);
    return taken >= d->cfg.total_bytes ? 0 : d->cfg.total_bytes - taken;
}

CUresult fake_charge(int device, unsigned long long bytes)
{
    if (bytes > fake_free_bytes(device))
        return CUDA_ERROR_OUT_OF_MEMORY;
    fake.devices[device].used += bytes;
    fake_checkpoint_note_used(device);
    fake_shared_memory_note(device, fake.devices[device].used);
    return CUDA_SUCCESS;
}

void fake_uncharge(int device, unsigned long long bytes)
{
    fake_device_t *d = &fake.devices[device];
    d->used = bytes > d->used ? 0 : d->used - bytes;
    fake_checkpoint_note_used(device);
    fake_shared_memory_note(device, d->used);
}

/* "reuseFreed": freed ranges wait here (newest first) for an allocation of the same
 * length, bytes intact, as a GPU allocator hands freed memory out again. */
enum { REUSE_SLOTS = 64 };
static struct {
    uintptr_t base[REUSE_SLOTS];
    size_t len[REUSE_SLOTS];
    unsigned int count;
} reuse;

uintptr_t fake_map_space(size_t size, size_t *mapped)
{
    size_t len = (size_t)fake_round_up(size ? size : 1, 4096);
    for (unsigned int i = reuse.count; i-- > 0;) {
        if (reuse.len[i] == len) {
            uintptr_t b = reuse.base[i];
            reuse.count--;
            memmove(&reuse.base[i], &reuse.base[i + 1], (reuse.count - i) * sizeof reuse.base[0]);
            memmove(&reuse.len[i], &reuse.len[i + 1], (reuse.count - i) * sizeof reuse.len[0]);
            *mapped = len;
            return b;
        }
    }
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        /* Strict overcommit refuses huge writable mappings: fall back to address space
         * only (touching it faults, which a test of an 80 GiB buffer never does). */
        p = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED)
            return 0;
    }
    *mapped = len;
    return (uintptr_t)p;
}

uintptr_t fake_map_space_low(size_t size, size_t *mapped)
{
    size_t len = (size_t)fake_round_up(size ? size : 1, 4096);
#ifdef MAP_32BIT
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_32BIT, -1, 0);
#else
    /* No MAP_32BIT off x86-64 (arm64): ask for an address below 4 GiB and check what came. */
    void *p = mmap((void *)(uintptr_t)0x10000000u, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p != MAP_FAILED && (uintptr_t)p + len > ((uintptr_t)1 << 32)) {
        munmap(p, len);
        return 0;
    }
#endif
    if (p == MAP_FAILED)
        return 0;
    *mapped = len;
    return (uintptr_t)p;
}

void fake_unmap_space(uintptr_t base, size_t mapped)
{
    if (!base || mapped == 0) /* 0: the program's own pages (cuMemHostRegister), not ours to unmap */
        return;
    if (fake.config.reuse_freed && base >= (1ULL << 31)) { /* 32-bit ABI addresses are never kept */
        if (reuse.count == REUSE_SLOTS) {
            (void)munmap((void *)reuse.base[0], reuse.len[0]);
            reuse.count--;
            memmove(&reuse.base[0], &reuse.base[1], reuse.count * sizeof reuse.base[0]);
            memmove(&reuse.len[0], &reuse.len[1], reuse.count * sizeof reuse.len[0]);
        }
        reuse.base[reuse.count] = base;
        reuse.len[reuse.count++] = mapped;
        return;
    }
    (void)munmap((void *)base, mapped);
}

fake_alloc_t *fake_alloc_add(fake_alloc_kind_t kind, uintptr_t base, size_t size, size_t mapped,
                             unsigned long long charged, int device, struct CUctx_st *ctx)
{
    fake_alloc_t *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->kind = kind;
    a->base = base;
    a->size = size;
    a->mapped = mapped;
    a->charged = charged;
    a->device = device;
    a->ctx = ctx;
    fake_list_add(&fake.allocs, a);
    return a;
}

fake_alloc_t *fake_alloc_find(uintptr_t base)
{
    FAKE_FOREACH(fake_alloc_t, a, &fake.allocs)
    if (a->base == base)
        return a;
    return NULL;
}

void fake_alloc_release(fake_alloc_t *a)
{
    if (a->charged)
        fake_uncharge(a->device, a->charged);
    if (a->pool)
        fake_pool_give_back(a->pool, a->size);
    if (a->graph_alloc) {
        fake_device_t *d = &fake.devices[a->device];
        d->graph_used -= a->graph_alloc->size;
        a->graph_alloc->live = NULL;
        /* the graph allocation keeps its address for the next launch */
    } else {
        fake_unmap_space(a->base, a->mapped);
    }
    fake_list_remove(&fake.allocs, a);
    free(a);
}

bool fake_range_valid(uintptr_t ptr, size_t len)
{
    FAKE_FOREACH(fake_alloc_t, a, &fake.allocs)
    if (ptr >= a->base && ptr - a->base <= a->size && len <= a->size - (ptr - a->base))
        return true;
    FAKE_FOREACH(fake_mapping_t, m, &fake.mappings)
    if (ptr >= m->base && ptr - m->base <= m->size && len <= m->size - (ptr - m->base))
        return true;
    return false;
}
