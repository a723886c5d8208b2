/*
 * test_region_threads.c: many threads of one process reserving, committing, cancelling and
 * releasing at once, at the limit. Never over (an oracle counter checked after each grant),
 * exact totals afterwards, and filling to the limit lands exactly on it. Also built with
 * ThreadSanitizer (test_region_threads_tsan). REGION_TEST_SCALE (default 1) scales the work.
 */
#define _DEFAULT_SOURCE

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "region_test.h"

#define THREADS 16
#define DEVS 2
#define CHUNK 4096u

static const uint64_t LIMIT[DEVS] = {1u << 20, 256u << 10};

/* Shared by the worker threads: the oracle and the counters checked at the end. */
static struct {
    unsigned ops_per_thread;
    _Atomic uint64_t oracle[DEVS]; /* bytes granted and not yet given back, counted by the test */
    _Atomic unsigned violations, unjustified, timeouts, refusals, grants;
    _Atomic uint64_t held[DEVS][GS_REGION_KINDS]; /* what the threads hold at the end of phase 1 */
    _Atomic uint64_t filled;
    pthread_barrier_t barrier;
} W;

typedef struct alloc {
    uint32_t dev, kind;
    uint64_t bytes;
} alloc;

static bool limited(uint32_t kind) { return (GS_REGION_LIMITED_KINDS >> kind) & 1u; }

static void give_back(alloc a)
{
    if (limited(a.kind))
        atomic_fetch_sub(&W.oracle[a.dev], a.bytes); /* before the region: oracle <= region */
    CHECK_EQ(gs_region_release(a.dev, (gs_region_kind)a.kind, a.bytes), GS_REGION_OK);
}

static void *worker(void *arg)
{
    uint64_t seed = (uint64_t)(uintptr_t)arg * 7919u + 1;
    alloc mine[16];
    unsigned n = 0;
    for (unsigned op = 0; op < W.ops_per_thread; op++) {
        uint64_t x = rt_rand(&seed);
        if (n == 16 || (n > 0 && x % 3 == 0)) {
            unsigned i = (unsigned)(x >> 8) % n;
            give_back(mine[i]);
            mine[i] = mine[--n];
            continue;
        }
        alloc a = {(uint32_t)(x >> 16) % DEVS, (uint32_t)(x >> 20) % GS_REGION_KIND_COUNT_USED, 1 + (x >> 24) % 65536};
        gs_region_reservation r;
        gs_region_over_limit over;
        int rc = gs_region_reserve(a.dev, (gs_region_kind)a.kind, a.bytes, &r, &over);
        if (rc == GS_REGION_OVER_LIMIT) {
            atomic_fetch_add(&W.refusals, 1);
            if (over.timed_out)
                atomic_fetch_add(&W.timeouts, 1);
            else if (over.used + over.requested <= over.limit)
                atomic_fetch_add(&W.unjustified, 1);
            continue;
        }
        CHECK_EQ(rc, GS_REGION_OK);
        if (rc != GS_REGION_OK)
            continue;
        atomic_fetch_add(&W.grants, 1);
        if (limited(a.kind) && atomic_fetch_add(&W.oracle[a.dev], a.bytes) + a.bytes > LIMIT[a.dev])
            atomic_fetch_add(&W.violations, 1);
        if (x % 5 == 0) { /* the allocation failed */
            if (limited(a.kind))
                atomic_fetch_sub(&W.oracle[a.dev], a.bytes);
            CHECK_EQ(gs_region_cancel(&r), GS_REGION_OK);
            continue;
        }
        CHECK_EQ(gs_region_commit(&r), GS_REGION_OK);
        mine[n++] = a;
    }
    for (unsigned i = 0; i < n; i++)
        atomic_fetch_add(&W.held[mine[i].dev][mine[i].kind], mine[i].bytes);
    pthread_barrier_wait(&W.barrier); /* main checks the totals here */
    pthread_barrier_wait(&W.barrier);
    for (unsigned i = 0; i < n; i++)
        give_back(mine[i]);
    pthread_barrier_wait(&W.barrier);
    pthread_barrier_wait(&W.barrier); /* main checks that all is given back */

    /* phase 2: fill device 0 in equal chunks until refused */
    for (;;) {
        gs_region_reservation r;
        gs_region_over_limit over;
        int rc = gs_region_reserve(0, GS_REGION_KIND_ALLOC, CHUNK, &r, &over);
        if (rc != GS_REGION_OK) {
            CHECK_EQ(rc, GS_REGION_OVER_LIMIT);
            CHECK_EQ(over.timed_out, 0);
            break;
        }
        CHECK_EQ(gs_region_commit(&r), GS_REGION_OK);
        atomic_fetch_add(&W.filled, CHUNK);
    }
    return NULL;
}

int main(void)
{
    rt_begin("test_region_threads");
    const char *scale = getenv("REGION_TEST_SCALE");
    W.ops_per_thread = 20000u * (scale ? (unsigned)atoi(scale) : 1u);
    char path[512];
    rt_path(path, sizeof path, "threads");
    gs_region_options o = rt_options(path, LIMIT[0]);
    o.mem_limit[1] = LIMIT[1];
    o.pending_wait_ns = 5000000000u; /* a sanitizer build on a loaded box can be slow to commit */
    OPEN(&o, GS_REGION_OK);
    CHECK_EQ(pthread_barrier_init(&W.barrier, NULL, THREADS + 1), 0);

    rt_section("16 threads at the limit: never over, refusals justified");
    pthread_t th[THREADS];
    uint64_t t0 = rt_now_ns();
    for (uintptr_t i = 0; i < THREADS; i++)
        CHECK_EQ(pthread_create(&th[i], NULL, worker, (void *)i), 0);
    pthread_barrier_wait(&W.barrier);
    uint64_t t1 = rt_now_ns();
    CHECK_EQ(atomic_load(&W.violations), 0);
    CHECK_EQ(atomic_load(&W.unjustified), 0);
    CHECK_EQ(atomic_load(&W.timeouts), 0);
    printf("     %u threads x %u ops in %.1f ms: %u grants, %u refusals (%u timed out)\n", THREADS,
           W.ops_per_thread, (double)(t1 - t0) / 1e6, atomic_load(&W.grants), atomic_load(&W.refusals),
           atomic_load(&W.timeouts));
    CHECK(atomic_load(&W.refusals) > 0); /* the test did run at the limit */

    rt_section("exact totals: the region holds what the threads hold, kind by kind");
    for (uint32_t d = 0; d < DEVS; d++) {
        gs_region_usage self, group;
        CHECK_EQ(gs_region_usage_self(d, &self), GS_REGION_OK);
        CHECK_EQ(gs_region_usage_group(d, &group), GS_REGION_OK);
        uint64_t limited_sum = 0;
        for (uint32_t k = 0; k < GS_REGION_KINDS; k++) {
            CHECK_EQ(self.bytes[k], atomic_load(&W.held[d][k]));
            CHECK_EQ(group.bytes[k], self.bytes[k]);
            if (limited(k))
                limited_sum += self.bytes[k];
        }
        CHECK_EQ(self.device_bytes, limited_sum);
        CHECK_EQ(self.in_flight, 0);
        CHECK(self.device_bytes <= LIMIT[d]);
        CHECK_EQ(atomic_load(&W.oracle[d]), limited_sum);
    }
    pthread_barrier_wait(&W.barrier);
    pthread_barrier_wait(&W.barrier);
    for (uint32_t d = 0; d < DEVS; d++) {
        gs_region_usage u;
        CHECK_EQ(gs_region_usage_self(d, &u), GS_REGION_OK);
        CHECK_EQ(u.device_bytes, 0);
        for (uint32_t k = 0; k < GS_REGION_KINDS; k++)
            CHECK_EQ(u.bytes[k], 0);
    }
    pthread_barrier_wait(&W.barrier);

    rt_section("16 threads fill the limit in 4 KiB chunks: exactly the limit, never a byte less");
    for (unsigned i = 0; i < THREADS; i++)
        CHECK_EQ(pthread_join(th[i], NULL), 0);
    CHECK_EQ(atomic_load(&W.filled), LIMIT[0]);
    gs_region_usage u;
    CHECK_EQ(gs_region_usage_self(0, &u), GS_REGION_OK);
    CHECK_EQ(u.device_bytes, LIMIT[0]);
    CHECK_EQ(gs_region_release(0, GS_REGION_KIND_ALLOC, LIMIT[0]), GS_REGION_OK);
    CHECK_EQ(pthread_barrier_destroy(&W.barrier), 0);
    CHECK_EQ(gs_region_close(), GS_REGION_OK);
    return rt_end();
}
