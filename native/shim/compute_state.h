/*
 * compute_state.h: what the compute governor's files share (internal to them; COMPUTE.md has
 * the design): the constants, a device's state (cdev) with its streams' timelines (line), the
 * process's governor (gs_gov) and each thread's (gs_gov_thread), and the few functions one file
 * calls in another:
 *
 *   compute.c          the governor's life: which devices are governed, their setup, the exit line
 *   compute_gate.c     the launch path (gs_compute_enter, gs_compute_leave_rest): the hot checks,
 *                      credit, counting
 *   compute_precise.c  the gate's precise path: the layout, the budget, the pass, waiting
 *   compute_measure.c  measurement: marker events per stream, busy time as their union, reaping,
 *                      the counters published in the region
 *   compute_board.c    the board (native/region/gpushare_board.h): slots, demand, who is laid out;
 *                      compute_board_user.c the same with boards per user (root's grants)
 *   compute_windows.c  the layout of a period (pure)
 *   compute_clock.c    throughput shares' clock factor (pure); compute_clock_read.c reads the
 *                      SM clock (NVML) and weights busy time by it
 *
 * Inside the process, sampling and reaping take a device's mutex with trylock only (a thread
 * that finds it taken launches without sampling); the decision reads atomics.
 */
#ifndef GS_COMPUTE_STATE_H
#define GS_COMPUTE_STATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "compute_clock.h"
#include "compute_windows.h"
#include "gpushare_board.h"
#include "gs_common.h"
#include "gs_compute.h"
#include "gs_region.h"

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

/* The governor's state is shared by its files and no others: hidden, so it is addressed like a
 * file's own static (no GOT load on the launch path). */
#define GS_GOV_HIDDEN __attribute__((visibility("hidden")))

/*
 * The launch path is split hot and cold: what a governed launch runs (credit_go, and on a check
 * current, governed, find_line's cached answer, fast_go, count_launch, credit_grant) is inlined
 * into gs_compute_enter, and everything else (first use, a new context or stream, the precise
 * path) is in GS_COLD functions, which the compiler places away from it: the driver's launch
 * evicts code as well as data, and the fast path then spans few code lines.
 */
#define GS_COLD __attribute__((noinline, cold))
#define GS_HOT_INLINE static inline __attribute__((always_inline))

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

/* gs_gov.mode, cdev.state; DEV_HELD (mode only): a slice swap holds every launch (swap.c) */
enum { DEV_UNKNOWN = 0, DEV_OFF, DEV_ON, DEV_HELD };

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
    bool confined; /* runs only in its own window, even alone (gs_windows_confined; set at setup) */
    gs_board *b;
    struct gs_board_peers *peers; /* boards per user: the other users' boards (compute_board.c); NULL: none */
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
    /* throughput shares (compute_clock_read.c): busy time is charged to the budget at the clock
     * factor; clock_on, nvml written at setup, the tracker under the lock */
    bool clock_on;
    nvmlDevice_t nvml;
    nvmlReturn_t (*reasons)(nvmlDevice_t, unsigned long long *); /* clock event reasons; NULL: not known */
    gs_clock_track clock;
    _Atomic uint32_t clock_ppm;   /* the factor now (GS_CLOCK_ONE: time) */
    _Atomic uint64_t charged_ns;  /* busy time as charged to the budget (busy_ns weighted) */
} cdev;

/* The governor of this process: one per process, shared by its threads (every field is atomic
 * or written once under `init`); the files of the governor share it (hidden: not exported). */
typedef struct gs_governor {
    _Atomic int mode; /* DEV_UNKNOWN, DEV_OFF (nothing governed: the fast path), DEV_ON */
    _Atomic uint64_t tick; /* CLOCK_MONOTONIC_COARSE's resolution; 0: unusable (or not known yet) */
    /* the driver's cuCtxGetCurrent, beside mode: one cache line for both on every launch (set
     * before mode leaves DEV_UNKNOWN; racing threads write the same value) */
    _Atomic(CUresult (*)(CUcontext *)) ctx_get;
    pthread_mutex_t init;
    /* a thread-specific key whose destructor adds an exiting thread's credit launches to the
     * counts (gs_gov_credit_flush): the only per-thread hook at thread exit */
    pthread_once_t key_once;
    pthread_key_t key;
    bool key_ok;
    cdev dev[GS_REGION_MAX_DEVICES];
} gs_governor;
extern GS_GOV_HIDDEN gs_governor gs_gov;
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
    int n;                /* other processes' windows in the layout (compute_precise.c) */
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
/* The calling thread's (compute_gate.c defines it, on its own cache line). */
extern GS_GOV_HIDDEN GS_TLS gate_thread gs_gov_thread;
static_assert(GS_REGION_MAX_DEVICES <= 127, "a device fits gate_thread's int8_t");
static_assert(sizeof(gate_thread) <= 64, "a thread's launch-path state fits one cache line");

static inline uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

/* Whether line l is stream s's (read without the lock: a line may be given to another stream). */
static inline bool line_holds(const line *l, CUstream s, bool ptsz)
{
    return atomic_load_explicit(&l->s, memory_order_relaxed) == s &&
           atomic_load_explicit(&l->ptsz, memory_order_relaxed) == ptsz;
}

/* ---- across the files --------------------------------------------------------------- */

/* compute.c: the first launch of the process (whether any device can be governed: gs_gov.mode),
 * and the first launch on a device (its setup: cdev.state). */
GS_COLD int gs_gov_mode_setup(void);
GS_COLD int gs_gov_state_setup(cdev *d, int dev);

/* compute_gate.c */
/* The thread's launches on credit into the device's counts; no credit left. */
void gs_gov_credit_flush(void);
/* Not the thread's latest stream (or its line was given away): a scan of the lines. */
GS_COLD int gs_gov_find_line_scan(cdev *d, int dev, CUstream s, bool ptsz);

/* compute_precise.c: the gate's precise path (enter's launch did not pass fast_go: why). */
GS_COLD void gs_gov_enter_precise(gs_gate *g, cdev *d, int dev, int li, why_precise why, CUstream s, bool ptsz);

/* compute_board.c */
/* Opens the board of the GPU with this UUID (NULL: none known) and claims a slot for d; without
 * one (no board, or full) d->slot stays -1 and the process is laid out alone. */
void gs_board_join(cdev *d, const char *uuid, uint64_t now);
/* Says we want the GPU until `until` (at most every DEMAND_NS); re-claims a slot taken from us. */
void gs_board_demand(cdev *d, uint64_t now, uint64_t until);
/* Who is laid out now: the processes on d's board that wanted the GPU in the last IDLE_NS, and
 * d's own process whatever it wants, in slot order (d's alone when it has no slot); *mine: its
 * index, -1 when its slot was freed. Returns how many (at most GS_BOARD_SLOTS). */
int gs_board_holders(const cdev *d, uint64_t now, gs_window_holder *h, int *mine);
/* Frees d's slot (process exit). */
void gs_board_leave(cdev *d);
/* What the shared board and boards per user (compute_board_user.c) share: the boards'
 * directory, and mapping a board open on fd (its header written if new; NULL, said, when it
 * cannot be used; fd closed either way). */
const char *gs_board_dir(void);
gs_board *gs_board_map(int fd, const char *path);

/* compute_board_user.c: boards per user. Our user's board for the GPU with this UUID, mapped,
 * with *peers (the grants, ours, the other users' boards); NULL (said) when the board, the
 * grants or our grant cannot be used: the process is then laid out alone. */
gs_board *gs_board_user_open(const char *uuid, struct gs_board_peers **peers);
/* Our grant's index: the slot of our board where the task's processes write their demand. */
int gs_board_user_grant(const struct gs_board_peers *p);
/* gs_board_holders with boards per user: the grants that want the GPU now, in grant order. */
int gs_board_user_holders(const cdev *d, uint64_t now, gs_window_holder *h, int *mine);

/* compute_clock_read.c: throughput shares. Setup (at the device's setup: d's share and policy
 * known) turns them on where they apply and the SM clock can be read, else says once why not. */
void gs_clock_setup(cdev *d, int dev, const char *uuid);
/* Under d->lock, after a reap: a clock reading if one is due while the work is queued. */
void gs_clock_sample(cdev *d, int dev, uint64_t now);

/* ns of measured busy time: counted as busy, and charged to the budget at the clock factor. */
static inline void charge_busy(cdev *d, uint64_t ns)
{
    uint64_t w = ns;
    if (d->clock_on)
        w = ns / GS_CLOCK_ONE * atomic_load_explicit(&d->clock_ppm, memory_order_relaxed) +
            ns % GS_CLOCK_ONE * atomic_load_explicit(&d->clock_ppm, memory_order_relaxed) / GS_CLOCK_ONE;
    atomic_fetch_add(&d->busy_ns, ns);
    atomic_fetch_add_explicit(&d->charged_ns, w, memory_order_relaxed);
    atomic_fetch_sub(&d->balance_ns, (int64_t)w);
}

/* compute_measure.c: the marker events and what they measure. Under d->lock unless said. */
/* Takes in the markers that completed, oldest first on each stream, without blocking. */
void gs_measure_reap(cdev *d, uint64_t now);
/* Any thread: reaps now unless another thread holds the device's lock (trylock), and in the
 * same trip to the driver either publishes the counters (waiting NULL: the launch goes on) or,
 * for a thread about to wait in context `waiting`, puts a tail marker so that it sees the
 * launches after the newest marker end. Returns whether it reaped. */
bool gs_measure_try_reap(cdev *d, int dev, uint64_t now, CUcontext waiting);
/* The line a launch on s to be sampled records its markers on, or NULL: no events in this
 * context (or too few), every line busy, or its ring full. */
line *gs_measure_sample_line(cdev *d, CUcontext cur, CUstream s, bool ptsz, uint64_t now);
/* The start marker of an idle stream's next busy interval, before its launch; false: the
 * driver refused it (then every marker is forgotten, as after any refused event call). */
bool gs_measure_start_marker(cdev *d, line *l, CUstream s, bool ptsz);
/* The marker after a sampled launch that went, on line li. */
void gs_measure_end_marker(cdev *d, int li, CUstream s, bool ptsz);
/* Our event calls in relaxed capture mode (any thread): relax before them, unrelax with its answer after. */
CUstreamCaptureMode gs_measure_relax(void);
void gs_measure_unrelax(CUstreamCaptureMode m);

/* ---- counting: the launch path's, inline in the fast and the precise path ------------- */

/* The line of stream s, without the lock (the thread remembers the line of its latest
 * stream; a line taken by another stream since is looked up again); -1: none. */
GS_HOT_INLINE int find_line(cdev *d, CUstream s, bool ptsz)
{
    int dev = (int)(d - gs_gov.dev);
    int li = gs_gov_thread.s_dev == dev && gs_gov_thread.s == s && gs_gov_thread.s_ptsz == ptsz
                 ? gs_gov_thread.s_line
                 : -1;
    if (__builtin_expect(li >= 0, 1) && line_holds(&d->lines[li], s, ptsz))
        return li;
    return gs_gov_find_line_scan(d, dev, s, ptsz);
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

#endif /* GS_COMPUTE_STATE_H */
