/*
 * test_region_procs.c: several processes (fork) sharing one region and one limit.
 *   - filling the limit in equal chunks from 6 processes lands exactly on it;
 *   - random traffic at the limit never passes it (an oracle in shared memory);
 *   - SIGKILL at random instants of a tight reserve/commit/cancel/release loop, many rounds:
 *     nothing wedges, and afterwards the group's accounted bytes equal exactly what the
 *     survivors (and the parent) hold, kind by kind; the dead's bytes all come back.
 * REGION_TEST_SCALE (default 1) scales rounds and durations.
 */
#define _DEFAULT_SOURCE

#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "region_test.h"

#define KIDS 6
#define DEVS 2
#define CHUNK 64u

/* Shared with the children (MAP_SHARED anonymous): commands, reports, the oracle. */
typedef struct shared {
    _Atomic int go, stop;
    _Atomic int killing; /* set before the parent kills: from then on the oracle is stale */
    _Atomic int done[KIDS];
    _Atomic uint64_t count[KIDS];
    _Atomic uint64_t held[KIDS][DEVS][GS_REGION_KINDS];
    _Atomic uint64_t oracle[DEVS];
    _Atomic unsigned violations, unjustified, timeouts, refusals, grants, failures;
} shared;

static shared *SH;
static uint64_t LIMIT[DEVS];

static bool limited(uint32_t kind) { return (GS_REGION_LIMITED_KINDS >> kind) & 1u; }

static void spin_until(_Atomic int *flag)
{
    while (!atomic_load(flag))
        rt_sleep_ns(100000u);
}

static pid_t spawn(void (*body)(int), int i)
{
    pid_t c = fork();
    if (c == 0) {
        body(i);
        atomic_fetch_add(&SH->failures, rt_failures());
        _exit(rt_failures() ? 1 : 0);
    }
    CHECK(c > 0);
    return c;
}

static void reap(pid_t c, bool killed)
{
    int st = 0;
    CHECK_EQ(waitpid(c, &st, 0), c);
    if (killed)
        CHECK(WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) == 0));
    else
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void group_bytes(uint64_t out[DEVS][GS_REGION_KINDS], uint64_t total[DEVS], uint64_t in_flight[DEVS])
{
    for (uint32_t d = 0; d < DEVS; d++) {
        gs_region_usage u;
        CHECK_EQ(gs_region_usage_group(d, &u), GS_REGION_OK);
        for (uint32_t k = 0; k < GS_REGION_KINDS; k++)
            out[d][k] = u.bytes[k];
        total[d] = u.device_bytes;
        in_flight[d] = u.in_flight;
    }
}

/* ---- fill ------------------------------------------------------------------------------ */

static void filler(int i)
{
    CHECK_EQ(gs_region_usage_self(0, &(gs_region_usage){0}), GS_REGION_OK); /* attach before the start */
    while (!atomic_load(&SH->go))
        ;
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
        if (atomic_fetch_add(&SH->count[i], 1) % 64 == 63)
            (void)sched_yield(); /* let the others in: on two cores one process could fill it alone */
    }
    atomic_store(&SH->done[i], 1);
    spin_until(&SH->stop);
    CHECK_EQ(gs_region_release(0, GS_REGION_KIND_ALLOC, atomic_load(&SH->count[i]) * CHUNK), GS_REGION_OK);
}

static void test_fill(void)
{
    rt_section("6 processes fill one limit in 64-byte chunks: exactly the limit");
    pid_t kids[KIDS];
    for (int i = 0; i < KIDS; i++)
        kids[i] = spawn(filler, i);
    rt_sleep_ns(50000000u);
    atomic_store(&SH->go, 1);
    for (int i = 0; i < KIDS; i++)
        spin_until(&SH->done[i]);
    uint64_t sum = 0;
    for (int i = 0; i < KIDS; i++)
        sum += atomic_load(&SH->count[i]) * CHUNK;
    CHECK_EQ(sum, LIMIT[0]);
    gs_region_usage u;
    CHECK_EQ(gs_region_usage_group(0, &u), GS_REGION_OK);
    CHECK_EQ(u.device_bytes, LIMIT[0]);
    CHECK_EQ(u.processes, KIDS + 1);
    printf("     chunks per process:");
    for (int i = 0; i < KIDS; i++)
        printf(" %llu", (unsigned long long)atomic_load(&SH->count[i]));
    printf("\n");
    atomic_store(&SH->stop, 1);
    for (int i = 0; i < KIDS; i++)
        reap(kids[i], false);
    CHECK_EQ(gs_region_usage_group(0, &u), GS_REGION_OK);
    CHECK_EQ(u.device_bytes, 0);
}

/* ---- random traffic ------------------------------------------------------------------- */

/* One child's loop: random reserve / commit / cancel / release on both devices. Between
 * operations it checks `stop`; stopped, it reports what it holds and waits to be killed. */
static void churn(int i)
{
    uint64_t seed = (uint64_t)getpid() * 2654435761u + (uint64_t)i;
    typedef struct { uint32_t dev, kind; uint64_t bytes; } alloc;
    alloc mine[24];
    unsigned n = 0;
    uint64_t held[DEVS][GS_REGION_KINDS] = {{0}};
    while (!atomic_load(&SH->stop)) {
        uint64_t x = rt_rand(&seed);
        if (n == 24 || (n > 0 && x % 3 == 0)) {
            unsigned j = (unsigned)(x >> 8) % n;
            alloc a = mine[j];
            if (limited(a.kind))
                atomic_fetch_sub(&SH->oracle[a.dev], a.bytes);
            CHECK_EQ(gs_region_release(a.dev, (gs_region_kind)a.kind, a.bytes), GS_REGION_OK);
            held[a.dev][a.kind] -= a.bytes;
            mine[j] = mine[--n];
            continue;
        }
        alloc a = {(uint32_t)(x >> 16) % DEVS, (uint32_t)(x >> 20) % GS_REGION_KIND_COUNT_USED, 1 + (x >> 24) % 65536};
        gs_region_reservation r;
        gs_region_over_limit over;
        int rc = gs_region_reserve(a.dev, (gs_region_kind)a.kind, a.bytes, &r, &over);
        if (rc == GS_REGION_OVER_LIMIT) {
            atomic_fetch_add(&SH->refusals, 1);
            if (over.timed_out)
                atomic_fetch_add(&SH->timeouts, 1);
            else if (over.used + over.requested <= over.limit)
                atomic_fetch_add(&SH->unjustified, 1);
            continue;
        }
        CHECK_EQ(rc, GS_REGION_OK);
        if (rc != GS_REGION_OK)
            continue;
        atomic_fetch_add(&SH->grants, 1);
        /* The oracle adds after the grant and subtracts before the release, so it never
         * exceeds what the region really holds: above the limit is a real violation. A
         * killed child's bytes stay in it, so only counts from before any kill are judged. */
        if (limited(a.kind) && atomic_fetch_add(&SH->oracle[a.dev], a.bytes) + a.bytes > LIMIT[a.dev] &&
            !atomic_load(&SH->killing))
            atomic_fetch_add(&SH->violations, 1);
        if (x % 7 == 0) {
            if (limited(a.kind))
                atomic_fetch_sub(&SH->oracle[a.dev], a.bytes);
            CHECK_EQ(gs_region_cancel(&r), GS_REGION_OK);
            continue;
        }
        CHECK_EQ(gs_region_commit(&r), GS_REGION_OK);
        held[a.dev][a.kind] += a.bytes;
        mine[n++] = a;
    }
    for (uint32_t d = 0; d < DEVS; d++)
        for (uint32_t k = 0; k < GS_REGION_KINDS; k++)
            atomic_store(&SH->held[i][d][k], held[d][k]);
    atomic_store(&SH->done[i], 1);
    for (;;)
        pause(); /* killed by the parent once it has checked */
}

static void reset_shared(void)
{
    atomic_store(&SH->go, 0);
    atomic_store(&SH->stop, 0);
    atomic_store(&SH->killing, 0);
    for (uint32_t d = 0; d < DEVS; d++)
        atomic_store(&SH->oracle[d], 0);
    for (int i = 0; i < KIDS; i++) {
        atomic_store(&SH->done[i], 0);
        atomic_store(&SH->count[i], 0);
        for (uint32_t d = 0; d < DEVS; d++)
            for (uint32_t k = 0; k < GS_REGION_KINDS; k++)
                atomic_store(&SH->held[i][d][k], 0);
    }
}

static void test_contention(unsigned scale)
{
    rt_section("6 processes of random traffic at the limit: never over, refusals justified");
    reset_shared();
    pid_t kids[KIDS];
    for (int i = 0; i < KIDS; i++)
        kids[i] = spawn(churn, i);
    rt_sleep_ns(500000000ull * scale);
    atomic_store(&SH->stop, 1);
    for (int i = 0; i < KIDS; i++)
        spin_until(&SH->done[i]);
    CHECK_EQ(atomic_load(&SH->violations), 0);
    CHECK_EQ(atomic_load(&SH->unjustified), 0);
    printf("     %u grants, %u refusals (%u timed out) in %u ms\n", atomic_load(&SH->grants),
           atomic_load(&SH->refusals), atomic_load(&SH->timeouts), 500u * scale);
    CHECK(atomic_load(&SH->refusals) > 0);
    uint64_t g[DEVS][GS_REGION_KINDS], total[DEVS], inflight[DEVS];
    group_bytes(g, total, inflight);
    for (uint32_t d = 0; d < DEVS; d++) {
        CHECK(total[d] <= LIMIT[d]);
        CHECK_EQ(inflight[d], 0);
        for (uint32_t k = 0; k < GS_REGION_KINDS; k++) {
            uint64_t want = 0;
            for (int i = 0; i < KIDS; i++)
                want += atomic_load(&SH->held[i][d][k]);
            CHECK_EQ(g[d][k], want);
        }
    }
    for (int i = 0; i < KIDS; i++) {
        CHECK_EQ(kill(kids[i], SIGKILL), 0);
        reap(kids[i], true);
    }
    CHECK_EQ(gs_region_reclaim(), KIDS);
    group_bytes(g, total, inflight);
    CHECK_EQ(total[0] + total[1], 0);
}

/* ---- SIGKILL ---------------------------------------------------------------------------- */

static void test_sigkill(unsigned scale)
{
    rt_section("SIGKILL at random instants, many rounds: no wedge, exact totals, all reclaimed");
    /* The parent holds some of each device throughout. */
    const uint64_t mine0 = 100000, mine1 = 50000;
    gs_region_reservation r;
    CHECK_EQ(gs_region_reserve(0, GS_REGION_KIND_CONTEXT, mine0, &r, NULL), GS_REGION_OK);
    CHECK_EQ(gs_region_commit(&r), GS_REGION_OK);
    CHECK_EQ(gs_region_reserve(1, GS_REGION_KIND_POOL, mine1, &r, NULL), GS_REGION_OK);
    CHECK_EQ(gs_region_commit(&r), GS_REGION_OK);
    uint64_t seed = 12345;
    unsigned rounds = 150 * scale, killed_total = 0;
    uint64_t max_round_ns = 0;
    for (unsigned round = 0; round < rounds && rt_failures() == 0; round++) {
        uint64_t t0 = rt_now_ns();
        reset_shared();
        atomic_store(&SH->violations, 0);
        pid_t kids[KIDS];
        bool killed[KIDS];
        for (int i = 0; i < KIDS; i++)
            kids[i] = spawn(churn, i);
        rt_sleep_ns(rt_rand(&seed) % 3000000u); /* 0-3 ms: kills land in attach, too */
        atomic_store(&SH->killing, 1);
        for (int i = 0; i < KIDS; i++) {
            killed[i] = rt_rand(&seed) % 2 == 0;
            if (killed[i]) {
                CHECK_EQ(kill(kids[i], SIGKILL), 0);
                killed_total++;
            }
        }
        atomic_store(&SH->stop, 1);
        /* Survivors must finish their operation and report: a wedge would hang here. */
        for (int i = 0; i < KIDS; i++) {
            if (killed[i])
                continue;
            uint64_t deadline = rt_now_ns() + 10000000000ull;
            while (!atomic_load(&SH->done[i]) && rt_now_ns() < deadline)
                rt_sleep_ns(100000u);
            CHECK(atomic_load(&SH->done[i]));
        }
        CHECK_EQ(atomic_load(&SH->violations), 0);
        /* SIGKILL is asynchronous: wait until the killed are dead (zombies, not reaped, so
         * reclaim must recognise a zombie as dead). */
        for (int i = 0; i < KIDS; i++) {
            siginfo_t info;
            if (killed[i])
                CHECK_EQ(waitid(P_PID, (id_t)kids[i], &info, WEXITED | WNOWAIT), 0);
        }
        /* Half the rounds reclaim the dead here; the other half leave them to the next
         * round's children, whose attach reclaims them concurrently (and may be killed
         * while doing it). */
        if (round % 2 == 0 || round + 1 == rounds)
            CHECK(gs_region_reclaim() >= 0);
        else {
            for (int i = 0; i < KIDS; i++)
                if (!killed[i]) {
                    CHECK_EQ(kill(kids[i], SIGKILL), 0);
                    killed[i] = true;
                }
            for (int i = 0; i < KIDS; i++)
                reap(kids[i], true);
            continue;
        }
        uint64_t g[DEVS][GS_REGION_KINDS], total[DEVS], inflight[DEVS];
        group_bytes(g, total, inflight);
        for (uint32_t d = 0; d < DEVS; d++) {
            CHECK_EQ(inflight[d], 0);
            uint64_t want_total = 0;
            for (uint32_t k = 0; k < GS_REGION_KINDS; k++) {
                uint64_t want = (d == 0 && k == GS_REGION_KIND_CONTEXT) ? mine0
                                : (d == 1 && k == GS_REGION_KIND_POOL) ? mine1 : 0;
                for (int i = 0; i < KIDS; i++)
                    if (!killed[i])
                        want += atomic_load(&SH->held[i][d][k]);
                CHECK_EQ(g[d][k], want);
                if (limited(k))
                    want_total += want;
            }
            CHECK_EQ(total[d], want_total);
        }
        /* No wedge: the room left can be taken to the byte, and not a byte more. */
        uint64_t room = LIMIT[0] - total[0];
        gs_region_over_limit over;
        CHECK_EQ(gs_region_reserve(0, GS_REGION_KIND_ALLOC, room, &r, &over), GS_REGION_OK);
        CHECK_EQ(gs_region_commit(&r), GS_REGION_OK);
        CHECK_EQ(gs_region_reserve(0, GS_REGION_KIND_ALLOC, 1, &r, &over), GS_REGION_OVER_LIMIT);
        CHECK_EQ(over.timed_out, 0);
        CHECK_EQ(gs_region_release(0, GS_REGION_KIND_ALLOC, room), GS_REGION_OK);
        for (int i = 0; i < KIDS; i++) {
            if (!killed[i])
                CHECK_EQ(kill(kids[i], SIGKILL), 0);
            reap(kids[i], true);
        }
        CHECK(gs_region_reclaim() >= 0); /* the survivors, now dead */
        group_bytes(g, total, inflight);
        CHECK_EQ(total[0], mine0);
        CHECK_EQ(total[1], mine1);
        uint64_t ns = rt_now_ns() - t0;
        if (ns > max_round_ns)
            max_round_ns = ns;
    }
    printf("     %u rounds, %u processes killed mid-loop, slowest round %.1f ms\n", rounds, killed_total,
           (double)max_round_ns / 1e6);
    CHECK_EQ(gs_region_release(0, GS_REGION_KIND_CONTEXT, mine0), GS_REGION_OK);
    CHECK_EQ(gs_region_release(1, GS_REGION_KIND_POOL, mine1), GS_REGION_OK);
}

int main(void)
{
    rt_begin("test_region_procs");
    const char *s = getenv("REGION_TEST_SCALE");
    unsigned scale = s ? (unsigned)atoi(s) : 1u;
    if (scale == 0)
        scale = 1;
    void *p = mmap(NULL, sizeof(shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        return 2;
    }
    SH = p;
    LIMIT[0] = 1u << 20;
    LIMIT[1] = 512u << 10;
    char path[512];
    rt_path(path, sizeof path, "procs");
    gs_region_options o = rt_options(path, LIMIT[0]);
    o.mem_limit[1] = LIMIT[1];
    o.pending_wait_ns = 5000000000u; /* sanitizer builds on a loaded box: no timed-out refusals */
    OPEN(&o, GS_REGION_OK);
    test_fill();
    test_contention(scale);
    test_sigkill(scale);
    CHECK_EQ(atomic_load(&SH->failures), 0);
    CHECK_EQ(gs_region_close(), GS_REGION_OK);
    return rt_end();
}
