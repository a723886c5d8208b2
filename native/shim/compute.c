/*
 * compute.c: the compute governor (time-slice mode; design and numbers in COMPUTE.md).
 *
 * Time on a GPU is cut into host-wide periods of 1 s (CLOCK_MONOTONIC, the same clock
 * in every process). The governed processes on a GPU meet on a small board file per GPU
 * (GPUSHARE_COMPUTE_DIR, default /dev/shm: gpushare-compute-<UUID>): each has a slot with
 * its share, priority, policy and the last time it wanted the GPU. From the board every
 * process works out the same layout of the period: an exclusive window for each process
 * that wants the GPU now (share x period, hard; share processes split what is left), in
 * priority order. A process launches inside its own window or in time nobody holds, only
 * while its budget for the period (its window's length) lasts, and never queues work that
 * would run into another process's window. Because the windows do not overlap, the time
 * measured between two of its events is its own work, not another context's time slice.
 *
 * Measurement: marker events recorded on the launch's stream (at most one every 250 us,
 * a start marker before a launch onto an idle queue), reaped without blocking
 * (cuEventQuery) at later launches; the time between consecutive markers of a busy queue
 * is busy time, and its launches give the estimate of one launch's duration that predicts
 * when queued work ends.
 *
 * Nothing here holds a lock across processes: the board is atomics, a process that dies
 * stops refreshing its demand and drops out of every layout within IDLE_NS. Inside the
 * process, sampling and reaping take a per-device mutex with trylock only (a thread that
 * finds it taken launches without sampling); the decision reads atomics.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "compute_windows.h"
#include "gpushare_board.h"
#include "gs_compute.h"

#define PERIOD_NS UINT64_C(1000000000) /* one period of the layout (1 s: a power-capped GPU; COMPUTE.md) */
#define SAMPLE_NS UINT64_C(250000)     /* at most one marker per 250 us (1 ms measured worse on the H200: COMPUTE.md) */
#define SPARSE_NS UINT64_C(2000000)    /* marker and reap spacing while the budget cannot run out (spacing()) */
#define IDLE_NS UINT64_C(50000000)     /* a process that neither launched nor waited for 50 ms is idle */
#define QUEUE_NS UINT64_C(20000000)    /* at most 20 ms of work queued ahead (priority reacts within it) */
#define LAYOUT_NS UINT64_C(2000000)    /* a thread recomputes its layout every 2 ms */
#define DEMAND_NS UINT64_C(1000000)    /* the demand word is written at most every 1 ms */
#define PUBLISH_NS UINT64_C(100000000) /* region counters every 100 ms */
#define STALE_NS UINT64_C(30000000000) /* a board slot without a heartbeat for 30 s may be taken */
#define SHARE_SNAPS 10                 /* achieved share over the last ~1 s (10 x 100 ms) */
#define PPM GS_WINDOWS_PPM              /* shares are parts per million */
#define RING 32                        /* markers outstanding per stream */
#define LINES 8                        /* streams measured side by side per device */
#define POOL (RING + 2 + 2 * LINES)    /* marker events per device */
#define SPANS 32                       /* busy intervals remembered for the union */
#define REBASE_NS INT64_C(100000000)   /* a newer time base every 100 ms (float ms stay precise) */


typedef struct marker {
    CUevent ev;
    uint64_t launches; /* measured launches issued before it */
    uint64_t own;      /* of them, on its own stream (since the line took the stream) */
    bool start;        /* recorded before a launch onto an idle queue */
    bool tail;         /* put by a waiting thread: the queue may have idled before it */
} marker;

/* One stream's timeline (under the device's lock). Its markers complete in order; the time
 * between two of them while the stream was busy is one busy interval of the process. */
typedef struct line {
    /* what every launch on the stream reads or counts (first, in one cache line) */
    _Alignas(64) _Atomic bool used; /* used, s, ptsz: written under the lock, read by launches without */
    _Atomic bool ptsz;
    _Atomic unsigned count;     /* markers outstanding (the gate reads it without the lock) */
    _Atomic(CUstream) s;
    _Atomic uint64_t launches;  /* measured launches on s (the gate counts them without the lock) */
    marker ring[RING];
    unsigned head;
    uint64_t est;           /* one launch's GPU time on this stream, recent average (0: unknown) */
    bool have_ref;         /* ref_t: when its latest completed marker completed */
    int64_t ref_t;         /* ns after the device's base event */
    uint64_t ref_launches; /* measured launches (all streams) issued before that marker */
    uint64_t ref_own;      /* of them, on this stream */
    uint64_t used_ns;      /* last sampled launch on it (the least recent idle line is reused) */
} line;

enum { DEV_UNKNOWN = 0, DEV_OFF, DEV_ON };

/* Why a launch took the gate's precise path (fast_go's answer; GO: it did not). Counted, and
 * printed at exit with GPUSHARE_LOG_LEVEL=debug: where the gate's cost per launch goes. */
typedef enum {
    GO = 0,
    WHY_SHARED,  /* another process's window in the layout (or no usable coarse clock) */
    WHY_LAYOUT,  /* a new layout or period is due */
    WHY_SAMPLE,  /* a marker or a reap is due (the pass ran out) */
    WHY_IDLE,    /* the stream is idle: its start marker is due */
    WHY_BUDGET,  /* the budget or the queue may not allow it (the pass's launches are used up) */
    WHY_COUNT
} why_precise;
static const char *const why_name[WHY_COUNT] = {"", "shared", "layout", "sample", "idle", "budget"};

typedef struct cdev {
    /* What every governed launch reads or writes (the gate's fast path and the count), in one
     * cache line: a launch through the driver evicts much of the cache, and each line the gate
     * touches afterwards is a miss (on the H200 the gate cost ~80-130 ns per launch with its
     * fields spread over two to four lines). */
    _Alignas(64) _Atomic int state;
    _Atomic bool pass_sparse;       /* the pass was given with sparse markers (no start marker is due) */
    _Atomic(CUcontext) ctx;         /* the events' context (written under lock, read by leave without) */
    _Atomic uint64_t launches;      /* measured launches */
    _Atomic uint64_t done;          /* measured launches known complete */
    _Atomic uint64_t period;        /* the period balance was refilled for */
    _Atomic uint64_t pass_until;    /* the pass (fast_go): nothing is due before then (coarse clock) */
    _Atomic uint64_t pass_launches; /* ... and the budget and queue allow launches while fewer were counted */
    /* the rest: the precise path, sampling and publishing */
    _Alignas(64) _Atomic uint64_t d_est_ns; /* one launch's GPU time, recent average (0: unknown) */
    _Atomic uint64_t done_seen_ns;  /* when `done` last moved (host time we saw it) */
    _Atomic uint64_t first_pending_ns; /* when the first launch after `done` was made */
    _Atomic int64_t balance_ns;     /* what is left of this period's budget */
    _Atomic uint64_t last_sample_ns, last_reap_ns; /* written under lock, read before taking it */
    _Atomic uint64_t demand_at_ns;  /* when we last wrote our demand */
    uint32_t share_ppm;
    int32_t priority;
    uint32_t policy;
    gs_board *b;
    _Atomic int slot; /* our board slot, -1: none (alone) */
    uint64_t token;
    pthread_mutex_t lock; /* sampling, reaping, publishing; trylock only */
    CUevent pool[POOL];
    int npool;
    line lines[LINES];
    unsigned outstanding; /* markers not yet reaped, all lines */
    int last_line;        /* where the latest sampled launch went (a tail marker goes there); -1 none */
    CUevent base;         /* a completed event: marker times are ns after it (NULL: none yet) */
    int64_t span_a[SPANS + 1], span_b[SPANS + 1]; /* busy time already counted: disjoint, by start */
    int nspans;
    _Atomic uint64_t unlined;       /* measured launches on a stream without a line (every line was busy) */
    uint64_t unlined_seen;          /* those already counted at the estimate (under lock) */
    _Atomic uint64_t busy_ns;       /* measured */
    _Atomic uint64_t throttle_ns;   /* slept in the gate */
    _Atomic uint64_t precise[WHY_COUNT]; /* launches that took the gate's precise path, by why_precise */
    _Atomic uint64_t credited;      /* launches that went on a thread's credit (credit_go) */
    _Atomic uint64_t other_kernels; /* launches in another context than the events' (not measured) */
    _Atomic uint64_t allowance_ns;  /* our window's length in the latest layout */
    uint64_t pub_at, pub_busy, pub_throttle, pub_kernels;
    uint64_t snap_t[SHARE_SNAPS], snap_busy[SHARE_SNAPS];
    unsigned snap_next;
} cdev;

static struct {
    _Atomic int mode; /* DEV_UNKNOWN, DEV_OFF (nothing governed: the fast path), DEV_ON */
    _Atomic uint64_t tick; /* CLOCK_MONOTONIC_COARSE's resolution; 0: unusable (or not known yet) */
    /* the driver's cuCtxGetCurrent, beside mode: one cache line for both on every launch (set
     * before mode leaves DEV_UNKNOWN; racing threads write the same value) */
    _Atomic(CUresult (*)(CUcontext *)) ctx_get;
    pthread_mutex_t init;
    /* a thread-specific key whose destructor adds an exiting thread's credit launches to the
     * counts (credit_flush): the only per-thread hook at thread exit */
    pthread_once_t key_once;
    pthread_key_t key;
    bool key_ok;
    cdev dev[GS_REGION_MAX_DEVICES];
} C = {.init = PTHREAD_MUTEX_INITIALIZER, .key_once = PTHREAD_ONCE_INIT};
static_assert(offsetof(cdev, pass_launches) + sizeof(uint64_t) <= 64, "the launch path's fields fit one cache line");
static_assert(offsetof(line, launches) + sizeof(uint64_t) <= 64, "a line's launch-path fields fit one cache line");

/*
 * What a thread keeps between its launches, in one cache line (every governed launch reads
 * it, after the driver's previous launch has evicted much of the cache): its view of the
 * period on one device (the layout: its device, how many windows of other processes, the
 * period's start and number, until when it is valid), its last context and that context's
 * device (one driver call per launch instead of two: cuCtxGetCurrent, and cuCtxGetDevice only
 * when the context changed), and its latest stream and that stream's line.
 */
typedef struct gate_thread {
    CUcontext ctx;        /* the last context */
    CUstream s;           /* the latest stream */
    uint64_t pstart, pk;  /* the period the thread last saw: its start and number (no division per launch) */
    uint64_t valid_until; /* the layout is recomputed from then */
    int ctx_dev;          /* ctx's device */
    int n;                /* other processes' windows in the layout (W) */
    int8_t dev;           /* the layout's device; -1: none yet */
    int8_t s_dev;         /* s's device; -1: none */
    int8_t s_line;        /* s's line there */
    bool s_ptsz;
    /* credit (credit_go): launches the thread may still make on s without a check, and those it
     * made so far that are not in the device's counts yet */
    uint8_t credit;
    uint8_t uncounted;
    bool credit_sparse;   /* granted with sparse markers: no idle check either */
    bool keyed;           /* the thread-exit flush is registered (credit_key) */
} gate_thread;
static GS_TLS _Alignas(64) gate_thread T = {.dev = -1, .ctx_dev = -1, .s_dev = -1, .s_line = -1};
static_assert(GS_REGION_MAX_DEVICES <= 127, "a device fits gate_thread's int8_t");
static_assert(sizeof(gate_thread) <= 64, "a thread's launch-path state fits one cache line");
/* The thread's launches on credit into the device's counts (the credit section, below). */
static void credit_flush(void);
/* The windows of the thread's layout (the precise path only): its own and the others'. */
static GS_TLS struct {
    uint64_t my_off, my_len;
    uint64_t off[GS_BOARD_SLOTS], len[GS_BOARD_SLOTS];
} W;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / UINT64_C(1000000000)), (long)(ns % UINT64_C(1000000000))};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ---- the board ---------------------------------------------------------------------- */

static gs_board *board_open(const char *uuid)
{
    const char *dir = getenv("GPUSHARE_COMPUTE_DIR");
    char path[4200];
    (void)snprintf(path, sizeof path, "%s/" GS_BOARD_FILE_PREFIX "%s", dir && dir[0] ? dir : "/dev/shm", uuid);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
        gs_log(GS_LOG_WARN, "cannot open %s (%s): compute is limited for this process alone, not shared with others "
                            "on the GPU", path, strerror(errno));
        return NULL;
    }
    (void)fchmod(fd, 0666); /* processes of other users share the GPU too */
    struct stat sb;
    gs_board *b = NULL;
    if (fstat(fd, &sb) == 0 && ((size_t)sb.st_size >= sizeof *b || ftruncate(fd, sizeof *b) == 0)) {
        void *p = mmap(NULL, sizeof *b, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        b = p == MAP_FAILED ? NULL : p;
    }
    (void)close(fd);
    if (b == NULL) {
        gs_log(GS_LOG_WARN, "cannot map %s: compute is limited for this process alone", path);
        return NULL;
    }
    /* Racing creators write the same values; the magic goes last. */
    if (atomic_load(&b->magic) == 0) {
        atomic_store(&b->version, GS_BOARD_VERSION);
        b->slots = GS_BOARD_SLOTS;
        uint64_t zero = 0;
        (void)atomic_compare_exchange_strong(&b->magic, &zero, GS_BOARD_MAGIC);
    }
    if (atomic_load(&b->magic) != GS_BOARD_MAGIC || atomic_load(&b->version) != GS_BOARD_VERSION) {
        gs_log(GS_LOG_WARN, "%s is not a gpushare compute board of version %u: compute is limited for this process "
                            "alone", path, GS_BOARD_VERSION);
        (void)munmap(b, sizeof *b);
        return NULL;
    }
    return b;
}

static bool slot_takeable(const gs_board_slot *s, uint64_t owner, uint64_t now)
{
    if (owner == 0)
        return true;
    pid_t pid = (pid_t)(owner >> GS_BOARD_OWNER_PID_SHIFT);
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return true;
    uint64_t hb = atomic_load(&s->heartbeat_ns);
    return now > hb && now - hb > STALE_NS;
}

static void board_fill(cdev *d, gs_board_slot *s, uint64_t now)
{
    atomic_store(&s->share_ppm, d->share_ppm);
    atomic_store(&s->priority, d->priority);
    atomic_store(&s->policy, d->policy);
    atomic_store(&s->heartbeat_ns, now);
    atomic_store(&s->demand_ns, now);
}

/* Claims a slot for d (or keeps -1: then the process is laid out alone). */
static void board_claim(cdev *d, uint64_t now)
{
    if (d->b == NULL)
        return;
    for (int i = 0; i < (int)GS_BOARD_SLOTS; i++) {
        gs_board_slot *s = &d->b->slot[i];
        uint64_t o = atomic_load(&s->owner);
        if (slot_takeable(s, o, now) && atomic_compare_exchange_strong(&s->owner, &o, d->token)) {
            board_fill(d, s, now);
            atomic_store(&d->slot, i);
            return;
        }
    }
    atomic_store(&d->slot, -1);
    gs_log(GS_LOG_WARN, "the compute board is full (%u processes): this process is limited alone", GS_BOARD_SLOTS);
}

/* Says we want the GPU until `until`; re-claims a slot that was taken from us. */
static void board_demand(cdev *d, uint64_t now, uint64_t until)
{
    uint64_t last = atomic_load_explicit(&d->demand_at_ns, memory_order_relaxed);
    if (now - last < DEMAND_NS || !atomic_compare_exchange_strong(&d->demand_at_ns, &last, now))
        return;
    int i = atomic_load(&d->slot);
    if (d->b == NULL)
        return;
    if (i < 0 || atomic_load_explicit(&d->b->slot[i].owner, memory_order_relaxed) != d->token) {
        board_claim(d, now);
        i = atomic_load(&d->slot);
        if (i < 0)
            return;
    }
    atomic_store_explicit(&d->b->slot[i].demand_ns, until, memory_order_relaxed);
    atomic_store_explicit(&d->b->slot[i].heartbeat_ns, now, memory_order_relaxed);
}

__attribute__((destructor)) static void board_leave(void)
{
    credit_flush(); /* the exiting thread's credit launches (other threads' went at their exit) */
    for (unsigned dev = 0; dev < GS_REGION_MAX_DEVICES; dev++) {
        cdev *d = &C.dev[dev];
        if (atomic_load(&d->state) == DEV_ON && GS_LOG_DEBUG <= gs_cfg.log_level) { /* what the gate did */
            uint64_t n = 0;
            char why[160] = "";
            size_t at = 0;
            for (int k = WHY_SHARED; k < WHY_COUNT; k++) {
                uint64_t c = atomic_load(&d->precise[k]);
                n += c;
                if (c > 0 && at < sizeof why)
                    at += (size_t)snprintf(why + at, sizeof why - at, "%s%s %llu", at ? ", " : ": ", why_name[k],
                                           (unsigned long long)c);
            }
            uint64_t measured = atomic_load(&d->launches), other = atomic_load(&d->other_kernels);
            gs_log(GS_LOG_DEBUG, "compute: device %u: %llu launches (%llu at the estimate: before the first marker or in another "
                                 "context; %llu on credit, %llu on the precise path%s; coarse clock tick %llu us), "
                                 "busy %.1f ms, held back %.1f ms",
                   dev, (unsigned long long)(measured + other), (unsigned long long)other,
                   (unsigned long long)atomic_load(&d->credited), (unsigned long long)n, why,
                   (unsigned long long)atomic_load(&C.tick) / 1000, (double)atomic_load(&d->busy_ns) / 1e6,
                   (double)atomic_load(&d->throttle_ns) / 1e6);
        }
        int i = atomic_load(&d->slot);
        if (atomic_load(&d->state) == DEV_ON && d->b != NULL && i >= 0) {
            uint64_t mine = d->token;
            (void)atomic_compare_exchange_strong(&d->b->slot[i].owner, &mine, 0);
        }
    }
}

/* ---- the layout of a period ------------------------------------------------------- */

static_assert(GS_BOARD_SLOTS <= GS_WINDOWS_MAX, "a board's holders fit one layout");

/*
 * The thread's layout of the period on device dev (compute_windows.h): the processes on the
 * board that wanted the GPU in the last IDLE_NS, and this one whatever it wants (or this one
 * alone, without a board slot).
 */
static void compute_layout(cdev *d, int dev, uint64_t now)
{
    gs_window_holder h[GS_BOARD_SLOTS];
    gs_window win[GS_BOARD_SLOTS];
    const gs_window_holder self = {.share_ppm = d->share_ppm, .priority = d->priority,
                                   .shares = d->policy == GS_REGION_POLICY_SHARE};
    int n = 0, mine = -1, me = atomic_load(&d->slot);
    if (d->b == NULL || me < 0) {
        mine = n;
        h[n++] = self;
    } else {
        for (int i = 0; i < (int)GS_BOARD_SLOTS; i++) {
            gs_board_slot *s = &d->b->slot[i];
            if (atomic_load_explicit(&s->owner, memory_order_relaxed) == 0)
                continue;
            if (i == me) {
                mine = n;
                h[n++] = self;
                continue;
            }
            uint64_t demand = atomic_load_explicit(&s->demand_ns, memory_order_relaxed);
            uint32_t share = atomic_load_explicit(&s->share_ppm, memory_order_relaxed);
            if (share == 0 || demand + IDLE_NS < now)
                continue;
            uint32_t policy = atomic_load_explicit(&s->policy, memory_order_relaxed);
            h[n++] = (gs_window_holder){.share_ppm = share,
                                        .priority = atomic_load_explicit(&s->priority, memory_order_relaxed),
                                        .shares = policy == GS_REGION_POLICY_SHARE};
        }
    }
    (void)gs_windows_lay_out(h, n, PERIOD_NS, win); /* n <= GS_BOARD_SLOTS: never refused */
    T.dev = (int8_t)dev;
    T.valid_until = now + LAYOUT_NS;
    W.my_off = W.my_len = 0;
    T.n = 0;
    for (int i = 0; i < n; i++) {
        if (i == mine) {
            W.my_off = win[i].off;
            W.my_len = win[i].len;
        } else if (win[i].len > 0) { /* disjoint windows: their order does not matter to decide() */
            W.off[T.n] = win[i].off;
            W.len[T.n] = win[i].len;
            T.n++;
        }
    }
    atomic_store_explicit(&d->allowance_ns, W.my_len, memory_order_relaxed);
}

/* ---- measurement ------------------------------------------------------------------ */

static void pool_put(cdev *d, CUevent ev)
{
    if (d->npool < (int)(sizeof d->pool / sizeof d->pool[0]))
        d->pool[d->npool++] = ev;
    else
        (void)gs_real()->cuEventDestroy_v2(ev);
}

/* Whether line l is stream s's (read without the lock: a line may be given to another stream). */
static inline bool line_holds(const line *l, CUstream s, bool ptsz)
{
    return atomic_load_explicit(&l->s, memory_order_relaxed) == s &&
           atomic_load_explicit(&l->ptsz, memory_order_relaxed) == ptsz;
}

static void line_reset(line *l, bool used, CUstream s, bool ptsz, uint64_t now)
{
    atomic_store_explicit(&l->used, used, memory_order_relaxed);
    atomic_store_explicit(&l->s, s, memory_order_relaxed);
    atomic_store_explicit(&l->ptsz, ptsz, memory_order_relaxed);
    atomic_store_explicit(&l->launches, 0, memory_order_relaxed);
    l->head = 0;
    atomic_store(&l->count, 0);
    l->est = 0;
    l->have_ref = false;
    l->ref_t = 0;
    l->ref_launches = l->ref_own = 0;
    l->used_ns = now;
}

/* Forgets every marker (their context is gone, or the driver refused them): what they
 * covered counts as done, and the next sample makes events in the current context. */
static void drop_all(cdev *d)
{
    atomic_store_explicit(&d->pass_until, 0, memory_order_relaxed); /* the next launch takes the precise path */
    atomic_store_explicit(&d->ctx, NULL, memory_order_relaxed);
    d->npool = 0;
    for (int i = 0; i < LINES; i++)
        line_reset(&d->lines[i], false, NULL, false, 0);
    d->outstanding = 0;
    d->last_line = -1;
    d->base = NULL;
    d->nspans = 0;
    atomic_store(&d->done, atomic_load(&d->launches));
    atomic_store(&d->done_seen_ns, now_ns());
}

/*
 * GPU time still queued: the launches after the last completed marker at the estimate,
 * less what the GPU has worked through since it was free to start on them (the later of
 * when we saw the marker complete and when the first of them was made). Without the
 * second part a thread waiting for the queue to shrink would see no progress until the
 * next marker completes, and the queue would run dry first.
 */
static uint64_t pending_ns(cdev *d, uint64_t now)
{
    uint64_t launches = atomic_load(&d->launches), done = atomic_load(&d->done);
    if (launches <= done) /* < : a failed launch was counted by a marker, then taken back */
        return 0;
    uint64_t n = launches - done;
    uint64_t queued = n * atomic_load(&d->d_est_ns);
    uint64_t from = atomic_load(&d->done_seen_ns), first = atomic_load(&d->first_pending_ns);
    if (first > from)
        from = first;
    uint64_t worked = now > from ? now - from : 0;
    /* at least one launch's worth stays pending until a marker says otherwise */
    uint64_t floor = atomic_load(&d->d_est_ns) / 4;
    return queued > worked + floor ? queued - worked : floor;
}

static CUresult elapsed_ms(float *ms, CUevent a, CUevent b)
{
    const gs_real_fns *R = gs_real();
    if (R->cuEventElapsedTime_v2 != NULL)
        return R->cuEventElapsedTime_v2(ms, a, b);
    return R->cuEventElapsedTime != NULL ? R->cuEventElapsedTime(ms, a, b) : CUDA_ERROR_NOT_SUPPORTED;
}

/*
 * Busy time is the union of the busy intervals of the process's streams (what the GPU was
 * busy with for this process): concurrent streams are not counted twice. Adds [a, b) to
 * the spans already counted and returns the part of it that was not. Spans older than the
 * SPANS most recent are forgotten (an interval reaching back that far would count again).
 */
static uint64_t add_span(cdev *d, int64_t a, int64_t b)
{
    if (b <= a)
        return 0;
    int n = d->nspans, lo = n;
    /* spans are disjoint and sorted, so their ends are too: the ones touching [a, b] are
     * found from the newest back (intervals mostly arrive in time order: a step or two) */
    while (lo > 0 && d->span_b[lo - 1] >= a)
        lo--;
    int hi = lo;
    int64_t covered = 0, na = a, nb = b;
    for (; hi < n && d->span_a[hi] <= b; hi++) {
        int64_t x = a > d->span_a[hi] ? a : d->span_a[hi], y = b < d->span_b[hi] ? b : d->span_b[hi];
        if (y > x)
            covered += y - x;
        na = d->span_a[hi] < na ? d->span_a[hi] : na;
        nb = d->span_b[hi] > nb ? d->span_b[hi] : nb;
    }
    /* spans [lo, hi) become one: [na, nb] */
    int shift = 1 - (hi - lo);
    if (shift != 0 && hi < n) {
        memmove(&d->span_a[hi + shift], &d->span_a[hi], (size_t)(n - hi) * sizeof d->span_a[0]);
        memmove(&d->span_b[hi + shift], &d->span_b[hi], (size_t)(n - hi) * sizeof d->span_b[0]);
    }
    d->span_a[lo] = na;
    d->span_b[lo] = nb;
    n += shift;
    if (n == SPANS) { /* full: forget the older half */
        memmove(&d->span_a[0], &d->span_a[SPANS / 2], (SPANS / 2) * sizeof d->span_a[0]);
        memmove(&d->span_b[0], &d->span_b[SPANS / 2], (SPANS / 2) * sizeof d->span_b[0]);
        n = SPANS / 2;
    }
    d->nspans = n;
    return (uint64_t)((b - a) - covered);
}

static void count_busy(cdev *d, int64_t a, int64_t b)
{
    uint64_t ns = add_span(d, a, b);
    if (ns == 0)
        return;
    atomic_fetch_add(&d->busy_ns, ns);
    atomic_fetch_sub(&d->balance_ns, (int64_t)ns);
}

/* When ev completed, in ns after the base event (the first completed marker becomes the
 * base). Under d->lock. */
static bool stamp(cdev *d, CUevent ev, int64_t *t)
{
    float ms = 0;
    if (d->base == NULL) {
        d->base = ev;
        *t = 0;
        return true;
    }
    if (elapsed_ms(&ms, d->base, ev) != CUDA_SUCCESS)
        return false;
    *t = (int64_t)((double)ms * 1e6);
    return true;
}

/* cuEventElapsedTime is a float of ms: ev (completed t ns after the base) becomes the new
 * base, so times stay small and precise to a few ns. Under d->lock. */
static void rebase(cdev *d, CUevent ev, int64_t t)
{
    for (int i = 0; i < LINES; i++)
        d->lines[i].ref_t -= t;
    for (int i = 0; i < d->nspans; i++) {
        d->span_a[i] -= t;
        d->span_b[i] -= t;
    }
    pool_put(d, d->base);
    d->base = ev;
}

/* One completed marker m of line l. Under d->lock. */
static void take(cdev *d, line *l, const marker *m, uint64_t now)
{
    int64_t t = 0;
    bool have_t = stamp(d, m->ev, &t);
    uint64_t one = atomic_load(&d->d_est_ns);
    if (m->start) {
        /* launches on this stream after its last marker ran unmeasured (no marker followed
         * them before it went idle): at the estimate, inside the time they must have run in
         * (after that marker, before this start); the union drops what other streams'
         * intervals already hold */
        uint64_t from = l->have_ref ? l->ref_own : 0;
        uint64_t gap = m->own > from ? m->own - from : 0;
        uint64_t ns = gap * (l->est != 0 ? l->est : one);
        if (ns > 0 && have_t) {
            if (l->have_ref && t > l->ref_t && ns > (uint64_t)(t - l->ref_t))
                ns = (uint64_t)(t - l->ref_t);
            int64_t a = l->have_ref && t > l->ref_t ? l->ref_t : t - (int64_t)ns;
            count_busy(d, a, a + (int64_t)ns);
        } else if (ns > 0) {
            atomic_fetch_add(&d->busy_ns, ns);
            atomic_fetch_sub(&d->balance_ns, (int64_t)ns);
        }
    } else if (l->have_ref && have_t && t > l->ref_t) {
        uint64_t ns = (uint64_t)(t - l->ref_t);
        uint64_t launches = m->launches - l->ref_launches, own = m->own - l->ref_own;
        uint64_t est = own * (l->est != 0 ? l->est : one);
        if (m->tail && est > 0 && est < ns)
            ns = est; /* the time to a tail marker may include an idle stream */
        count_busy(d, l->ref_t, l->ref_t + (int64_t)ns);
        if (own > 0 && !m->tail)
            l->est = l->est == 0 ? ns / own : (3 * l->est + ns / own) / 4;
        if (launches > 0 && !m->tail) {
            /* launches of every stream over this stream's interval: one launch's share of
             * the process's GPU time, what predicts when the queued work ends */
            uint64_t per = ns / launches, old = atomic_load(&d->d_est_ns);
            atomic_store(&d->d_est_ns, old == 0 ? per : (3 * old + per) / 4);
        }
    }
    l->have_ref = have_t;
    l->ref_t = t;
    l->ref_launches = m->launches;
    l->ref_own = m->own;
    uint64_t done = atomic_load(&d->done);
    if (m->launches > done)
        atomic_store(&d->done, m->launches);
    atomic_store(&d->done_seen_ns, now);
    if (have_t && t >= REBASE_NS && m->ev != d->base)
        rebase(d, m->ev, t);
    else if (m->ev != d->base)
        pool_put(d, m->ev);
}

/* Takes in the markers that completed, oldest first on each stream, without blocking.
 * Under d->lock. */
static void reap(cdev *d, uint64_t now)
{
    const gs_real_fns *R = gs_real();
    atomic_store_explicit(&d->last_reap_ns, now, memory_order_relaxed);
    uint64_t unlined = atomic_load(&d->unlined);
    if (unlined != d->unlined_seen) {
        /* streams that found every line busy: at the estimate, outside the union */
        uint64_t ns = (unlined - d->unlined_seen) * atomic_load(&d->d_est_ns);
        d->unlined_seen = unlined;
        atomic_fetch_add(&d->busy_ns, ns);
        atomic_fetch_sub(&d->balance_ns, (int64_t)ns);
    }
    for (int i = 0; i < LINES && d->outstanding > 0; i++) {
        line *l = &d->lines[i];
        while (l->count > 0) {
            marker m = l->ring[l->head];
            CUresult q = R->cuEventQuery(m.ev);
            if (q == CUDA_ERROR_NOT_READY)
                break;
            if (q != CUDA_SUCCESS) {
                drop_all(d);
                return;
            }
            l->head = (l->head + 1) % RING;
            l->count--;
            d->outstanding--;
            take(d, l, &m, now);
        }
    }
}

/* The line of stream s: its own, else a free one, else the least recently used idle one.
 * NULL: every line has markers outstanding (this launch is not sampled). Under d->lock. */
static line *line_for(cdev *d, CUstream s, bool ptsz, uint64_t now)
{
    line *pick = NULL;
    for (int i = 0; i < LINES; i++) {
        line *l = &d->lines[i];
        bool used = atomic_load_explicit(&l->used, memory_order_relaxed);
        if (used && line_holds(l, s, ptsz)) {
            l->used_ns = now;
            return l;
        }
        if (l->count == 0 && (pick == NULL || (atomic_load_explicit(&pick->used, memory_order_relaxed) &&
                                                (!used || l->used_ns < pick->used_ns))))
            pick = l;
    }
    if (pick != NULL) {
        line_reset(pick, true, s, ptsz, now);
        if (d->last_line == (int)(pick - d->lines))
            d->last_line = -1;
    }
    return pick;
}

static void push(cdev *d, line *l, marker m)
{
    l->ring[(l->head + l->count) % RING] = m;
    l->count++;
    d->outstanding++;
}

/* Counters and the recent achieved share into the region. Under d->lock. */
static void publish(cdev *d, int dev, uint64_t now)
{
    if (now - d->pub_at < PUBLISH_NS)
        return;
    d->pub_at = now;
    uint64_t busy = atomic_load(&d->busy_ns), thr = atomic_load(&d->throttle_ns), k = atomic_load(&d->launches) + atomic_load(&d->other_kernels);
    (void)gs_region_compute_add((uint32_t)dev, k - d->pub_kernels, busy - d->pub_busy, thr - d->pub_throttle);
    d->pub_kernels = k;
    d->pub_busy = busy;
    d->pub_throttle = thr;
    unsigned oldest = d->snap_next % SHARE_SNAPS;
    uint64_t t0 = d->snap_t[oldest], b0 = d->snap_busy[oldest];
    d->snap_t[oldest] = now;
    d->snap_busy[oldest] = busy;
    d->snap_next++;
    if (t0 != 0 && now > t0) {
        double share = (double)(busy - b0) / (double)(now - t0);
        share = share < 0 ? 0 : share > 1 ? 1 : share;
        (void)gs_region_compute_set_share((uint32_t)dev, (uint32_t)(share * GS_REGION_SHARE_ONE));
    }
}

static bool record(CUevent ev, CUstream s, bool ptsz)
{
    const gs_real_fns *R = gs_real();
    if (ptsz && R->cuEventRecord_ptsz != NULL)
        return R->cuEventRecord_ptsz(ev, s) == CUDA_SUCCESS;
    return R->cuEventRecord(ev, s) == CUDA_SUCCESS;
}

/* Events for markers in the current context. Under d->lock. */
static bool events_ready(cdev *d, CUcontext cur)
{
    const gs_real_fns *R = gs_real();
    if (cur == NULL)
        return false;
    CUcontext have = atomic_load_explicit(&d->ctx, memory_order_relaxed);
    if (have == cur)
        return d->npool > 0;
    if (have != NULL)
        return false; /* another context's launches are not measured (counted by estimate) */
    d->npool = 0;
    for (int i = 0; i < POOL; i++) {
        CUevent ev;
        if (R->cuEventCreate(&ev, CU_EVENT_DEFAULT) != CUDA_SUCCESS)
            break;
        d->pool[d->npool++] = ev;
    }
    atomic_store_explicit(&d->ctx, d->npool > 0 ? cur : NULL, memory_order_relaxed);
    return d->npool > 0;
}

/* Launches after the newest marker are known done only once a later marker completes. A
 * thread waiting on them puts a marker at the tail of the latest launch's stream, so the
 * wait ends (no marker would ever come otherwise: markers follow launches). Under d->lock. */
static void cover_tail(cdev *d, uint64_t now, CUcontext cur)
{
    if (d->outstanding != 0 || d->last_line < 0 || atomic_load(&d->launches) == atomic_load(&d->done) ||
        !events_ready(d, cur))
        return;
    line *l = &d->lines[d->last_line];
    CUevent ev = d->pool[--d->npool];
    if (record(ev, l->s, l->ptsz)) {
        push(d, l, (marker){ev, atomic_load(&d->launches), atomic_load(&l->launches), false, true});
        atomic_store_explicit(&d->last_sample_ns, now, memory_order_relaxed);
    } else {
        pool_put(d, ev);
        drop_all(d); /* the stream is gone: what it held is done */
    }
}

/* ---- per-device setup ----------------------------------------------------------- */

static void dev_setup(cdev *d, int dev)
{
    const gs_real_fns *R = gs_real();
    char uuid[GS_CONFIG_UUID_LEN] = "";
    CUdevice h = (CUdevice)dev;
    CUuuid u;
    if (R->cuDeviceGet != NULL)
        (void)R->cuDeviceGet(&h, dev);
    if (R->cuDeviceGetUuid_v2 != NULL && R->cuDeviceGetUuid_v2(&u, h) == CUDA_SUCCESS)
        gs_uuid_string(&u, uuid, sizeof uuid);
    int pct = gs_config_compute_limit(&gs_cfg, dev, uuid[0] ? uuid : NULL);
    if (pct == 0 && !gs_cfg.priority_set) {
        atomic_store(&d->state, DEV_OFF);
        return;
    }
    /* A priority without a limit: the whole GPU, work-conserving, ranked by priority. */
    d->share_ppm = pct > 0 ? (uint32_t)pct * (PPM / 100) : PPM;
    d->policy = pct > 0 && gs_cfg.compute_policy == GS_COMPUTE_HARD ? GS_REGION_POLICY_HARD : GS_REGION_POLICY_SHARE;
    d->priority = (int32_t)gs_cfg.priority;
    (void)pthread_mutex_init(&d->lock, NULL);
    d->last_line = -1;
    struct timespec res;
    /* a coarse clock of at most 4 ms per tick is fine for the fast path (fast_go) */
    atomic_store(&C.tick, clock_getres(CLOCK_MONOTONIC_COARSE, &res) == 0 && res.tv_sec == 0 &&
                              res.tv_nsec > 0 && res.tv_nsec <= 4000000
                          ? (uint64_t)res.tv_nsec
                          : 0);
    uint64_t now = now_ns();
    atomic_store(&d->slot, -1);
    d->token = ((uint64_t)(uint32_t)getpid() << GS_BOARD_OWNER_PID_SHIFT) | (((uint64_t)now ^ (uint64_t)(uintptr_t)d) & 0xffffffffu) | 1u;
    if (uuid[0])
        d->b = board_open(uuid);
    board_claim(d, now);
    atomic_store(&d->period, now / PERIOD_NS);
    atomic_store(&d->balance_ns, (int64_t)(PERIOD_NS / PPM * d->share_ppm));
    if (gs_ready())
        (void)gs_region_compute_set_policy((uint32_t)dev, (uint32_t)((uint64_t)d->share_ppm * GS_REGION_SHARE_ONE / PPM),
                                           d->priority, d->policy);
    gs_log(GS_LOG_INFO, "device %d: compute %u%% (%s, priority %s)", dev, d->share_ppm / (PPM / 100),
           d->policy == GS_REGION_POLICY_HARD ? "hard" : "share",
           d->priority == GS_PRIORITY_HIGH ? "high" : d->priority == GS_PRIORITY_LOW ? "low" : "normal");
    atomic_store(&d->state, DEV_ON);
}

static bool any_governed_possible(void)
{
    if (gs_cfg.isolation == GS_ISOLATION_SM_PARTITION)
        return false; /* the compute limit is a set of SMs there, not time */
    if (gs_cfg.compute_all_percent > 0 || gs_cfg.priority_set)
        return true;
    for (int i = 0; i < gs_cfg.device_count; i++)
        if (gs_cfg.devices[i].compute_percent > 0)
            return true;
    return false;
}

/*
 * The launch path is split hot and cold: what a governed launch runs (credit_go, and on a check
 * current, governed, find_line's cached answer, fast_go, count_launch, credit_grant) is inlined
 * into gs_compute_enter, and everything else (first use, a new context or stream, the precise
 * path) is in GS_COLD functions, which the compiler places away from it: the driver's launch
 * evicts code as well as data, and the fast path then spans few code lines.
 */
#define GS_COLD __attribute__((noinline, cold))
#define GS_HOT_INLINE static inline __attribute__((always_inline))

/* The first launch of the process: whether any device can be governed. */
static GS_COLD int mode_setup(void)
{
    int mode = any_governed_possible() ? DEV_ON : DEV_OFF;
    atomic_store_explicit(&C.ctx_get, gs_real()->cuCtxGetCurrent, memory_order_relaxed); /* published by the release below */
    atomic_store_explicit(&C.mode, mode, memory_order_release);
    return mode;
}

/* A context the thread has not launched in last: its device (and no credit: credit_go). */
static GS_COLD int ctx_switched(CUcontext ctx)
{
    T.credit = 0;
    T.ctx_dev = gs_current_device();
    T.ctx = ctx;
    return T.ctx_dev;
}

/* The first launch on a device. */
static GS_COLD int state_setup(cdev *d, int dev)
{
    pthread_mutex_lock(&C.init);
    if (atomic_load(&d->state) == DEV_UNKNOWN)
        dev_setup(d, dev);
    pthread_mutex_unlock(&C.init);
    return atomic_load(&d->state);
}

/* Whether the process governs any device, and the calling thread's context and its device. */
GS_HOT_INLINE bool current(int *devp, CUcontext *ctxp)
{
    int mode = atomic_load_explicit(&C.mode, memory_order_acquire);
    if (__builtin_expect(mode != DEV_ON, 0) && (mode == DEV_OFF || mode_setup() == DEV_OFF))
        return false;
    CUcontext ctx = NULL;
    if (atomic_load_explicit(&C.ctx_get, memory_order_relaxed)(&ctx) != CUDA_SUCCESS || ctx == NULL)
        return false;
    int dev = __builtin_expect(ctx == T.ctx, 1) ? T.ctx_dev : ctx_switched(ctx);
    *ctxp = ctx;
    *devp = dev;
    return dev >= 0 && dev < (int)GS_REGION_MAX_DEVICES;
}

/* The device's governor, NULL when the device is not governed. */
GS_HOT_INLINE cdev *governed(int dev)
{
    cdev *d = &C.dev[dev];
    int st = atomic_load_explicit(&d->state, memory_order_acquire);
    if (__builtin_expect(st == DEV_UNKNOWN, 0))
        st = state_setup(d, dev);
    return st == DEV_ON ? d : NULL;
}

/* ---- stream capture ----------------------------------------------------------------- */

/* Whether a launch on s is recorded into a graph rather than run (or the stream cannot be
 * asked): such a launch is not governed (the graph's launch will be), and no event may be
 * recorded on its stream (it would become part of the graph). */
static bool capturing(CUstream s, bool ptsz)
{
    const gs_real_fns *R = gs_real();
    CUresult (*is)(CUstream, CUstreamCaptureStatus *) =
        ptsz && R->cuStreamIsCapturing_ptsz != NULL ? R->cuStreamIsCapturing_ptsz : R->cuStreamIsCapturing;
    CUstreamCaptureStatus st = CU_STREAM_CAPTURE_STATUS_NONE;
    if (is == NULL)
        return false;
    return is(s, &st) != CUDA_SUCCESS || st != CU_STREAM_CAPTURE_STATUS_NONE;
}

/* Our event calls in relaxed capture mode: in the default (global) mode, an event query
 * while any thread captures a graph would invalidate that capture. */
static CUstreamCaptureMode relax(void)
{
    CUstreamCaptureMode m = CU_STREAM_CAPTURE_MODE_RELAXED;
    if (gs_real()->cuThreadExchangeStreamCaptureMode == NULL ||
        gs_real()->cuThreadExchangeStreamCaptureMode(&m) != CUDA_SUCCESS)
        return CU_STREAM_CAPTURE_MODE_RELAXED;
    return m;
}

static void unrelax(CUstreamCaptureMode m)
{
    if (m != CU_STREAM_CAPTURE_MODE_RELAXED && gs_real()->cuThreadExchangeStreamCaptureMode != NULL)
        (void)gs_real()->cuThreadExchangeStreamCaptureMode(&m);
}

/* ---- the gate ----------------------------------------------------------------------- */

/* The period of now, in the thread's cache (a division only when a period starts). */
static void period_of(uint64_t now)
{
    if (now < T.pstart || now - T.pstart >= PERIOD_NS) {
        T.pk = now / PERIOD_NS;
        T.pstart = T.pk * PERIOD_NS;
    }
}

/* Refills the budget at a period boundary; debt (an overshoot) carries over. After
 * period_of(now). */
static void refill(cdev *d)
{
    uint64_t k = T.pk, seen = atomic_load_explicit(&d->period, memory_order_relaxed);
    if (k == seen || !atomic_compare_exchange_strong(&d->period, &seen, k))
        return;
    int64_t allowance = (int64_t)atomic_load_explicit(&d->allowance_ns, memory_order_relaxed);
    int64_t b = atomic_load(&d->balance_ns), nb;
    do {
        int64_t debt = b < 0 ? b + allowance * (int64_t)(k - seen - 1) : 0;
        nb = (debt < 0 ? debt : 0) + allowance;
    } while (!atomic_compare_exchange_weak(&d->balance_ns, &b, nb));
}

/* When, from now, the launch may go; 0 = now. */
static uint64_t decide(cdev *d, uint64_t now, uint64_t pending)
{
    uint64_t base = T.pstart, phase = now - base;
    uint64_t one = atomic_load(&d->d_est_ns);
    int64_t balance = atomic_load(&d->balance_ns);
    if (balance <= 0 || (int64_t)pending >= balance)
        return base + PERIOD_NS - now; /* spent: the next period refills */
    for (int i = 0; i < T.n; i++)
        if (phase >= W.off[i] && phase < W.off[i] + W.len[i])
            return base + W.off[i] + W.len[i] - now; /* another process's window */
    /* Allowed here: our window or time nobody holds. Queue no further than the next
     * window of another process (or QUEUE_NS ahead). */
    uint64_t horizon = now + QUEUE_NS;
    for (int i = 0; i < T.n; i++) {
        uint64_t start = base + W.off[i] + (W.off[i] <= phase ? PERIOD_NS : 0);
        if (start < horizon)
            horizon = start;
    }
    if (now + pending + one <= horizon)
        return 0;
    bool mine = phase >= W.my_off && phase < W.my_off + W.my_len;
    if (pending == 0 && mine && phase - W.my_off < W.my_len / 2)
        return 0; /* a kernel longer than what is left: at the start of our window, and the debt carries */
    if (pending == 0)
        return horizon > now ? horizon - now + 1 : 1000; /* it cannot fit before the next window */
    uint64_t wait = pending / 2;
    return wait < 100000 ? 100000 : wait > 2000000 ? 2000000 : wait;
}

/* Not the thread's latest stream (or its line was given away): a scan of the lines. */
static GS_COLD int find_line_scan(cdev *d, int dev, CUstream s, bool ptsz)
{
    if (T.uncounted > 0)
        credit_flush(); /* they were made on the thread's stream so far, which this may replace */
    for (int i = 0; i < LINES; i++)
        if (line_holds(&d->lines[i], s, ptsz) && atomic_load_explicit(&d->lines[i].used, memory_order_relaxed)) {
            T.s_dev = (int8_t)dev;
            T.s = s;
            T.s_ptsz = ptsz;
            T.s_line = (int8_t)i;
            return i;
        }
    return -1;
}

/* The line of stream s, without the lock (the thread remembers the line of its latest
 * stream; a line taken by another stream since is looked up again); -1: none. */
GS_HOT_INLINE int find_line(cdev *d, CUstream s, bool ptsz)
{
    int dev = (int)(d - C.dev);
    int li = T.s_dev == dev && T.s == s && T.s_ptsz == ptsz ? T.s_line : -1;
    if (__builtin_expect(li >= 0, 1) && line_holds(&d->lines[li], s, ptsz))
        return li;
    return find_line_scan(d, dev, s, ptsz);
}

/* n measured launches into the device's count and line li's (-1: a stream without a line). */
GS_HOT_INLINE void count_add(cdev *d, int li, uint64_t n)
{
    if (atomic_fetch_add(&d->launches, n) == atomic_load(&d->done))
        atomic_store(&d->first_pending_ns, now_ns());
    if (li < 0)
        atomic_fetch_add_explicit(&d->unlined, n, memory_order_relaxed);
    else
        atomic_fetch_add_explicit(&d->lines[li].launches, n, memory_order_relaxed);
}

/*
 * Counts a measured launch, before the driver's launch: the device's count and its stream's
 * line (a stream without one in `unlined`). Counting here rather than after the launch touches
 * the gate's cache lines while the gate has just read them: after the driver's launch they are
 * mostly evicted (on the H200 the count after the launch cost about as much as the whole gate
 * before it). A launch that fails is taken back in leave. A marker recorded by another thread
 * between the count and the launch counts this launch one marker early, as a marker recorded
 * between a launch and its count did the other way before.
 */
GS_HOT_INLINE void count_launch(cdev *d, gs_gate *g, CUstream s)
{
    if (!g->sample && g->ctx != atomic_load_explicit(&d->ctx, memory_order_relaxed))
        return; /* another context than the events': counted at the estimate in leave */
    int li = g->line;
    /* li: what enter found (the line may have been given to another stream since) */
    if (li < 0 || !line_holds(&d->lines[li], s, g->ptsz))
        li = find_line(d, s, g->ptsz);
    count_add(d, li, 1);
    g->counted = true;
    g->counted_line = li;
}

/*
 * How far apart markers (and reaps) are: SAMPLE_NS, or SPARSE_NS while what the gate decides
 * cannot depend on them: no other process's window in the thread's layout, and a budget that
 * lasts to the end of the period even if the GPU ran nothing but our work from `at` on (with
 * SPARSE_NS to spare for work done but not counted yet), and a short queue: the queue's estimate
 * grows between markers (faster when one launch's estimate includes its submission, as on a
 * stream that idles between launches), and markers every 250 us keep it honest before it
 * could hold a launch back at QUEUE_NS. A launch loop under its limit then
 * pays for one sample every 2 ms instead of every 250 us (a marker event costs about 1 us of
 * the launching thread on an H200: COMPUTE.md). Only the published counters and the estimate
 * of queued work see the sparser markers; a thread that has to wait still reaps and puts a
 * tail marker as before.
 */
static uint64_t spacing(cdev *d, int dev, uint64_t at, uint64_t pending)
{
    if (T.dev != dev || T.n != 0 || at < T.pstart || at - T.pstart >= PERIOD_NS)
        return SAMPLE_NS;
    uint64_t left = T.pstart + PERIOD_NS - at;
    int64_t balance = atomic_load_explicit(&d->balance_ns, memory_order_relaxed);
    return pending <= QUEUE_NS / 4 && balance > 0 && (uint64_t)balance >= left + pending + SPARSE_NS ? SPARSE_NS
                                                                                                     : SAMPLE_NS;
}

/*
 * The pass: what fast_go checks instead of redoing the precise path's work. After each precise
 * trip (it reaped, sampled, wrote the demand word, refilled the budget), the thread that made
 * it writes until when nothing is due (the next reap and marker, SAMPLE_NS or SPARSE_NS after
 * the last: spacing()) and how many launches the budget and the queue allow from there: with
 * `done` launches known complete and one launch's estimate `one`, launches may be counted while
 * (counted + 1 - done) x one, plus a tick, stays under the budget left and under QUEUE_NS: the
 * queued work is over-estimated (what the GPU worked through since is not subtracted), never
 * under. Each thread's precise trip replaces the pass; between trips the budget only moves at
 * reaps (precise trips) and for a launch in another context (leave: the pass is withdrawn). The
 * demand word needs no due time of its own: while the process launches, precise trips come every
 * few ms (the spacing or LAYOUT_NS, plus a coarse tick), far within IDLE_NS.
 */
static void give_pass(cdev *d, int dev, uint64_t now)
{
    uint64_t pending = pending_ns(d, now), one = atomic_load(&d->d_est_ns);
    uint64_t tick = atomic_load_explicit(&C.tick, memory_order_relaxed);
    uint64_t gap = spacing(d, dev, now, pending + one + tick);
    uint64_t a = atomic_load_explicit(&d->last_sample_ns, memory_order_relaxed) + gap;
    uint64_t b = atomic_load_explicit(&d->last_reap_ns, memory_order_relaxed) + gap;
    int64_t balance = atomic_load(&d->balance_ns);
    uint64_t room = balance > 0 ? (uint64_t)balance : 0;
    room = room < QUEUE_NS ? room : QUEUE_NS + 1;
    uint64_t done = atomic_load(&d->done), launches;
    if (room <= tick + one)
        launches = 0; /* every launch takes the precise path */
    else if (one == 0)
        launches = UINT64_MAX; /* nothing measured yet: the due times bound it */
    else
        launches = done + (room - tick - 1) / one; /* counted + 1 - done <= (room - tick - 1) / one */
    atomic_store_explicit(&d->pass_sparse, gap == SPARSE_NS, memory_order_relaxed);
    atomic_store_explicit(&d->pass_launches, launches, memory_order_relaxed);
    atomic_store_explicit(&d->pass_until, a < b ? a : b, memory_order_relaxed);
}

/*
 * The gate without reading the precise clock (a counter read, and a system call where the
 * TSC is not usable): CLOCK_MONOTONIC_COARSE gives lo <= now < lo + tick. The launch goes when
 * the thread's layout has no other process's window and is current for lo, the pass holds
 * (nothing due at lo, fewer launches counted than it allows), and the stream is not idle while
 * markers are every SAMPLE_NS (its start marker is due). Whatever is due is done by the launch
 * that finds it so, on the precise path: so those happen about once per tick in a launch loop,
 * not every 250 us. Processes with others' windows in their layout always take the precise path.
 */
GS_HOT_INLINE why_precise fast_go(cdev *d, int dev, int li)
{
    uint64_t tick = atomic_load_explicit(&C.tick, memory_order_relaxed);
    if (tick == 0 || T.n != 0)
        return WHY_SHARED;
    if (T.dev != dev || atomic_load_explicit(&d->period, memory_order_relaxed) != T.pk)
        return WHY_LAYOUT;
    if (atomic_load_explicit(&d->launches, memory_order_relaxed) >= atomic_load_explicit(&d->pass_launches, memory_order_relaxed))
        return WHY_BUDGET;
    if (!atomic_load_explicit(&d->pass_sparse, memory_order_relaxed) && li >= 0 &&
        atomic_load_explicit(&d->lines[li].count, memory_order_relaxed) == 0)
        return WHY_IDLE; /* an idle stream: its start marker is due */
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC_COARSE, &ts) != 0)
        return WHY_LAYOUT;
    uint64_t lo = (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
    /* now >= T.pstart: this thread read the precise clock there, and the coarse one lags it by
     * up to a tick (without this, every launch in the first tick of a period went the precise way) */
    if (lo < T.pstart)
        lo = T.pstart;
    /* The tick may reach into the next period: with no other process's window the next period's
     * layout is the same and its budget only larger (a refill; debt gives no pass), so the
     * answer holds there too; the refill waits for the next precise trip, at most LAYOUT_NS away.
     * The layout may be a tick older than LAYOUT_NS: a process arriving is seen a tick later. */
    if (lo >= T.valid_until || lo - T.pstart >= PERIOD_NS)
        return WHY_LAYOUT;
    if (lo >= atomic_load_explicit(&d->pass_until, memory_order_relaxed))
        return WHY_SAMPLE;
    return GO;
}

/* ---- credit ----------------------------------------------------------------------------- */

/*
 * Credit: a thread whose launch passed fast_go's whole check and was counted may make its next
 * CREDIT launches on the same stream and context without any check, when it is alone in its
 * layout and the pass allows CREDIT_HEADROOM more launches. A credit launch touches neither the
 * clock nor the device's cache line nor any atomic: it counts itself in the thread's own line,
 * and those counts go into the device's (one atomic add each) before the thread's next check,
 * or when it leaves (thread exit, process exit). On the H200 the checked fast path cost 65-85 ns
 * per launch, of which the coarse clock was about 35 and the two atomic adds about 24 (variants
 * with each removed, scripts/gpu-launch-ab.sh); credit pays for one check per CREDIT + 1 launches.
 *
 * What a credit launch skips, and why the gate still holds:
 * - the due times (layout, period, marker, reap): seen at most CREDIT launches late;
 * - the pass's launch count: credit is granted only with CREDIT_HEADROOM launches to spare, so
 *   CREDIT_HEADROOM / CREDIT threads holding credit at once stay within the pass;
 * - an idle stream's start marker: not skipped unless markers are sparse (the stream's count of
 *   outstanding markers is read: one cache line of the device);
 * - its own count until the next check: this thread's credit launches are counted before it
 *   records a marker (its next check comes first), so only other threads' markers can miss them,
 *   and that over-estimates the queued work (the error the gate makes anyway on the safe side),
 *   as does the late first_pending_ns.
 */
#define CREDIT 8
#define CREDIT_HEADROOM (8 * CREDIT)

/* Whether this launch (on device dev, stream s) goes on the thread's credit. */
GS_HOT_INLINE bool credit_go(int dev, CUstream s, bool ptsz)
{
    if (T.credit == 0 || T.s_dev != dev || T.s != s || T.s_ptsz != ptsz)
        return false;
    if (!T.credit_sparse &&
        atomic_load_explicit(&C.dev[dev].lines[T.s_line].count, memory_order_relaxed) == 0)
        return false; /* an idle stream: the check sends it the precise way for its start marker */
    T.credit--;
    T.uncounted++;
    return true;
}

/* The thread's credit launches into the counts of their device and line; no credit left. */
static void credit_flush(void)
{
    unsigned n = T.uncounted;
    T.credit = 0;
    if (n == 0)
        return;
    T.uncounted = 0;
    cdev *d = &C.dev[T.s_dev];
    atomic_fetch_add_explicit(&d->credited, n, memory_order_relaxed);
    /* unlined if the line went to another stream meanwhile (it was idle): at the estimate */
    count_add(d, line_holds(&d->lines[T.s_line], T.s, T.s_ptsz) ? T.s_line : -1, n);
}

static void credit_thread_exit(void *unused)
{
    (void)unused;
    credit_flush();
}

static void credit_key_create(void)
{
    C.key_ok = pthread_key_create(&C.key, credit_thread_exit) == 0;
}

/* After a launch that went by fast_go and was counted on the thread's stream: credit. */
GS_HOT_INLINE void credit_grant(cdev *d, const gs_gate *g, CUstream s)
{
    if (!g->counted || g->counted_line < 0 || g->counted_line != T.s_line || T.s != s || T.s_ptsz != g->ptsz ||
        T.s_dev != g->dev)
        return;
    uint64_t launches = atomic_load_explicit(&d->launches, memory_order_relaxed);
    uint64_t pass = atomic_load_explicit(&d->pass_launches, memory_order_relaxed);
    if (pass < launches || pass - launches < CREDIT_HEADROOM)
        return;
    if (__builtin_expect(!T.keyed, 0)) { /* the thread's first credit: flush it at thread exit */
        (void)pthread_once(&C.key_once, credit_key_create);
        if (!C.key_ok || pthread_setspecific(C.key, &T) != 0)
            return;
        T.keyed = true;
    }
    T.credit = CREDIT;
    T.credit_sparse = atomic_load_explicit(&d->pass_sparse, memory_order_relaxed);
}

static GS_COLD void enter_precise(gs_gate *g, cdev *d, int dev, int li, why_precise why, CUstream s, bool ptsz);

void gs_compute_enter(gs_gate *g, CUstream s, bool ptsz)
{
    g->dev = -1;
    g->sample = false;
    g->counted = false;
    g->credit = false;
    g->line = -1;
    g->ptsz = ptsz;
    int dev;
    CUcontext ctx = NULL;
    if (!current(&dev, &ctx))
        return;
    if (credit_go(dev, s, ptsz)) {
        g->dev = dev;
        g->ctx = ctx;
        g->counted = true;
        g->credit = true;
        return;
    }
    if (T.uncounted > 0)
        credit_flush(); /* before this thread's check reads the counts */
    T.credit = 0; /* credit is for the stream and context a check passed on, right after it */
    cdev *d = governed(dev);
    if (d == NULL)
        return;
    g->dev = dev;
    g->ctx = ctx;
    int li = find_line(d, s, ptsz);
    g->line = li;
    why_precise why = fast_go(d, dev, li);
    if (__builtin_expect(why == GO, 1)) {
        count_launch(d, g, s);
        credit_grant(d, g, s);
        return;
    }
    enter_precise(g, d, dev, li, why, s, ptsz);
}

/* The gate's precise path: reaps, markers, the demand word, the layout, waiting. */
static GS_COLD void enter_precise(gs_gate *g, cdev *d, int dev, int li, why_precise why, CUstream s, bool ptsz)
{
    CUcontext ctx = g->ctx;
    atomic_fetch_add_explicit(&d->precise[why], 1, memory_order_relaxed);
    /* Whether s is capturing is asked only before waiting or sampling (a driver call): a
     * launch that goes at once needs no answer, and a captured launch counted as queued
     * work is covered by the next marker like any other. */
    uint64_t slept = 0, now = now_ns(), gap = spacing(d, dev, now, pending_ns(d, now));
    /* A launch onto a stream with no marker outstanding is sampled even within SAMPLE_NS:
     * its start marker begins the stream's next busy interval, so the launches after it
     * that go unsampled are queued behind a marker and run right after it (their time is
     * placed there when the stream's next start marker completes). Reaps and samples have
     * the same spacing, so a launch loop makes one trip to the driver for both. */
    bool idle = gap == SAMPLE_NS && li >= 0 && atomic_load_explicit(&d->lines[li].count, memory_order_relaxed) == 0;
    bool sample = idle || now >= atomic_load_explicit(&d->last_sample_ns, memory_order_relaxed) + gap;
    bool reaped = false;
    for (;;) {
        if (now - atomic_load_explicit(&d->last_reap_ns, memory_order_relaxed) >= gap &&
            pthread_mutex_trylock(&d->lock) == 0) {
            CUstreamCaptureMode m = relax();
            reap(d, now);
            publish(d, dev, now);
            unrelax(m);
            pthread_mutex_unlock(&d->lock);
            reaped = true;
        }
        uint64_t pending = pending_ns(d, now);
        board_demand(d, now, now + pending);
        if (T.dev != dev || now >= T.valid_until)
            compute_layout(d, dev, now);
        period_of(now);
        refill(d);
        uint64_t wait = decide(d, now, pending);
        if (wait == 0)
            break;
        if (slept == 0 && capturing(s, ptsz)) {
            g->dev = -1; /* recorded into a graph, not run: the graph's launch is governed */
            return;
        }
        /* short naps: the layout can change under us (a process leaves, a priority arrives) */
        if (wait > 2000000)
            wait = 2000000;
        if (pthread_mutex_trylock(&d->lock) == 0) {
            CUstreamCaptureMode m = relax();
            reap(d, now);
            cover_tail(d, now, ctx);
            unrelax(m);
            pthread_mutex_unlock(&d->lock);
            reaped = true;
        }
        sleep_ns(wait);
        slept += now_ns() - now + 1;
        now = now_ns();
        sample = true; /* after a wait: the queue has drained, a marker starts its next interval */
        reaped = false;
    }
    if (slept > 0)
        atomic_fetch_add(&d->throttle_ns, slept);
    /* A marker for this launch? Keep the lock until leave records its end. */
    if (!sample || pthread_mutex_trylock(&d->lock) != 0) {
        give_pass(d, dev, now);
        count_launch(d, g, s);
        return;
    }
    if (capturing(s, ptsz)) {
        pthread_mutex_unlock(&d->lock);
        g->dev = -1;
        return;
    }
    CUstreamCaptureMode m = relax();
    if (!reaped)
        reap(d, now);
    line *l = events_ready(d, ctx) && d->npool >= 2 ? line_for(d, s, ptsz, now) : NULL;
    if (l != NULL && l->count < RING - 1) {
        atomic_store_explicit(&d->last_sample_ns, now, memory_order_relaxed);
        g->sample = true;
        g->line = (int)(l - d->lines);
        if (l->count == 0) { /* an idle stream: its work starts now, not at its last marker */
            CUevent ev = d->pool[--d->npool];
            if (record(ev, s, ptsz)) {
                push(d, l, (marker){ev, atomic_load(&d->launches), atomic_load(&l->launches), true, false});
            } else {
                pool_put(d, ev);
                drop_all(d);
                g->sample = false;
            }
        }
    }
    unrelax(m);
    give_pass(d, dev, now);
    count_launch(d, g, s); /* after the start marker: it is recorded before this launch */
    if (!g->sample)
        pthread_mutex_unlock(&d->lock);
}

void gs_compute_leave_rest(const gs_gate *g, CUstream s, CUresult r)
{
    cdev *d = &C.dev[g->dev];
    if (r != CUDA_SUCCESS && g->credit) { /* counted on credit: this thread's count */
        if (T.uncounted > 0)
            T.uncounted--;
    } else if (r != CUDA_SUCCESS && g->counted) { /* counted in enter: nothing was launched */
        atomic_fetch_sub(&d->launches, 1);
        if (g->counted_line < 0)
            atomic_fetch_sub_explicit(&d->unlined, 1, memory_order_relaxed);
        else
            atomic_fetch_sub_explicit(&d->lines[g->counted_line].launches, 1, memory_order_relaxed);
    } else if (r == CUDA_SUCCESS && !g->counted) {
        /* launches in another context than the events' are not measured: count their
         * estimated time against the budget instead */
        atomic_fetch_add_explicit(&d->other_kernels, 1, memory_order_relaxed);
        atomic_fetch_sub(&d->balance_ns, (int64_t)atomic_load(&d->d_est_ns));
        atomic_store_explicit(&d->pass_launches, 0, memory_order_relaxed); /* the budget moved: no pass */
    }
    if (!g->sample)
        return;
    line *l = &d->lines[g->line];
    if (r == CUDA_SUCCESS && d->npool > 0 && atomic_load_explicit(&l->used, memory_order_relaxed)) {
        d->last_line = g->line;
        CUevent ev = d->pool[--d->npool];
        CUstreamCaptureMode m = relax();
        bool ok = record(ev, s, g->ptsz);
        unrelax(m);
        if (ok) {
            push(d, l, (marker){ev, atomic_load(&d->launches), atomic_load(&l->launches), false, false});
        } else {
            pool_put(d, ev);
            drop_all(d);
        }
    }
    pthread_mutex_unlock(&d->lock);
}
