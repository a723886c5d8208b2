/*
 * compute_gate.c: the launch path of the compute governor (COMPUTE.md, "The gate", "Cost per
 * launch", "Credit"): gs_compute_enter before every launch, gs_compute_leave_rest after the
 * ones that need more than gs_compute_leave's inline check (gs_compute.h).
 *
 * A launch goes on the thread's credit, else through the fast check (fast_go: the thread's
 * layout, the device's pass, the coarse clock), else the precise path (compute_precise.c) that
 * may make it wait. The hot part stays in this file, inlined into gs_compute_enter; first use,
 * a new context or stream and the precise path are GS_COLD functions, placed away from it.
 */
#include "compute_state.h"
#include "state.h"

/* The calling thread's view of the gate (compute_state.h: gate_thread): thread-local (the hooks
 * carry no handle), so that a launch reads no cache line another thread writes. */
GS_TLS _Alignas(64) gate_thread gs_gov_thread = {.dev = -1, .ctx_dev = -1, .s_dev = -1, .s_line = -1};

/* A context the thread has not launched in last: its device (and no credit: credit_go). */
static GS_COLD int ctx_switched(CUcontext ctx)
{
    gs_gov_thread.credit = 0;
    gs_gov_thread.ctx_dev = gs_current_device();
    gs_gov_thread.ctx = ctx;
    return gs_gov_thread.ctx_dev;
}

/* Whether the process governs any device, and the calling thread's context and its device. */
GS_HOT_INLINE bool current(int *devp, CUcontext *ctxp)
{
    int mode = atomic_load_explicit(&gs_gov.mode, memory_order_acquire);
    if (__builtin_expect(mode != DEV_ON, 0) && (mode == DEV_OFF || gs_gov_mode_setup() == DEV_OFF))
        return false;
    CUcontext ctx = NULL;
    if (atomic_load_explicit(&gs_gov.ctx_get, memory_order_relaxed)(&ctx) != CUDA_SUCCESS || ctx == NULL)
        return false;
    int dev = __builtin_expect(ctx == gs_gov_thread.ctx, 1) ? gs_gov_thread.ctx_dev : ctx_switched(ctx);
    *ctxp = ctx;
    *devp = dev;
    return dev >= 0 && dev < (int)GS_REGION_MAX_DEVICES;
}

/* The device's governor, NULL when the device is not governed. */
GS_HOT_INLINE cdev *governed(int dev)
{
    cdev *d = &gs_gov.dev[dev];
    int st = atomic_load_explicit(&d->state, memory_order_acquire);
    if (__builtin_expect(st == DEV_UNKNOWN, 0))
        st = gs_gov_state_setup(d, dev);
    return st == DEV_ON ? d : NULL;
}

int gs_gov_find_line_scan(cdev *d, int dev, CUstream s, bool ptsz)
{
    if (gs_gov_thread.uncounted > 0)
        gs_gov_credit_flush(); /* they were made on the thread's stream so far, which this may replace */
    for (int i = 0; i < LINES; i++)
        if (line_holds(&d->lines[i], s, ptsz) && atomic_load_explicit(&d->lines[i].used, memory_order_relaxed)) {
            gs_gov_thread.s_dev = (int8_t)dev;
            gs_gov_thread.s = s;
            gs_gov_thread.s_ptsz = ptsz;
            gs_gov_thread.s_line = (int8_t)i;
            return i;
        }
    return -1;
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
    uint64_t tick = atomic_load_explicit(&gs_gov.tick, memory_order_relaxed);
    if (tick == 0 || gs_gov_thread.n != 0)
        return WHY_SHARED;
    if (gs_gov_thread.dev != dev || atomic_load_explicit(&d->period, memory_order_relaxed) != gs_gov_thread.pk)
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
    /* now >= gs_gov_thread.pstart: this thread read the precise clock there, and the coarse one lags it by
     * up to a tick (without this, every launch in the first tick of a period went the precise way) */
    if (lo < gs_gov_thread.pstart)
        lo = gs_gov_thread.pstart;
    /* The tick may reach into the next period: with no other process's window the next period's
     * layout is the same and its budget only larger (a refill; debt gives no pass), so the
     * answer holds there too; the refill waits for the next precise trip, at most LAYOUT_NS away.
     * The layout may be a tick older than LAYOUT_NS: a process arriving is seen a tick later. */
    if (lo >= gs_gov_thread.valid_until || lo - gs_gov_thread.pstart >= PERIOD_NS)
        return WHY_LAYOUT;
    if (lo >= atomic_load_explicit(&d->pass_until, memory_order_relaxed))
        return WHY_SAMPLE;
    return GO;
}

/*
 * Credit: a thread whose launch passed fast_go's whole check and was counted may make its next
 * launches on the same stream and context without any check, when it is alone in its layout:
 * as many as the pass has launches to spare for CREDIT_THREADS threads (credit_size), up to
 * CREDIT_MAX. A credit launch touches neither the clock nor the device's cache line nor any
 * atomic: it counts itself in the thread's own line, and those counts go into the device's (one
 * atomic add each) before the thread's next check, or when it leaves (thread exit, process
 * exit). On the H200 the checked fast path cost 65-85 ns per launch, of which the coarse clock
 * was about 35 and the two atomic adds about 24 (variants with each removed,
 * scripts/gpu-launch-ab.sh); credit of c launches pays for one check per c + 1.
 * Credit was a fixed 8 (one launch in 9 checked) and needed 64 launches to spare; now it is 8
 * with 64 to spare and grows with the spare launches to 32 (one in 33 checked) with 256. The
 * work it lets a thread queue unchecked stays bounded as before: the pass allows at most 20 ms
 * of queued work, so c launches with 8 c to spare are at most 20 ms / 8 = 2.5 ms of it.
 *
 * What a credit launch skips, and why the gate still holds:
 * - the due times (layout, period, marker, reap): seen at most CREDIT_MAX launches late;
 * - the pass's launch count: credit is at most the spare launches / CREDIT_THREADS, so
 *   CREDIT_THREADS threads holding credit at once stay within the pass;
 * - an idle stream's start marker: not skipped unless markers are sparse (the stream's count of
 *   outstanding markers is read: one cache line of the device);
 * - its own count until the next check: this thread's credit launches are counted before it
 *   records a marker (its next check comes first), so only other threads' markers can miss them,
 *   and that over-estimates the queued work (the error the gate makes anyway on the safe side),
 *   as does the late first_pending_ns.
 */
#define CREDIT_MIN 8
#define CREDIT_MAX 32
#define CREDIT_THREADS 8
static_assert(CREDIT_MAX <= UINT8_MAX, "gate_thread.credit is a uint8_t");

/* The credit a check grants with `spare` launches left in the pass: 0 (too few), else
 * spare / CREDIT_THREADS up to CREDIT_MAX. */
static inline unsigned credit_size(uint64_t spare)
{
    if (spare < CREDIT_THREADS * CREDIT_MIN)
        return 0;
    return spare >= CREDIT_THREADS * CREDIT_MAX ? CREDIT_MAX : (unsigned)(spare / CREDIT_THREADS);
}

/* Whether this launch (on device dev, stream s) goes on the thread's credit. */
GS_HOT_INLINE bool credit_go(int dev, CUstream s, bool ptsz)
{
    if (gs_gov_thread.credit == 0 || gs_gov_thread.s_dev != dev || gs_gov_thread.s != s || gs_gov_thread.s_ptsz != ptsz)
        return false;
    if (!gs_gov_thread.credit_sparse &&
        atomic_load_explicit(&gs_gov.dev[dev].lines[gs_gov_thread.s_line].count, memory_order_relaxed) == 0)
        return false; /* an idle stream: the check sends it the precise way for its start marker */
    gs_gov_thread.credit--;
    gs_gov_thread.uncounted++;
    return true;
}

void gs_gov_credit_flush(void)
{
    unsigned n = gs_gov_thread.uncounted;
    gs_gov_thread.credit = 0;
    if (n == 0)
        return;
    gs_gov_thread.uncounted = 0;
    cdev *d = &gs_gov.dev[gs_gov_thread.s_dev];
    atomic_fetch_add_explicit(&d->credited, n, memory_order_relaxed);
    /* unlined if the line went to another stream meanwhile (it was idle): at the estimate */
    int li = gs_gov_thread.s_line;
    count_add(d, line_holds(&d->lines[li], gs_gov_thread.s, gs_gov_thread.s_ptsz) ? li : -1, n);
}

static void credit_thread_exit(void *unused)
{
    (void)unused;
    gs_gov_credit_flush();
}

static void credit_key_create(void)
{
    gs_gov.key_ok = pthread_key_create(&gs_gov.key, credit_thread_exit) == 0;
}

/* After a launch that went by fast_go and was counted on the thread's stream: credit. */
GS_HOT_INLINE void credit_grant(cdev *d, const gs_gate *g, CUstream s)
{
    if (!g->counted || g->counted_line < 0 || g->counted_line != gs_gov_thread.s_line || gs_gov_thread.s != s ||
        gs_gov_thread.s_ptsz != g->ptsz || gs_gov_thread.s_dev != g->dev)
        return;
    uint64_t launches = atomic_load_explicit(&d->launches, memory_order_relaxed);
    uint64_t pass = atomic_load_explicit(&d->pass_launches, memory_order_relaxed);
    unsigned credit = pass < launches ? 0 : credit_size(pass - launches);
    if (credit == 0)
        return;
    if (__builtin_expect(!gs_gov_thread.keyed, 0)) { /* the thread's first credit: flush it at thread exit */
        (void)pthread_once(&gs_gov.key_once, credit_key_create);
        if (!gs_gov.key_ok || pthread_setspecific(gs_gov.key, &gs_gov_thread) != 0)
            return;
        gs_gov_thread.keyed = true;
    }
    gs_gov_thread.credit = (uint8_t)credit;
    gs_gov_thread.credit_sparse = atomic_load_explicit(&d->pass_sparse, memory_order_relaxed);
}

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
    if (gs_gov_thread.uncounted > 0)
        gs_gov_credit_flush(); /* before this thread's check reads the counts */
    gs_gov_thread.credit = 0; /* credit is for the stream and context a check passed on, right after it */
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
    gs_gov_enter_precise(g, d, dev, li, why, s, ptsz);
}

void gs_compute_leave_rest(const gs_gate *g, CUstream s, CUresult r)
{
    cdev *d = &gs_gov.dev[g->dev];
    if (r != CUDA_SUCCESS && g->credit) { /* counted on credit: this thread's count */
        if (gs_gov_thread.uncounted > 0)
            gs_gov_thread.uncounted--;
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
    if (r == CUDA_SUCCESS) /* its end marker (the lock was taken in enter) */
        gs_measure_end_marker(d, g->line, s, g->ptsz);
    pthread_mutex_unlock(&d->lock);
}
