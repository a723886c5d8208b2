/*
 * test_region_basic.c: one process (and a few short-lived children): the exact limit edge,
 * release exactness, kinds, argument errors, in-flight reservations, limits that differ,
 * corrupt and foreign files, private mode, dead and reused pids, fork.
 */
#define _DEFAULT_SOURCE

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "region_test.h"

#define MiB (UINT64_C(1) << 20)

static uint64_t owner_word(uint64_t state, uint64_t pid, uint64_t start)
{
    return (state << GS_REGION_OWNER_STATE_SHIFT) | ((pid & GS_REGION_OWNER_PID_MASK) << GS_REGION_OWNER_PID_SHIFT) |
           (start & GS_REGION_OWNER_START_MASK);
}

static int reserve_commit(uint32_t dev, gs_region_kind kind, uint64_t bytes)
{
    gs_region_reservation r;
    int rc = gs_region_reserve(dev, kind, bytes, &r, NULL);
    if (rc == GS_REGION_OK)
        CHECK_EQ(gs_region_commit(&r), GS_REGION_OK);
    return rc;
}

static uint64_t self_device_bytes(uint32_t dev)
{
    gs_region_usage u;
    CHECK_EQ(gs_region_usage_self(dev, &u), GS_REGION_OK);
    return u.device_bytes;
}

static uint64_t group_device_bytes(uint32_t dev)
{
    gs_region_usage u;
    CHECK_EQ(gs_region_usage_group(dev, &u), GS_REGION_OK);
    return u.device_bytes;
}

static void test_limit_edge(const char *path)
{
    rt_section("exact limit edge: limit-1, limit, limit+1");
    const uint64_t L = 64 * MiB + 17; /* not a round number on purpose */
    gs_region_options o = rt_options(path, L);
    OPEN(&o, GS_REGION_OK);
    CHECK_EQ(gs_region_limit(0), L);

    gs_region_reservation r;
    gs_region_over_limit over;
    /* limit+1 from empty: refused, with the numbers for the message */
    CHECK_EQ(gs_region_reserve(0, GS_REGION_KIND_ALLOC, L + 1, &r, &over), GS_REGION_OVER_LIMIT);
    CHECK_EQ(over.requested, L + 1);
    CHECK_EQ(over.limit, L);
    CHECK_EQ(over.used, 0);
    CHECK_EQ(over.in_flight, 0);
    CHECK_EQ(over.timed_out, 0);
    /* exactly the limit from empty: granted */
    CHECK_EQ(gs_region_reserve(0, GS_REGION_KIND_ALLOC, L, &r, NULL), GS_REGION_OK);
    CHECK_EQ(gs_region_cancel(&r), GS_REGION_OK);
    /* limit-1, then 1 (exactly at the limit), then 1 more (over) */
    CHECK_EQ(reserve_commit(0, GS_REGION_KIND_ALLOC, L - 1), GS_REGION_OK);
    CHECK_EQ(reserve_commit(0, GS_REGION_KIND_CONTEXT, 1), GS_REGION_OK);
    CHECK_EQ(self_device_bytes(0), L);
    CHECK_EQ(gs_region_reserve(0, GS_REGION_KIND_VMM, 1, &r, &over), GS_REGION_OVER_LIMIT);
    CHECK_EQ(over.used, L);
    CHECK_EQ(over.self, L);
    CHECK_EQ(over.requested, 1);
    CHECK_EQ(over.kind, GS_REGION_KIND_VMM);
    /* a zero-byte reservation at the limit fits */
    CHECK_EQ(reserve_commit(0, GS_REGION_KIND_ALLOC, 0), GS_REGION_OK);
    /* free one byte: exactly one byte fits again, of any limited kind */
    CHECK_EQ(gs_region_release(0, GS_REGION_KIND_CONTEXT, 1), GS_REGION_OK);
    CHECK_EQ(reserve_commit(0, GS_REGION_KIND_POOL, 1), GS_REGION_OK);
    CHECK_EQ(gs_region_reserve(0, GS_REGION_KIND_ARRAY, 1, &r, NULL), GS_REGION_OVER_LIMIT);

    rt_section("add: memory the driver already gave is counted past the limit");
    CHECK_EQ(gs_region_add(0, GS_REGION_KIND_GRAPH, 10), GS_REGION_OK);
    CHECK_EQ(self_device_bytes(0), L + 10);
    CHECK_EQ(gs_region_reserve(0, GS_REGION_KIND_ALLOC, 1, &r, NULL), GS_REGION_OVER_LIMIT);
    CHECK_EQ(gs_region_add(0, GS_REGION_KIND_HOST, 5), GS_REGION_OK); /* not limited: not in the device total */
    CHECK_EQ(self_device_bytes(0), L + 10);
    CHECK_EQ(gs_region_add(GS_REGION_MAX_DEVICES, GS_REGION_KIND_GRAPH, 1), GS_REGION_EINVAL);
    CHECK_EQ(gs_region_release(0, GS_REGION_KIND_GRAPH, 11), GS_REGION_EUNDERFLOW);
    CHECK_EQ(gs_region_release(0, GS_REGION_KIND_GRAPH, 10), GS_REGION_OK);
    CHECK_EQ(gs_region_release(0, GS_REGION_KIND_HOST, 5), GS_REGION_OK);
    CHECK_EQ(self_device_bytes(0), L);

    rt_section("release exactness and underflow");
    gs_region_usage u;
    CHECK_EQ(gs_region_usage_self(0, &u), GS_REGION_OK);
    CHECK_EQ(u.bytes[GS_REGION_KIND_ALLOC], L - 1);
    CHECK_EQ(u.bytes[GS_REGION_KIND_POOL], 1);
    CHECK_EQ(u.bytes[GS_REGION_KIND_CONTEXT], 0);
    CHECK_EQ(gs_region_release(0, GS_REGION_KIND_POOL, 2), GS_REGION_EUNDERFLOW); /* nothing changes */
    CHECK_EQ(gs_region_release(0, GS_REGION_KIND_CONTEXT, 1), GS_REGION_EUNDERFLOW);
    CHECK_EQ(self_device_bytes(0), L);
    CHECK_EQ(gs_region_release(0, GS_REGION_KIND_POOL, 1), GS_REGION_OK);
    CHECK_EQ(gs_region_release(0, GS_REGION_KIND_ALLOC, L - 2), GS_REGION_OK);
    CHECK_EQ(self_device_bytes(0), 1);
    CHECK_EQ(gs_region_release(0, GS_REGION_KIND_ALLOC, 1), GS_REGION_OK);
    CHECK_EQ(self_device_bytes(0), 0);
    CHECK_EQ(group_device_bytes(0), 0);
    CHECK_EQ(gs_region_usage_self(0, &u), GS_REGION_OK);
    for (unsigned k = 0; k < GS_REGION_KINDS; k++)
        CHECK_EQ(u.bytes[k], 0);

    rt_section("kinds: host-backed is counted but not limited; unlimited devices");
    CHECK_EQ(reserve_commit(0, GS_REGION_KIND_HOST, 10 * L), GS_REGION_OK);
    CHECK_EQ(self_device_bytes(0), 0);
    CHECK_EQ(gs_region_usage_self(0, &u), GS_REGION_OK);
    CHECK_EQ(u.bytes[GS_REGION_KIND_HOST], 10 * L);
    CHECK_EQ(reserve_commit(0, GS_REGION_KIND_ALLOC, L), GS_REGION_OK); /* host bytes did not eat the limit */
    CHECK_EQ(gs_region_release(0, GS_REGION_KIND_ALLOC, L), GS_REGION_OK);
    CHECK_EQ(gs_region_release(0, GS_REGION_KIND_HOST, 10 * L), GS_REGION_OK);
    CHECK_EQ(gs_region_limit(1), 0);
    CHECK_EQ(reserve_commit(1, GS_REGION_KIND_ALLOC, UINT64_C(1) << 50), GS_REGION_OK);
    CHECK_EQ(self_device_bytes(1), UINT64_C(1) << 50);
    CHECK_EQ(gs_region_release(1, GS_REGION_KIND_ALLOC, UINT64_C(1) << 50), GS_REGION_OK);

    rt_section("bad arguments and stale reservations");
    CHECK_EQ(gs_region_reserve(GS_REGION_MAX_DEVICES, GS_REGION_KIND_ALLOC, 1, &r, NULL), GS_REGION_EINVAL);
    CHECK_EQ(gs_region_reserve(0, (gs_region_kind)GS_REGION_KINDS, 1, &r, NULL), GS_REGION_EINVAL);
    CHECK_EQ(gs_region_reserve(0, GS_REGION_KIND_ALLOC, 1, NULL, NULL), GS_REGION_EINVAL);
    CHECK_EQ(gs_region_release(GS_REGION_MAX_DEVICES, GS_REGION_KIND_ALLOC, 1), GS_REGION_EINVAL);
    CHECK_EQ(gs_region_reserve(0, GS_REGION_KIND_ALLOC, 100, &r, NULL), GS_REGION_OK);
    CHECK_EQ(gs_region_commit(&r), GS_REGION_OK);
    CHECK_EQ(gs_region_commit(&r), GS_REGION_ESTALE); /* never counted twice */
    CHECK_EQ(gs_region_cancel(&r), GS_REGION_ESTALE);
    CHECK_EQ(self_device_bytes(0), 100);
    CHECK_EQ(gs_region_release(0, GS_REGION_KIND_ALLOC, 100), GS_REGION_OK);
    char err[256];
    CHECK_EQ(gs_region_open(&o, err, sizeof err), GS_REGION_EOPEN);
    CHECK_EQ(gs_region_close(), GS_REGION_OK);
    CHECK_EQ(gs_region_close(), GS_REGION_ENOTOPEN);
    CHECK_EQ(gs_region_reserve(0, GS_REGION_KIND_ALLOC, 1, &r, NULL), GS_REGION_ENOTOPEN);
}

/* ---- in-flight reservations: wait for them, bounded --------------------------------------- */

typedef struct inflight_arg {
    uint64_t bytes;
    int rc;
    gs_region_over_limit over;
    uint64_t waited_ns;
} inflight_arg;

static void *reserve_thread(void *p)
{
    inflight_arg *a = p;
    gs_region_reservation r;
    uint64_t t0 = rt_now_ns();
    a->rc = gs_region_reserve(0, GS_REGION_KIND_ALLOC, a->bytes, &r, &a->over);
    a->waited_ns = rt_now_ns() - t0;
    if (a->rc == GS_REGION_OK)
        CHECK_EQ(gs_region_commit(&r), GS_REGION_OK);
    return NULL;
}

static void test_in_flight(const char *path)
{
    rt_section("a reservation in flight: wait for it; cancel lets the waiter in");
    const uint64_t L = 10 * MiB;
    gs_region_options o = rt_options(path, L);
    o.pending_wait_ns = 2000000000u; /* generous: the cancel comes after 20 ms */
    OPEN(&o, GS_REGION_OK);
    gs_region_reservation held;
    CHECK_EQ(gs_region_reserve(0, GS_REGION_KIND_ALLOC, 8 * MiB, &held, NULL), GS_REGION_OK);
    inflight_arg a = {.bytes = 4 * MiB};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, reserve_thread, &a), 0);
    rt_sleep_ns(20000000u);
    CHECK_EQ(gs_region_cancel(&held), GS_REGION_OK); /* the allocation failed: 4 MiB fits now */
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(a.rc, GS_REGION_OK);
    CHECK(a.waited_ns >= 10000000u);
    CHECK_EQ(self_device_bytes(0), 4 * MiB);

    rt_section("a reservation in flight that commits: the waiter is refused, not timed out");
    CHECK_EQ(gs_region_reserve(0, GS_REGION_KIND_ALLOC, 6 * MiB, &held, NULL), GS_REGION_OK);
    a = (inflight_arg){.bytes = 1};
    CHECK_EQ(pthread_create(&th, NULL, reserve_thread, &a), 0);
    rt_sleep_ns(20000000u);
    CHECK_EQ(gs_region_commit(&held), GS_REGION_OK);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(a.rc, GS_REGION_OVER_LIMIT);
    CHECK_EQ(a.over.used, L);
    CHECK_EQ(a.over.timed_out, 0);
    CHECK_EQ(gs_region_release(0, GS_REGION_KIND_ALLOC, L), GS_REGION_OK);
    CHECK_EQ(gs_region_close(), GS_REGION_OK);

    rt_section("a reservation in flight that never settles: bounded wait, then refused (timed out)");
    o.pending_wait_ns = 30000000u; /* 30 ms */
    CHECK_EQ(gs_region_close(), GS_REGION_ENOTOPEN);
    OPEN(&o, GS_REGION_OK);
    CHECK_EQ(gs_region_reserve(0, GS_REGION_KIND_ALLOC, 8 * MiB, &held, NULL), GS_REGION_OK);
    a = (inflight_arg){.bytes = 4 * MiB};
    CHECK_EQ(pthread_create(&th, NULL, reserve_thread, &a), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_EQ(a.rc, GS_REGION_OVER_LIMIT);
    CHECK_EQ(a.over.timed_out, 1);
    CHECK_EQ(a.over.in_flight, 8 * MiB);
    CHECK(a.waited_ns >= 30000000u && a.waited_ns < 1000000000u);
    CHECK_EQ(gs_region_cancel(&held), GS_REGION_OK);
    CHECK_EQ(gs_region_close(), GS_REGION_OK);
}

/* ---- limits, files --------------------------------------------------------------------- */

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    CHECK(fp != NULL);
    if (fp == NULL)
        return;
    CHECK_EQ(fwrite(data, 1, len, fp), len);
    CHECK_EQ(fclose(fp), 0);
}

static void test_files(const char *path)
{
    rt_section("a later attacher with other limits gets LIMITS_DIFFER and the creator's limits");
    gs_region_options o = rt_options(path, 5 * MiB);
    OPEN(&o, GS_REGION_OK);
    CHECK_EQ(gs_region_close(), GS_REGION_OK);
    gs_region_options other = rt_options(path, 7 * MiB);
    char err[512] = "";
    CHECK_EQ(gs_region_open(&other, err, sizeof err), GS_REGION_LIMITS_DIFFER);
    CHECK(strstr(err, "device 0") != NULL && strstr(err, "5242880") != NULL && strstr(err, "7340032") != NULL);
    printf("     (message: %s)\n", err);
    CHECK_EQ(gs_region_limit(0), 5 * MiB);
    CHECK_EQ(gs_region_close(), GS_REGION_OK);
    gs_region_options none = {.path = path}; /* no limits of our own: adopt silently */
    OPEN(&none, GS_REGION_OK);
    CHECK_EQ(gs_region_limit(0), 5 * MiB);
    CHECK_EQ(gs_region_close(), GS_REGION_OK);

    rt_section("corrupt and foreign files are refused with a clear error");
    char p[512];
    rt_path(p, sizeof p, "foreign");
    char junk[8192];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)(i * 31 + 7);
    write_file(p, junk, sizeof junk);
    gs_region_options fo = rt_options(p, MiB);
    CHECK_EQ(gs_region_open(&fo, err, sizeof err), GS_REGION_EFORMAT);
    CHECK(strstr(err, "not a gpushare region") != NULL);
    printf("     (message: %s)\n", err);
    CHECK_EQ(gs_region_slot_index(), -1);

    /* a real region of another version */
    gs_region_file *f = rt_map(path);
    rt_path(p, sizeof p, "version");
    gs_region_header h;
    memcpy(&h, &f->header, sizeof h);
    rt_unmap(f);
    h.version = GS_REGION_VERSION + 1;
    {
        FILE *fp = fopen(p, "wb");
        CHECK(fp != NULL);
        if (fp != NULL) {
            CHECK_EQ(fwrite(&h, 1, sizeof h, fp), sizeof h);
            CHECK_EQ(ftruncate(fileno(fp), GS_REGION_FILE_SIZE), 0);
            CHECK_EQ(fclose(fp), 0);
        }
    }
    fo.path = p;
    CHECK_EQ(gs_region_open(&fo, err, sizeof err), GS_REGION_EFORMAT);
    CHECK(strstr(err, "layout version 2") != NULL);
    printf("     (message: %s)\n", err);

    /* right magic and version, wrong size (truncated) */
    rt_path(p, sizeof p, "truncated");
    h.version = GS_REGION_VERSION;
    write_file(p, &h, sizeof h);
    fo.path = p;
    CHECK_EQ(gs_region_open(&fo, err, sizeof err), GS_REGION_EFORMAT);
    CHECK(strstr(err, "foreign geometry") != NULL);
    printf("     (message: %s)\n", err);

    /* an empty file nobody initialises: bounded wait, then EINIT */
    rt_path(p, sizeof p, "empty");
    write_file(p, "", 0);
    fo.path = p;
    fo.init_wait_ns = 50000000u;
    uint64_t t0 = rt_now_ns();
    CHECK_EQ(gs_region_open(&fo, err, sizeof err), GS_REGION_EINIT);
    uint64_t waited = rt_now_ns() - t0;
    CHECK(waited >= 50000000u && waited < 2000000000u);
    printf("     (message: %s)\n", err);

    /* a path we cannot create */
    fo.path = "/nonexistent-dir/region";
    CHECK_EQ(gs_region_open(&fo, err, sizeof err), GS_REGION_ESYS);
    printf("     (message: %s)\n", err);

    rt_section("private mode: anonymous memory, same API");
    gs_region_options po = rt_options(NULL, 3 * MiB);
    OPEN(&po, GS_REGION_OK);
    CHECK_EQ(reserve_commit(0, GS_REGION_KIND_ALLOC, 3 * MiB), GS_REGION_OK);
    gs_region_reservation r;
    CHECK_EQ(gs_region_reserve(0, GS_REGION_KIND_ALLOC, 1, &r, NULL), GS_REGION_OVER_LIMIT);
    pid_t child = fork();
    if (child == 0) {
        /* a private region is not shared with children: the child starts from zero */
        CHECK_EQ(self_device_bytes(0), 0);
        CHECK_EQ(reserve_commit(0, GS_REGION_KIND_ALLOC, 3 * MiB), GS_REGION_OK);
        _exit(rt_failures() ? 1 : 0);
    }
    int status = 0;
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_EQ(group_device_bytes(0), 3 * MiB);
    CHECK_EQ(gs_region_release(0, GS_REGION_KIND_ALLOC, 3 * MiB), GS_REGION_OK);
    CHECK_EQ(gs_region_close(), GS_REGION_OK);
}

/* ---- dead and reused pids ----------------------------------------------------------------- */

/* Leaves usage in a free slot of f as if process (pid, start) held it. */
static unsigned fake_slot(gs_region_file *f, uint64_t state, uint32_t pid, uint64_t start, uint64_t bytes)
{
    unsigned i = 0;
    while (atomic_load(&f->slots[i].owner) != 0)
        i++;
    gs_region_slot *s = &f->slots[i];
    atomic_store(&s->dev_total[0], bytes);
    atomic_store(&s->dev[0].bytes[GS_REGION_KIND_ALLOC], bytes);
    if (bytes > 0) { /* and a reservation that was in flight when it died */
        atomic_store(&s->lanes[3].bytes, 12345);
        atomic_store(&s->lanes[3].meta, ((uint64_t)999 << GS_REGION_LANE_TICKET_SHIFT) | GS_REGION_LANE_GRANTED);
    }
    atomic_store(&s->pid, pid);
    atomic_store(&s->owner, owner_word(state, pid, start));
    uint32_t hwm = atomic_load(&f->header.slots_hwm);
    if (hwm < i + 1)
        atomic_store(&f->header.slots_hwm, i + 1);
    return i;
}

static pid_t dead_pid(void)
{
    pid_t c = fork();
    if (c == 0)
        _exit(0);
    int st;
    CHECK_EQ(waitpid(c, &st, 0), c);
    return c;
}

static void test_reclaim(const char *path)
{
    rt_section("dead and reused pids are reclaimed; the living are not");
    const uint64_t L = 8 * MiB;
    gs_region_options o = rt_options(path, L);
    OPEN(&o, GS_REGION_LIMITS_DIFFER); /* the region was made with 5 MiB above: use a fresh one */
    CHECK_EQ(gs_region_close(), GS_REGION_OK);
    char p[512];
    rt_path(p, sizeof p, "reclaim");
    o.path = p;
    OPEN(&o, GS_REGION_OK);
    int me = gs_region_slot_index();
    CHECK_EQ(me, 0);
    gs_region_file *f = rt_map(p);
    uint64_t start = rt_self_start();
    CHECK(start != 0);

    /* our own pid, another start time: the pid was reused, the slot's owner is gone */
    unsigned reused = fake_slot(f, GS_REGION_SLOT_ACTIVE, (uint32_t)getpid(), start + 1, 6 * MiB);
    /* a pid that exited */
    unsigned dead = fake_slot(f, GS_REGION_SLOT_ACTIVE, (uint32_t)dead_pid(), 1, 1 * MiB);
    /* a reclaim interrupted by the reclaimer's death */
    unsigned half = fake_slot(f, GS_REGION_SLOT_RECLAIMING, (uint32_t)dead_pid(), 1, 1 * MiB);
    /* a live process (our parent... or pid 1 if reparented): must stay */
    pid_t live = fork();
    if (live == 0) {
        pause();
        _exit(0);
    }
    rt_sleep_ns(20000000u); /* let it exist in /proc */
    uint64_t live_start = 0;
    {
        char sp[64], buf[1024];
        (void)snprintf(sp, sizeof sp, "/proc/%d/stat", (int)live);
        FILE *fp = fopen(sp, "r");
        CHECK(fp != NULL);
        if (fp != NULL) {
            size_t n = fread(buf, 1, sizeof buf - 1, fp);
            buf[n] = '\0';
            CHECK_EQ(fclose(fp), 0);
            char *q = strrchr(buf, ')') + 2;
            for (int fld = 3; fld < 22; fld++)
                q = strchr(q, ' ') + 1;
            live_start = strtoull(q, NULL, 10);
        }
    }
    unsigned alive = fake_slot(f, GS_REGION_SLOT_ACTIVE, (uint32_t)live, live_start, 0);
    CHECK_EQ(group_device_bytes(0), 8 * MiB);

    /* The group looks full (8 MiB of 8 committed); before refusing, reserve reclaims the
     * dead and finds the room. */
    gs_region_reservation r;
    gs_region_over_limit over;
    CHECK_EQ(gs_region_reserve(0, GS_REGION_KIND_ALLOC, 8 * MiB, &r, &over), GS_REGION_OK);
    CHECK_EQ(gs_region_commit(&r), GS_REGION_OK);
    CHECK_EQ(atomic_load(&f->slots[reused].owner), 0);
    CHECK_EQ(atomic_load(&f->slots[dead].owner), 0);
    CHECK_EQ(atomic_load(&f->slots[half].owner), 0);
    CHECK_EQ(atomic_load(&f->slots[reused].lanes[3].meta), 0);
    CHECK_EQ(atomic_load(&f->slots[reused].dev[0].bytes[GS_REGION_KIND_ALLOC]), 0);
    CHECK(atomic_load(&f->slots[alive].owner) != 0);
    CHECK_EQ(group_device_bytes(0), 8 * MiB);
    CHECK_EQ(gs_region_reclaim(), 0); /* nothing more to reclaim: we and `live` are alive */

    rt_section("a zombie (killed, not yet reaped) is dead");
    CHECK_EQ(kill(live, SIGKILL), 0);
    rt_sleep_ns(50000000u);
    CHECK_EQ(gs_region_reclaim(), 1);
    CHECK_EQ(atomic_load(&f->slots[alive].owner), 0);
    int st;
    CHECK_EQ(waitpid(live, &st, 0), live);

    rt_section("attach reclaims too, and takes the lowest free slot");
    fake_slot(f, GS_REGION_SLOT_ACTIVE, (uint32_t)dead_pid(), 1, 1 * MiB);
    CHECK_EQ(gs_region_release(0, GS_REGION_KIND_ALLOC, 8 * MiB), GS_REGION_OK);
    CHECK_EQ(gs_region_close(), GS_REGION_OK);
    OPEN(&o, GS_REGION_OK);
    CHECK_EQ(gs_region_slot_index(), 0);
    CHECK_EQ(group_device_bytes(0), 0);

    rt_section("fork: the child attaches its own slot on first use");
    CHECK_EQ(reserve_commit(0, GS_REGION_KIND_ALLOC, 3 * MiB), GS_REGION_OK);
    gs_region_reservation before_fork;
    CHECK_EQ(gs_region_reserve(0, GS_REGION_KIND_ALLOC, 1 * MiB, &before_fork, NULL), GS_REGION_OK);
    pid_t c = fork();
    if (c == 0) {
        CHECK_EQ(gs_region_commit(&before_fork), GS_REGION_ESTALE); /* the parent's, not ours */
        CHECK_EQ(reserve_commit(0, GS_REGION_KIND_ALLOC, 4 * MiB), GS_REGION_OK);
        CHECK(gs_region_slot_index() > 0);
        CHECK_EQ(self_device_bytes(0), 4 * MiB);
        CHECK_EQ(reserve_commit(0, GS_REGION_KIND_ALLOC, 1), GS_REGION_OVER_LIMIT); /* 3+1(in flight)+4 */
        CHECK_EQ(gs_region_compute_add(0, 42, 1000, 7), GS_REGION_OK);
        CHECK_EQ(gs_region_compute_set_share(0, GS_REGION_SHARE_ONE / 4), GS_REGION_OK);
        CHECK_EQ(gs_region_compute_set_share(0, GS_REGION_SHARE_ONE + 1), GS_REGION_EINVAL);
        int ci = gs_region_slot_index();
        CHECK_EQ(atomic_load(&f->slots[ci].dev[0].kernels_launched), 42);
        CHECK_EQ(atomic_load(&f->slots[ci].dev[0].achieved_share), GS_REGION_SHARE_ONE / 4);
        CHECK_EQ(atomic_load(&f->slots[ci].pid), (uint32_t)getpid());
        _exit(rt_failures() ? 1 : 0); /* exits holding 4 MiB: reclaimed below */
    }
    CHECK_EQ(waitpid(c, &st, 0), c);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_EQ(gs_region_commit(&before_fork), GS_REGION_OK);
    gs_region_usage u;
    CHECK_EQ(gs_region_usage_group(0, &u), GS_REGION_OK);
    CHECK_EQ(u.device_bytes, 8 * MiB);
    CHECK_EQ(u.processes, 2);
    CHECK_EQ(gs_region_reclaim(), 1);
    CHECK_EQ(group_device_bytes(0), 4 * MiB);
    CHECK_EQ(gs_region_release(0, GS_REGION_KIND_ALLOC, 4 * MiB), GS_REGION_OK);
    CHECK_EQ(gs_region_close(), GS_REGION_OK);
    rt_unmap(f);
}

int main(void)
{
    rt_begin("test_region_basic");
    char path[512];
    rt_path(path, sizeof path, "region");
    test_limit_edge(path);
    char path2[512];
    rt_path(path2, sizeof path2, "inflight");
    test_in_flight(path2);
    char path3[512];
    rt_path(path3, sizeof path3, "limits");
    test_files(path3);
    test_reclaim(path3);
    return rt_end();
}
