/*
 * region.c: the shared region: open-or-create, attach/detach, reclaim, and the lock-free
 * accounting protocol (reserve/commit/cancel/release). Layout: gpushare_region.h; the
 * protocol, with a worked example, in README.md. Why one file of over 400 lines: the lock-free
 * protocol is one argument (every byte in exactly one word), and splitting it would split it.
 *
 * Protocol in one paragraph. Every byte counted lives in exactly one word of exactly one
 * slot (a lane while a reservation is in flight, then the slot's committed counters), and
 * each word changes by one atomic operation, so a process killed at any instant leaves a
 * consistent slot that a reclaimer can zero. The group's usage is the sum over slots. A
 * reservation publishes itself in a lane (DECIDING, with a ticket) and then sums the
 * others; because every publish and every read is sequentially consistent, of two racing
 * reservations the later one to publish always sees the earlier one, so no two grants can
 * together pass the limit. A reservation that would pass the limit only because of other
 * reservations still in flight waits (bounded) for them to settle; of two that block each
 * other, the younger ticket steps aside (WAITING) until the older one settles, so nothing
 * under the limit fails because of a race. No step waits on another process while holding
 * anything that process needs, and waits are bounded, so nobody can wedge anybody.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */

#include "gs_region.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_PENDING_WAIT_NS UINT64_C(100000000) /* 100 ms */
#define DEFAULT_INIT_WAIT_NS UINT64_C(1000000000)   /* 1 s */
#define DEFAULT_MODE 0600u
/* Blockers remembered per scan; more are waited for on a later round. */
#define MAX_BLOCKERS 32
/* Immediate rescans when a release raced with a scan, before treating it as contention. */
#define EPOCH_RESCANS 64
/* Backoff: this many sched_yield rounds, then sleeps from BACKOFF_MIN_NS doubling to MAX. */
#define BACKOFF_YIELDS 16
#define BACKOFF_MIN_NS 20000L
#define BACKOFF_MAX_NS 1000000L

/*
 * The module's only mutable state. It is process-wide because a process belongs to exactly
 * one slice: libgpushare's hooks (cuMemAlloc and friends) carry no context to hang a handle
 * on. `lock` serialises open, close and the lazy attach after fork(); the accounting calls
 * never take it (they only read `slot_index` and the immutable fields set by open).
 */
static struct {
    pthread_mutex_t lock;
    gs_region_file *map;        /* NULL: no region open */
    bool private_mode;          /* anonymous memory, no file */
    bool atfork_registered;
    _Atomic int slot_index;     /* -1: not attached (after fork: attach on first use) */
    uint32_t pid;               /* who we are; owner word of our slot */
    uint64_t start_time;
    uint64_t owner_word;
    uint64_t pending_wait_ns;
} S = {.lock = PTHREAD_MUTEX_INITIALIZER, .slot_index = -1};

/* ---- small helpers ---------------------------------------------------------------------- */

static void set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (err == NULL || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    if (n < 0)
        err[0] = '\0';
}

static uint64_t now_ns(clockid_t clock)
{
    struct timespec ts;
    if (clock_gettime(clock, &ts) != 0)
        return 0; /* cannot fail for these clocks; 0 makes a deadline expire, never hang */
    return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t owner_pack(uint64_t state, uint64_t pid, uint64_t start)
{
    return (state << GS_REGION_OWNER_STATE_SHIFT) | ((pid & GS_REGION_OWNER_PID_MASK) << GS_REGION_OWNER_PID_SHIFT) |
           (start & GS_REGION_OWNER_START_MASK);
}

static uint32_t owner_state(uint64_t w) { return (uint32_t)(w >> GS_REGION_OWNER_STATE_SHIFT); }
static uint32_t owner_pid(uint64_t w) { return (uint32_t)((w >> GS_REGION_OWNER_PID_SHIFT) & GS_REGION_OWNER_PID_MASK); }
static uint64_t owner_start(uint64_t w) { return w & GS_REGION_OWNER_START_MASK; }

static uint64_t lane_pack(uint64_t ticket, uint32_t dev, uint32_t kind, uint32_t state)
{
    return (ticket << GS_REGION_LANE_TICKET_SHIFT) | ((uint64_t)kind << GS_REGION_LANE_KIND_SHIFT) |
           ((uint64_t)dev << GS_REGION_LANE_DEV_SHIFT) | state;
}

static uint32_t lane_state(uint64_t m) { return (uint32_t)(m & 0xfu); }
static uint32_t lane_dev(uint64_t m) { return (uint32_t)((m >> GS_REGION_LANE_DEV_SHIFT) & 0xfu); }
static uint64_t lane_ticket(uint64_t m) { return m >> GS_REGION_LANE_TICKET_SHIFT; }

static bool kind_limited(const gs_region_file *f, uint32_t kind)
{
    return (f->header.limited_kinds >> kind) & 1u;
}

/* Waits a little longer each round: a few yields (the other party is usually mid-step on
 * another core), then short sleeps. Only used at the limit, never on the fast path. */
static void backoff(unsigned round)
{
    if (round < BACKOFF_YIELDS) {
        (void)sched_yield(); /* cannot fail on Linux */
        return;
    }
    unsigned shift = round - BACKOFF_YIELDS;
    long ns = shift >= 6 ? BACKOFF_MAX_NS : BACKOFF_MIN_NS << shift;
    if (ns > BACKOFF_MAX_NS)
        ns = BACKOFF_MAX_NS;
    struct timespec ts = {0, ns};
    if (nanosleep(&ts, NULL) != 0 && errno != EINTR)
        (void)sched_yield(); /* EINVAL cannot happen with these values */
}

/* ---- processes: alive, dead, reused ----------------------------------------------------- */

/* Reads state and start time (field 22) of /proc/<pid>/stat. Returns 1 when read, 0 when the
 * process does not exist, -1 when unknown (no /proc, hidepid, ...). pid 0 means "self". */
static int read_proc_stat(uint32_t pid, char *state, uint64_t *start)
{
    char path[48];
    if (pid == 0)
        (void)snprintf(path, sizeof path, "/proc/self/stat");
    else
        (void)snprintf(path, sizeof path, "/proc/%u/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT || errno == ESRCH ? 0 : -1;
    char buf[1024];
    ssize_t n;
    do
        n = read(fd, buf, sizeof buf - 1);
    while (n < 0 && errno == EINTR);
    int saved = errno;
    if (close(fd) != 0 && n >= 0)
        saved = errno;
    if (n < 0)
        return saved == ESRCH ? 0 : -1; /* ESRCH: it exited between open and read */
    buf[n] = '\0';
    /* "pid (comm) S ppid ...": comm may hold spaces and ')', so parse after the last ')'. */
    char *p = NULL;
    for (char *q = buf; *q; q++)
        if (*q == ')')
            p = q;
    if (p == NULL || p[1] != ' ' || p[2] == '\0')
        return -1;
    p += 2;
    *state = *p;
    for (int field = 3; field < 22; field++) {
        while (*p && *p != ' ')
            p++;
        if (*p == '\0')
            return -1;
        p++;
    }
    uint64_t v = 0;
    if (*p < '0' || *p > '9')
        return -1;
    while (*p >= '0' && *p <= '9')
        v = v * 10 + (uint64_t)(*p++ - '0');
    *start = v;
    return 1;
}

/* Whether the owner recorded in w still runs. Unknown counts as alive: reclaiming a live
 * process's slot would let the group pass its limit, keeping a dead one only wastes a slot. */
static bool owner_alive(uint64_t w)
{
    uint32_t pid = owner_pid(w);
    if (pid == S.pid && owner_start(w) == (S.start_time & GS_REGION_OWNER_START_MASK))
        return true;
    if (pid == 0)
        return false;
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
        return false;
    char state = 0;
    uint64_t start = 0;
    int rc = read_proc_stat(pid, &state, &start);
    if (rc == 0)
        return false;
    if (rc < 0)
        return true;
    if (state == 'Z' || state == 'X') /* exited; its memory (GPU included) is already gone */
        return false;
    return (start & GS_REGION_OWNER_START_MASK) == owner_start(w);
}

/* The cheap half of owner_alive, for attach: a pid that no longer exists, or our own pid
 * with another start time (the slot's owner died and the pid came round to us). One
 * syscall per slot at most, no /proc read, so attaching to a region of 512 live processes
 * stays well under a millisecond; a dead owner whose pid was taken by an unrelated process
 * is left to the full check, which runs before any refusal and when no slot is free. */
static bool owner_surely_dead(uint64_t w)
{
    uint32_t pid = owner_pid(w);
    if (pid == 0)
        return true;
    if (pid == S.pid)
        return owner_start(w) != (S.start_time & GS_REGION_OWNER_START_MASK);
    return kill((pid_t)pid, 0) != 0 && errno == ESRCH;
}

/* ---- slots ------------------------------------------------------------------------------ */

/* Zeroes everything a slot counts (the caller owns the slot: it is ours, or we won the
 * reclaim CAS). Each store is atomic, so readers see the usage go down word by word. */
static void slot_zero(gs_region_slot *s)
{
    for (unsigned l = 0; l < GS_REGION_LANES; l++) {
        atomic_store(&s->lanes[l].meta, 0);
        atomic_store(&s->lanes[l].bytes, 0);
    }
    for (unsigned d = 0; d < GS_REGION_MAX_DEVICES; d++) {
        atomic_store(&s->dev_total[d], 0);
        gs_region_slot_dev *sd = &s->dev[d];
        for (unsigned k = 0; k < GS_REGION_KINDS; k++)
            atomic_store(&sd->bytes[k], 0);
        atomic_store(&sd->kernels_launched, 0);
        atomic_store(&sd->busy_ns, 0);
        atomic_store(&sd->throttle_ns, 0);
        atomic_store(&sd->achieved_share, 0);
        atomic_store(&s->sm_partition[d], 0);
    }
    atomic_store(&s->pid, 0);
    atomic_store(&s->start_time, 0);
    atomic_store(&s->attached_at_ms, 0);
}

/* Reclaims slot i whose owner word was seen as `seen` (dead). Only one reclaimer wins the
 * CAS; it zeroes the slot and then frees it (next_owner 0) or keeps it (our owner word).
 * Returns true when this call won. */
static bool slot_reclaim(gs_region_file *f, unsigned i, uint64_t seen, uint64_t next_owner)
{
    gs_region_slot *s = &f->slots[i];
    uint64_t mine = owner_pack(GS_REGION_SLOT_RECLAIMING, S.pid, S.start_time);
    if (!atomic_compare_exchange_strong(&s->owner, &seen, mine))
        return false;
    slot_zero(s);
    atomic_fetch_add(&f->header.release_epoch, 1);
    atomic_store(&s->owner, next_owner);
    return true;
}

/* Reclaims slot i if its owner is dead; returns true when it did. */
static bool slot_reclaim_if_dead(gs_region_file *f, unsigned i)
{
    uint64_t w = atomic_load(&f->slots[i].owner);
    if (w == 0 || owner_alive(w))
        return false;
    return slot_reclaim(f, i, w, 0);
}

static void hwm_raise(gs_region_file *f, uint32_t to)
{
    uint32_t cur = atomic_load(&f->header.slots_hwm);
    while (cur < to && !atomic_compare_exchange_weak(&f->header.slots_hwm, &cur, to))
        ;
}

/* Claims a slot: one pass over the slots ever used, reclaiming dead owners on the way and
 * taking the first free (or just reclaimed) slot. O(slots), no sleeps. Caller holds S.lock. */
static int attach_locked(char *err, size_t errlen)
{
    gs_region_file *f = S.map;
    uint32_t pid = (uint32_t)getpid();
    char state = 0;
    uint64_t start = 0;
    if (read_proc_stat(0, &state, &start) != 1) {
        set_err(err, errlen, "gpushare region: cannot read /proc/self/stat (process start time): %s",
                strerror(errno));
        return GS_REGION_ESYS;
    }
    if (pid > GS_REGION_OWNER_PID_MASK) {
        set_err(err, errlen, "gpushare region: pid %u does not fit the slot owner word", pid);
        return GS_REGION_ESYS;
    }
    S.pid = pid;
    S.start_time = start;
    S.owner_word = owner_pack(GS_REGION_SLOT_ACTIVE, pid, start);

    /* Pass 0 reclaims the surely dead on the way; pass 1, only when every slot looked taken,
     * checks start times too (pid reuse, zombies). */
    int claimed = -1;
    for (int pass = 0; pass < 2 && claimed < 0; pass++) {
        uint32_t hwm = atomic_load(&f->header.slots_hwm);
        for (unsigned i = 0; i < GS_REGION_MAX_SLOTS; i++) {
            if (i >= hwm && claimed >= 0)
                break;
            gs_region_slot *s = &f->slots[i];
            uint64_t w = atomic_load(&s->owner);
            if (w == 0) {
                if (claimed < 0 && atomic_compare_exchange_strong(&s->owner, &w, S.owner_word))
                    claimed = (int)i;
                continue;
            }
            bool dead = pass == 0 ? owner_surely_dead(w) : !owner_alive(w);
            if (dead && slot_reclaim(f, i, w, claimed < 0 ? S.owner_word : 0) && claimed < 0)
                claimed = (int)i;
        }
    }
    if (claimed < 0) {
        set_err(err, errlen, "gpushare region: all %u slots are held by live processes", GS_REGION_MAX_SLOTS);
        return GS_REGION_EFULL;
    }
    gs_region_slot *s = &f->slots[claimed];
    atomic_store(&s->pid, pid);
    atomic_store(&s->start_time, start);
    atomic_store(&s->attached_at_ms, now_ns(CLOCK_REALTIME) / 1000000u);
    /* Raised before we publish any reservation, so every later scan covers our slot. */
    hwm_raise(f, (uint32_t)claimed + 1);
    atomic_store(&S.slot_index, claimed);
    return GS_REGION_OK;
}

/* The slot index of this process, attaching first after fork(). Negative: an error. */
static int ensure_attached(void)
{
    int idx = atomic_load(&S.slot_index);
    if (idx >= 0)
        return idx;
    if (pthread_mutex_lock(&S.lock) != 0)
        return GS_REGION_ESYS;
    int rc = S.map == NULL ? GS_REGION_ENOTOPEN : GS_REGION_OK;
    if (rc == GS_REGION_OK && atomic_load(&S.slot_index) < 0)
        rc = attach_locked(NULL, 0);
    idx = atomic_load(&S.slot_index);
    if (pthread_mutex_unlock(&S.lock) != 0)
        return GS_REGION_ESYS;
    return rc < 0 ? rc : idx;
}

/* ---- fork ------------------------------------------------------------------------------- */

static void atfork_prepare(void)
{
    (void)pthread_mutex_lock(&S.lock); /* cannot fail for a default mutex used correctly */
}

static void atfork_parent(void)
{
    (void)pthread_mutex_unlock(&S.lock);
}

/* The child shares the region but not the parent's slot: it attaches on first use. A
 * private region was copied with the parent's usage, which is not the child's: clear it. */
static void atfork_child(void)
{
    atomic_store(&S.slot_index, -1);
    if (S.map != NULL && S.private_mode) {
        for (unsigned i = 0; i < GS_REGION_MAX_SLOTS; i++) {
            slot_zero(&S.map->slots[i]);
            atomic_store(&S.map->slots[i].owner, 0);
        }
        atomic_store(&S.map->header.slots_hwm, 0);
    }
    (void)pthread_mutex_unlock(&S.lock);
}

/* ---- open / close ----------------------------------------------------------------------- */

static void header_init(gs_region_file *f, const gs_region_options *o)
{
    gs_region_header *h = &f->header;
    h->version = GS_REGION_VERSION;
    h->header_size = GS_REGION_HEADER_SIZE;
    h->slot_size = GS_REGION_SLOT_SIZE;
    h->max_slots = GS_REGION_MAX_SLOTS;
    h->max_devices = GS_REGION_MAX_DEVICES;
    h->kinds = GS_REGION_KINDS;
    h->file_size = GS_REGION_FILE_SIZE;
    h->device_count = o->has_limits ? o->device_count : 0;
    h->lanes_per_slot = GS_REGION_LANES;
    h->created_at_ms = now_ns(CLOCK_REALTIME) / 1000000u;
    h->creator_pid = (uint32_t)getpid();
    h->limited_kinds = GS_REGION_LIMITED_KINDS;
    for (unsigned d = 0; d < GS_REGION_MAX_DEVICES; d++) {
        atomic_store(&h->mem_limit[d], o->has_limits ? o->mem_limit[d] : 0);
        atomic_store(&h->core_limit_pct[d], o->has_limits ? o->core_limit_pct[d] : 0);
        atomic_store(&h->priority[d], o->has_limits ? o->priority[d] : 0);
    }
    /* Last, with release ordering: whoever sees the magic sees everything above. */
    atomic_store_explicit(&h->magic, GS_REGION_MAGIC, memory_order_release);
}

static gs_region_file *map_fd(int fd, char *err, size_t errlen, const char *path)
{
    void *p = mmap(NULL, GS_REGION_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        set_err(err, errlen, "gpushare region: mmap %s: %s", path, strerror(errno));
        return NULL;
    }
    return p;
}

/* Checks line 0 of an existing file. Returns OK, EFORMAT, or 1 ("not initialised yet"). */
static int check_identity(const gs_region_header *h, uint64_t size, const char *path, char *err, size_t errlen)
{
    uint64_t magic = atomic_load_explicit(&h->magic, memory_order_acquire);
    if (magic == 0)
        return 1;
    if (magic != GS_REGION_MAGIC) {
        set_err(err, errlen,
                "gpushare region: %s is not a gpushare region (magic 0x%016llx, expected 0x%016llx); "
                "is it another tool's file (HAMi-core's cache)? use another path",
                path, (unsigned long long)magic, (unsigned long long)GS_REGION_MAGIC);
        return GS_REGION_EFORMAT;
    }
    if (h->version != GS_REGION_VERSION) {
        set_err(err, errlen, "gpushare region: %s has layout version %u, this library speaks %u", path,
                h->version, GS_REGION_VERSION);
        return GS_REGION_EFORMAT;
    }
    if (h->header_size != GS_REGION_HEADER_SIZE || h->slot_size != GS_REGION_SLOT_SIZE ||
        h->max_slots != GS_REGION_MAX_SLOTS || h->max_devices != GS_REGION_MAX_DEVICES ||
        h->kinds != GS_REGION_KINDS || h->lanes_per_slot != GS_REGION_LANES ||
        h->file_size != GS_REGION_FILE_SIZE || size != GS_REGION_FILE_SIZE) {
        set_err(err, errlen,
                "gpushare region: %s has a foreign geometry (file %llu bytes, header %u, slot %u x %u, "
                "devices %u, kinds %u, lanes %u; expected %u bytes, %u, %u x %u, %u, %u, %u)",
                path, (unsigned long long)size, h->header_size, h->slot_size, h->max_slots, h->max_devices,
                h->kinds, h->lanes_per_slot, GS_REGION_FILE_SIZE, GS_REGION_HEADER_SIZE, GS_REGION_SLOT_SIZE,
                GS_REGION_MAX_SLOTS, GS_REGION_MAX_DEVICES, GS_REGION_KINDS, GS_REGION_LANES);
        return GS_REGION_EFORMAT;
    }
    return GS_REGION_OK;
}

/* Opens an existing region file. Returns OK (*out mapped), 1 when the file does not exist,
 * or an error. Waits, bounded, for a creator that has not published the magic yet. */
static int open_existing(const char *path, uint64_t init_wait_ns, gs_region_file **out, char *err, size_t errlen)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        set_err(err, errlen, "gpushare region: open %s: %s", path, strerror(errno));
        return GS_REGION_ESYS;
    }
    uint64_t deadline = 0;
    int rc;
    for (unsigned round = 0;; round++) {
        struct stat st;
        if (fstat(fd, &st) != 0) {
            set_err(err, errlen, "gpushare region: fstat %s: %s", path, strerror(errno));
            rc = GS_REGION_ESYS;
            break;
        }
        gs_region_header line0;
        ssize_t n = st.st_size > 0 ? pread(fd, &line0, sizeof line0, 0) : 0;
        if (n < 0) {
            set_err(err, errlen, "gpushare region: read %s: %s", path, strerror(errno));
            rc = GS_REGION_ESYS;
            break;
        }
        if (n >= 8 && atomic_load(&line0.magic) != 0) {
            rc = check_identity(&line0, (uint64_t)st.st_size, path, err, errlen);
            if (rc == GS_REGION_OK) {
                *out = map_fd(fd, err, errlen, path);
                /* Re-read through the mapping with acquire: the header must be complete. */
                if (*out == NULL)
                    rc = GS_REGION_ESYS;
                else
                    rc = check_identity(&(*out)->header, (uint64_t)st.st_size, path, err, errlen);
                if (rc != GS_REGION_OK && *out != NULL) {
                    if (munmap(*out, GS_REGION_FILE_SIZE) != 0)
                        rc = GS_REGION_ESYS;
                    *out = NULL;
                }
            }
            if (rc != 1)
                break;
        }
        /* Empty or magic 0: a creator using O_EXCL in place is still initialising. */
        uint64_t now = now_ns(CLOCK_MONOTONIC);
        if (deadline == 0)
            deadline = now + init_wait_ns;
        if (now >= deadline) {
            set_err(err, errlen,
                    "gpushare region: %s exists but was never initialised (its creator died?); remove it",
                    path);
            rc = GS_REGION_EINIT;
            break;
        }
        backoff(round);
    }
    /* Checked, and deliberately not fatal: the mapping stays valid without the descriptor,
     * and a failed close of a read-write file loses no data we wrote through the mapping. */
    bool close_failed = close(fd) != 0;
    (void)close_failed;
    return rc;
}

/*
 * Creates the region file, or returns 1 when another process created it first (the caller
 * then opens it). The file is built complete under a temporary name and published with
 * link(2), which fails with EEXIST like O_CREAT|O_EXCL: so nobody ever sees a half-built
 * region, and a creator killed while building leaves a stray temporary file, not a region
 * that makes every other process wait. Filesystems without hard links get O_CREAT|O_EXCL
 * in place, magic published last (open_existing waits for it, bounded).
 */
static int create_file(const char *path, const gs_region_options *o, gs_region_file **out, char *err, size_t errlen)
{
    size_t len = strlen(path);
    char tmp[4096];
    if (len + 8 > sizeof tmp) {
        set_err(err, errlen, "gpushare region: path too long: %s", path);
        return GS_REGION_EINVAL;
    }
    memcpy(tmp, path, len);
    memcpy(tmp + len, ".XXXXXX", 8);
    mode_t mode = o->mode ? (mode_t)o->mode : DEFAULT_MODE;
    bool in_place = false;
    int fd = mkstemp(tmp);
    if (fd < 0) {
        set_err(err, errlen, "gpushare region: create %s: %s", tmp, strerror(errno));
        return GS_REGION_ESYS;
    }
    int rc = GS_REGION_OK;
    gs_region_file *f = NULL;
    for (;;) {
        if (fchmod(fd, mode) != 0 || ftruncate(fd, GS_REGION_FILE_SIZE) != 0) {
            set_err(err, errlen, "gpushare region: size %s: %s", in_place ? path : tmp, strerror(errno));
            rc = GS_REGION_ESYS;
            break;
        }
        f = map_fd(fd, err, errlen, in_place ? path : tmp);
        if (f == NULL) {
            rc = GS_REGION_ESYS;
            break;
        }
        header_init(f, o);
        if (in_place)
            break;
        int lrc = link(tmp, path);
        int lerr = errno;
        if (unlink(tmp) != 0) {
            set_err(err, errlen, "gpushare region: unlink %s: %s", tmp, strerror(errno));
            rc = GS_REGION_ESYS;
            break;
        }
        if (lrc == 0)
            break;
        if (munmap(f, GS_REGION_FILE_SIZE) != 0) {
            set_err(err, errlen, "gpushare region: munmap: %s", strerror(errno));
            rc = GS_REGION_ESYS;
            f = NULL;
            break;
        }
        f = NULL;
        if (lerr == EEXIST) {
            rc = 1;
            break;
        }
        if (lerr != EPERM && lerr != ENOTSUP && lerr != EOPNOTSUPP && lerr != EXDEV && lerr != EMLINK) {
            set_err(err, errlen, "gpushare region: link %s: %s", path, strerror(lerr));
            rc = GS_REGION_ESYS;
            break;
        }
        /* No hard links here: O_CREAT|O_EXCL in place. */
        if (close(fd) != 0) {
            set_err(err, errlen, "gpushare region: close: %s", strerror(errno));
            return GS_REGION_ESYS;
        }
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd < 0) {
            if (errno == EEXIST)
                return 1;
            set_err(err, errlen, "gpushare region: create %s: %s", path, strerror(errno));
            return GS_REGION_ESYS;
        }
        in_place = true;
    }
    if (close(fd) != 0 && rc == GS_REGION_OK) {
        set_err(err, errlen, "gpushare region: close %s: %s", path, strerror(errno));
        rc = GS_REGION_ESYS;
    }
    if (rc != GS_REGION_OK && f != NULL) {
        if (munmap(f, GS_REGION_FILE_SIZE) != 0)
            rc = GS_REGION_ESYS;
        f = NULL;
    }
    *out = f;
    return rc;
}

static int map_region(const gs_region_options *o, gs_region_file **out, char *err, size_t errlen)
{
    if (o->path == NULL || o->path[0] == '\0') {
        void *p = mmap(NULL, GS_REGION_FILE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (p == MAP_FAILED) {
            set_err(err, errlen, "gpushare region: private mmap: %s", strerror(errno));
            return GS_REGION_ESYS;
        }
        header_init(p, o);
        *out = p;
        return GS_REGION_OK;
    }
    uint64_t init_wait = o->init_wait_ns ? o->init_wait_ns : DEFAULT_INIT_WAIT_NS;
    /* open, else create, else (lost the race) open: a file removed in between makes us go round. */
    for (int attempt = 0; attempt < 8; attempt++) {
        int rc = open_existing(o->path, init_wait, out, err, errlen);
        if (rc != 1)
            return rc;
        rc = create_file(o->path, o, out, err, errlen);
        if (rc != 1)
            return rc;
    }
    set_err(err, errlen, "gpushare region: %s keeps appearing and disappearing", o->path);
    return GS_REGION_ESYS;
}

/* Compares our limits with the creator's; says which device differs first. */
static bool limits_differ(const gs_region_file *f, const gs_region_options *o, char *err, size_t errlen)
{
    if (!o->has_limits)
        return false;
    for (unsigned d = 0; d < GS_REGION_MAX_DEVICES; d++) {
        uint64_t mem = atomic_load(&f->header.mem_limit[d]);
        uint32_t core = atomic_load(&f->header.core_limit_pct[d]);
        int32_t prio = atomic_load(&f->header.priority[d]);
        if (mem != o->mem_limit[d] || core != o->core_limit_pct[d] || prio != o->priority[d]) {
            set_err(err, errlen,
                    "gpushare region: device %u: the region's limits (memory %llu bytes, compute %u%%, priority %d) "
                    "differ from ours (memory %llu bytes, compute %u%%, priority %d); using the region's",
                    d, (unsigned long long)mem, core, prio, (unsigned long long)o->mem_limit[d],
                    o->core_limit_pct[d], o->priority[d]);
            return true;
        }
    }
    return false;
}

int gs_region_open(const gs_region_options *o, char *err, size_t errlen)
{
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (o == NULL || (o->has_limits && o->device_count > GS_REGION_MAX_DEVICES)) {
        set_err(err, errlen, "gpushare region: bad options");
        return GS_REGION_EINVAL;
    }
    int rc = pthread_mutex_lock(&S.lock);
    if (rc != 0) {
        set_err(err, errlen, "gpushare region: lock: %s", strerror(rc));
        return GS_REGION_ESYS;
    }
    if (S.map != NULL) {
        set_err(err, errlen, "gpushare region: a region is already open");
        rc = GS_REGION_EOPEN;
        goto out;
    }
    if (!S.atfork_registered) {
        int arc = pthread_atfork(atfork_prepare, atfork_parent, atfork_child);
        if (arc != 0) {
            set_err(err, errlen, "gpushare region: pthread_atfork: %s", strerror(arc));
            rc = GS_REGION_ESYS;
            goto out;
        }
        S.atfork_registered = true;
    }
    gs_region_file *f = NULL;
    rc = map_region(o, &f, err, errlen);
    if (rc != GS_REGION_OK)
        goto out;
    S.map = f;
    S.private_mode = o->path == NULL || o->path[0] == '\0';
    S.pending_wait_ns = o->pending_wait_ns ? o->pending_wait_ns : DEFAULT_PENDING_WAIT_NS;
    char attach_err[256];
    rc = attach_locked(attach_err, sizeof attach_err);
    if (rc != GS_REGION_OK) {
        set_err(err, errlen, "%s", attach_err);
        if (munmap(f, GS_REGION_FILE_SIZE) != 0)
            rc = GS_REGION_ESYS;
        S.map = NULL;
        goto out;
    }
    if (limits_differ(f, o, err, errlen))
        rc = GS_REGION_LIMITS_DIFFER;
out:
    if (pthread_mutex_unlock(&S.lock) != 0 && rc >= 0)
        rc = GS_REGION_ESYS;
    return rc;
}

int gs_region_close(void)
{
    if (pthread_mutex_lock(&S.lock) != 0)
        return GS_REGION_ESYS;
    int rc = GS_REGION_OK;
    if (S.map == NULL) {
        rc = GS_REGION_ENOTOPEN;
    } else {
        int idx = atomic_load(&S.slot_index);
        if (idx >= 0) {
            gs_region_slot *s = &S.map->slots[idx];
            slot_zero(s);
            atomic_fetch_add(&S.map->header.release_epoch, 1);
            atomic_store(&s->owner, 0);
            atomic_store(&S.slot_index, -1);
        }
        if (munmap(S.map, GS_REGION_FILE_SIZE) != 0)
            rc = GS_REGION_ESYS;
        S.map = NULL;
    }
    if (pthread_mutex_unlock(&S.lock) != 0)
        rc = GS_REGION_ESYS;
    return rc;
}

/* ---- accounting ------------------------------------------------------------------------- */

/* A lane (or slot) someone else holds that our decision depends on. */
typedef struct blocker {
    unsigned slot, lane;
    uint64_t meta;
} blocker;

/* What one scan of the group saw on one device. */
typedef struct scan {
    uint64_t committed;  /* C: committed bytes of all slots (ours included) */
    uint64_t granted;    /* G: others' granted, uncommitted reservations */
    uint64_t older;      /* O: others' deciding reservations with an older ticket */
    uint64_t newer;      /* N: others' deciding reservations with a newer ticket */
    uint64_t self;       /* our committed bytes */
    bool epoch_changed;  /* committed bytes went down during the scan: C may mix before/after */
    unsigned n_older, n_other;
    blocker older_b[MAX_BLOCKERS]; /* deciding, older than us */
    blocker other_b[MAX_BLOCKERS]; /* granted, or deciding and newer */
} scan;

static void remember(blocker *list, unsigned *n, unsigned slot, unsigned lane, uint64_t meta)
{
    if (*n < MAX_BLOCKERS)
        list[(*n)++] = (blocker){slot, lane, meta};
}

/*
 * Sums the group on dev. Per slot, lanes are read before committed bytes: commit adds to
 * the committed bytes before it frees the lane, so a reservation moving from one to the
 * other is seen once or twice, never zero times.
 */
static void scan_group(gs_region_file *f, uint32_t dev, int own_slot, int own_lane, uint64_t ticket, scan *sc)
{
    *sc = (scan){0};
    uint64_t epoch0 = atomic_load(&f->header.release_epoch);
    uint32_t hwm = atomic_load(&f->header.slots_hwm);
    if (hwm > GS_REGION_MAX_SLOTS)
        hwm = GS_REGION_MAX_SLOTS;
    for (unsigned i = 0; i < hwm; i++) {
        gs_region_slot *s = &f->slots[i];
        for (unsigned l = 0; l < GS_REGION_LANES; l++) {
            if ((int)i == own_slot && (int)l == own_lane)
                continue;
            uint64_t m = atomic_load(&s->lanes[l].meta);
            uint32_t st = lane_state(m);
            if ((st != GS_REGION_LANE_DECIDING && st != GS_REGION_LANE_GRANTED) || lane_dev(m) != dev)
                continue;
            uint64_t b = atomic_load(&s->lanes[l].bytes);
            /* Changed under us (settled, or re-used): counting it as granted is the safe side. */
            if (atomic_load(&s->lanes[l].meta) != m)
                st = GS_REGION_LANE_GRANTED;
            if (st == GS_REGION_LANE_GRANTED) {
                sc->granted = sat_add(sc->granted, b);
                remember(sc->other_b, &sc->n_other, i, l, m);
            } else if (lane_ticket(m) < ticket) {
                sc->older = sat_add(sc->older, b);
                remember(sc->older_b, &sc->n_older, i, l, m);
            } else {
                sc->newer = sat_add(sc->newer, b);
                remember(sc->other_b, &sc->n_other, i, l, m);
            }
        }
        uint64_t c = atomic_load(&s->dev_total[dev]);
        sc->committed = sat_add(sc->committed, c);
        if ((int)i == own_slot)
            sc->self = c;
    }
    sc->epoch_changed = atomic_load(&f->header.release_epoch) != epoch0;
}

/* Reclaims the slots of blockers whose owner died (they would never settle). */
static void reclaim_blockers(gs_region_file *f, const blocker *list, unsigned n, int own_slot)
{
    for (unsigned b = 0; b < n; b++)
        if ((int)list[b].slot != own_slot)
            (void)slot_reclaim_if_dead(f, list[b].slot);
}

static int reclaim_all(gs_region_file *f)
{
    int n = 0;
    uint32_t hwm = atomic_load(&f->header.slots_hwm);
    for (unsigned i = 0; i < hwm && i < GS_REGION_MAX_SLOTS; i++)
        n += slot_reclaim_if_dead(f, i);
    return n;
}

static bool deadline_passed(uint64_t *deadline, uint64_t wait_ns)
{
    uint64_t now = now_ns(CLOCK_MONOTONIC);
    if (*deadline == 0)
        *deadline = now + wait_ns;
    return now >= *deadline;
}

static int check_dev_kind(uint32_t dev, uint32_t kind)
{
    return dev < GS_REGION_MAX_DEVICES && kind < GS_REGION_KINDS ? GS_REGION_OK : GS_REGION_EINVAL;
}

/* Claims a free lane of our slot (the other claimants are our own threads). */
static int lane_claim(gs_region_slot *s, uint64_t *deadline)
{
    for (unsigned round = 0;; round++) {
        for (unsigned l = 0; l < GS_REGION_LANES; l++) {
            uint64_t expect = 0;
            if (atomic_load(&s->lanes[l].meta) == 0 &&
                atomic_compare_exchange_strong(&s->lanes[l].meta, &expect, GS_REGION_LANE_WRITING))
                return (int)l;
        }
        if (deadline_passed(deadline, S.pending_wait_ns))
            return GS_REGION_EBUSY;
        backoff(round);
    }
}

static void fill_over(gs_region_over_limit *over, uint32_t dev, uint32_t kind, uint64_t bytes, uint64_t limit,
                      const scan *sc, bool timed_out)
{
    if (over == NULL)
        return;
    *over = (gs_region_over_limit){
        .dev = dev,
        .kind = kind,
        .requested = bytes,
        .limit = limit,
        .used = sc->committed,
        .in_flight = sat_add(sat_add(sc->granted, sc->older), sc->newer),
        .self = sc->self,
        .timed_out = timed_out,
    };
}

/* Waits until each older blocker's lane changed (settled, or stepped aside) or its owner
 * died; false when the deadline passed first. */
static bool wait_older(gs_region_file *f, const scan *sc, int own_slot, uint64_t *deadline)
{
    for (unsigned round = 0;; round++) {
        bool pending = false;
        for (unsigned b = 0; b < sc->n_older && !pending; b++)
            pending = atomic_load(&f->slots[sc->older_b[b].slot].lanes[sc->older_b[b].lane].meta) == sc->older_b[b].meta;
        if (!pending)
            return true;
        if (deadline_passed(deadline, S.pending_wait_ns))
            return false;
        if (round >= BACKOFF_YIELDS)
            reclaim_blockers(f, sc->older_b, sc->n_older, own_slot);
        backoff(round);
    }
}

int gs_region_reserve(uint32_t dev, gs_region_kind kind, uint64_t bytes, gs_region_reservation *r,
                      gs_region_over_limit *over)
{
    if (r == NULL || check_dev_kind(dev, (uint32_t)kind) != GS_REGION_OK)
        return GS_REGION_EINVAL;
    int idx = ensure_attached();
    if (idx < 0)
        return idx;
    gs_region_file *f = S.map;
    uint64_t limit = atomic_load(&f->header.mem_limit[dev]);
    *r = (gs_region_reservation){.dev = dev, .kind = (uint32_t)kind, .bytes = bytes, .slot = idx, .lane = -1};
    if (limit == 0 || !kind_limited(f, (uint32_t)kind))
        return GS_REGION_OK; /* nothing to check: commit just counts */

    gs_region_slot *own = &f->slots[idx];
    uint64_t deadline = 0;
    int lane = lane_claim(own, &deadline);
    if (lane < 0)
        return lane;
    gs_region_lane *ln = &own->lanes[lane];
    atomic_store(&ln->bytes, bytes);
    uint64_t ticket = atomic_fetch_add(&f->header.ticket, 1) + 1;
    uint64_t deciding = lane_pack(ticket, dev, (uint32_t)kind, GS_REGION_LANE_DECIDING);
    atomic_store(&ln->meta, deciding); /* publish, then look: see the header comment */

    scan sc;
    bool reclaimed = false;
    unsigned rescans = 0;
    for (unsigned round = 0;; round++) {
        scan_group(f, dev, idx, lane, ticket, &sc);
        uint64_t firm = sat_add(sc.committed, sc.granted);
        uint64_t all = sat_add(sat_add(firm, sc.older), sc.newer);
        if (sat_add(all, bytes) <= limit) {
            uint64_t granted = lane_pack(ticket, dev, (uint32_t)kind, GS_REGION_LANE_GRANTED);
            atomic_store(&ln->meta, granted);
            r->lane = lane;
            r->meta = granted;
            return GS_REGION_OK;
        }
        /* A release during the scan may have been missed in one slot and its room already
         * taken in another: look again before trusting a refusal (bounded: under endless
         * churn the last scan is as good as any). */
        bool clean = !sc.epoch_changed || rescans >= EPOCH_RESCANS;
        if (!clean) {
            rescans++;
            continue;
        }
        if (sat_add(sc.committed, bytes) > limit) {
            /* Over on committed bytes alone; unless the dead were holding some of them. */
            if (!reclaimed) {
                reclaimed = true;
                if (reclaim_all(f) > 0)
                    continue;
            }
            atomic_store(&ln->meta, 0);
            fill_over(over, dev, (uint32_t)kind, bytes, limit, &sc, false);
            return GS_REGION_OVER_LIMIT;
        }
        /* Over only with reservations still in flight: their outcome decides ours. */
        if (deadline_passed(&deadline, S.pending_wait_ns)) {
            atomic_store(&ln->meta, 0);
            fill_over(over, dev, (uint32_t)kind, bytes, limit, &sc, true);
            return GS_REGION_OVER_LIMIT;
        }
        if (sc.n_older > 0 && sat_add(sat_add(firm, sc.older), bytes) > limit) {
            /* An older reservation may take the room: step aside until it settles, so it
             * never waits on us while we wait on it. */
            atomic_store(&ln->meta, lane_pack(ticket, dev, (uint32_t)kind, GS_REGION_LANE_WAITING));
            bool settled = wait_older(f, &sc, idx, &deadline);
            atomic_store(&ln->meta, deciding);
            if (!settled) {
                atomic_store(&ln->meta, 0);
                fill_over(over, dev, (uint32_t)kind, bytes, limit, &sc, true);
                return GS_REGION_OVER_LIMIT;
            }
            round = 0;
            continue;
        }
        /* Granted reservations may yet be cancelled; newer deciding ones will step aside. */
        if (round >= BACKOFF_YIELDS) {
            reclaim_blockers(f, sc.other_b, sc.n_other, idx);
            reclaim_blockers(f, sc.older_b, sc.n_older, idx);
        }
        backoff(round);
    }
}

/* Checks that r is a live reservation of this process. */
static int check_reservation(const gs_region_reservation *r)
{
    if (r == NULL || check_dev_kind(r->dev, r->kind) != GS_REGION_OK || r->lane >= (int32_t)GS_REGION_LANES)
        return GS_REGION_EINVAL;
    if (S.map == NULL)
        return GS_REGION_ENOTOPEN;
    if (r->slot < 0 || r->slot != atomic_load(&S.slot_index))
        return GS_REGION_ESTALE;
    if (r->lane >= 0 && atomic_load(&S.map->slots[r->slot].lanes[r->lane].meta) != r->meta)
        return GS_REGION_ESTALE;
    return GS_REGION_OK;
}

int gs_region_commit(const gs_region_reservation *r)
{
    int rc = check_reservation(r);
    if (rc != GS_REGION_OK)
        return rc;
    gs_region_slot *s = &S.map->slots[r->slot];
    /* Committed bytes first, lane freed after: a concurrent scan never misses these bytes. */
    if (kind_limited(S.map, r->kind))
        atomic_fetch_add(&s->dev_total[r->dev], r->bytes);
    atomic_fetch_add(&s->dev[r->dev].bytes[r->kind], r->bytes);
    if (r->lane >= 0)
        atomic_store(&s->lanes[r->lane].meta, 0);
    return GS_REGION_OK;
}

int gs_region_cancel(const gs_region_reservation *r)
{
    int rc = check_reservation(r);
    if (rc != GS_REGION_OK)
        return rc;
    if (r->lane >= 0)
        atomic_store(&S.map->slots[r->slot].lanes[r->lane].meta, 0);
    return GS_REGION_OK;
}

int gs_region_add(uint32_t dev, gs_region_kind kind, uint64_t bytes)
{
    if (check_dev_kind(dev, (uint32_t)kind) != GS_REGION_OK)
        return GS_REGION_EINVAL;
    int idx = ensure_attached();
    if (idx < 0)
        return idx;
    gs_region_slot *s = &S.map->slots[idx];
    if (kind_limited(S.map, (uint32_t)kind))
        atomic_fetch_add(&s->dev_total[dev], bytes);
    atomic_fetch_add(&s->dev[dev].bytes[kind], bytes);
    return GS_REGION_OK;
}

int gs_region_release(uint32_t dev, gs_region_kind kind, uint64_t bytes)
{
    if (check_dev_kind(dev, (uint32_t)kind) != GS_REGION_OK)
        return GS_REGION_EINVAL;
    int idx = ensure_attached();
    if (idx < 0)
        return idx;
    gs_region_file *f = S.map;
    gs_region_slot *s = &f->slots[idx];
    _Atomic uint64_t *held = &s->dev[dev].bytes[kind];
    uint64_t cur = atomic_load(held);
    do {
        if (cur < bytes)
            return GS_REGION_EUNDERFLOW;
    } while (!atomic_compare_exchange_weak(held, &cur, cur - bytes));
    if (kind_limited(f, (uint32_t)kind)) {
        atomic_fetch_sub(&s->dev_total[dev], bytes);
        atomic_fetch_add(&f->header.release_epoch, 1);
    }
    return GS_REGION_OK;
}

/* ---- queries ---------------------------------------------------------------------------- */

static void usage_add_slot(gs_region_usage *u, gs_region_slot *s, uint32_t dev)
{
    for (unsigned l = 0; l < GS_REGION_LANES; l++) {
        uint64_t m = atomic_load(&s->lanes[l].meta);
        uint32_t st = lane_state(m);
        if ((st == GS_REGION_LANE_DECIDING || st == GS_REGION_LANE_GRANTED) && lane_dev(m) == dev)
            u->in_flight = sat_add(u->in_flight, atomic_load(&s->lanes[l].bytes));
    }
    for (unsigned k = 0; k < GS_REGION_KINDS; k++)
        u->bytes[k] = sat_add(u->bytes[k], atomic_load(&s->dev[dev].bytes[k]));
    u->device_bytes = sat_add(u->device_bytes, atomic_load(&s->dev_total[dev]));
}

int gs_region_usage_self(uint32_t dev, gs_region_usage *u)
{
    if (u == NULL || dev >= GS_REGION_MAX_DEVICES)
        return GS_REGION_EINVAL;
    int idx = ensure_attached();
    if (idx < 0)
        return idx;
    *u = (gs_region_usage){.limit = atomic_load(&S.map->header.mem_limit[dev]), .processes = 1};
    usage_add_slot(u, &S.map->slots[idx], dev);
    return GS_REGION_OK;
}

int gs_region_usage_group(uint32_t dev, gs_region_usage *u)
{
    if (u == NULL || dev >= GS_REGION_MAX_DEVICES)
        return GS_REGION_EINVAL;
    gs_region_file *f = S.map;
    if (f == NULL)
        return GS_REGION_ENOTOPEN;
    *u = (gs_region_usage){.limit = atomic_load(&f->header.mem_limit[dev])};
    uint32_t hwm = atomic_load(&f->header.slots_hwm);
    for (unsigned i = 0; i < hwm && i < GS_REGION_MAX_SLOTS; i++) {
        gs_region_slot *s = &f->slots[i];
        if (owner_state(atomic_load(&s->owner)) == GS_REGION_SLOT_ACTIVE)
            u->processes++;
        usage_add_slot(u, s, dev);
    }
    return GS_REGION_OK;
}

uint64_t gs_region_limit(uint32_t dev)
{
    if (S.map == NULL || dev >= GS_REGION_MAX_DEVICES)
        return 0;
    return atomic_load(&S.map->header.mem_limit[dev]);
}

int gs_region_compute_add(uint32_t dev, uint64_t kernels, uint64_t busy_ns, uint64_t throttle_ns)
{
    if (dev >= GS_REGION_MAX_DEVICES)
        return GS_REGION_EINVAL;
    int idx = ensure_attached();
    if (idx < 0)
        return idx;
    gs_region_slot_dev *sd = &S.map->slots[idx].dev[dev];
    atomic_fetch_add(&sd->kernels_launched, kernels);
    atomic_fetch_add(&sd->busy_ns, busy_ns);
    atomic_fetch_add(&sd->throttle_ns, throttle_ns);
    return GS_REGION_OK;
}

int gs_region_compute_set_share(uint32_t dev, uint32_t share)
{
    if (dev >= GS_REGION_MAX_DEVICES || share > GS_REGION_SHARE_ONE)
        return GS_REGION_EINVAL;
    int idx = ensure_attached();
    if (idx < 0)
        return idx;
    atomic_store(&S.map->slots[idx].dev[dev].achieved_share, share);
    return GS_REGION_OK;
}

int gs_region_compute_set_policy(uint32_t dev, uint32_t target_share, int32_t priority, uint32_t policy)
{
    if (dev >= GS_REGION_MAX_DEVICES || target_share > GS_REGION_SHARE_ONE || policy > GS_REGION_POLICY_SHARE)
        return GS_REGION_EINVAL;
    int idx = ensure_attached();
    if (idx < 0)
        return idx;
    gs_region_slot_dev *sd = &S.map->slots[idx].dev[dev];
    atomic_store(&sd->target_share, target_share);
    atomic_store(&sd->priority, priority);
    atomic_store(&sd->policy, policy);
    return GS_REGION_OK;
}

int gs_region_partition_set(uint32_t dev, uint32_t sms)
{
    if (dev >= GS_REGION_MAX_DEVICES)
        return GS_REGION_EINVAL;
    int idx = ensure_attached();
    if (idx < 0)
        return idx;
    atomic_store(&S.map->slots[idx].sm_partition[dev], sms);
    return GS_REGION_OK;
}

int gs_region_reclaim(void)
{
    int idx = ensure_attached(); /* the reclaim word names us: we need our pid and start time */
    if (idx < 0)
        return idx;
    return reclaim_all(S.map);
}

int gs_region_slot_index(void)
{
    return atomic_load(&S.slot_index);
}

const char *gs_region_strerror(int rc)
{
    switch (rc) {
    case GS_REGION_OK: return "ok";
    case GS_REGION_OVER_LIMIT: return "over the memory limit";
    case GS_REGION_LIMITS_DIFFER: return "the region's limits differ from ours (using the region's)";
    case GS_REGION_EINVAL: return "invalid argument";
    case GS_REGION_ENOTOPEN: return "no region is open";
    case GS_REGION_ESYS: return "system call failed";
    case GS_REGION_EFORMAT: return "not a gpushare region of this layout version";
    case GS_REGION_EINIT: return "region file never initialised";
    case GS_REGION_EFULL: return "no free slot in the region";
    case GS_REGION_EBUSY: return "every reservation lane of this process is busy";
    case GS_REGION_EUNDERFLOW: return "release of more than this process holds";
    case GS_REGION_ESTALE: return "reservation is not live in this process";
    case GS_REGION_EOPEN: return "a region is already open";
    default: return "unknown gpushare region error";
    }
}
