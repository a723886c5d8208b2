/*
 * compute_precise.c: the gate's precise path (COMPUTE.md, "The gate"), taken by a launch that
 * did not pass the fast check (compute_gate.c: fast_go): it reaps and samples what is due,
 * writes the demand word, recomputes the thread's layout of the period, refills the budget at
 * a period's start, decides whether the launch may go now (else sleeps in short naps and asks
 * again), and leaves the pass that lets the next launches go the fast way.
 *
 * A process launches inside its own window or in time nobody holds (a confined one, a hard
 * limit of throughput: only inside its own), only while its budget for the period (its window's
 * length) lasts, and never queues work that would run into another process's window (confined:
 * past its own window's end). Because the windows do not overlap, the time measured between two of its
 * events is its own work, not another context's time slice.
 */
#include <errno.h>

#include "compute_state.h"

/* The windows of the thread's layout (the precise path only): its own and the others' (as many
 * as gs_gov_thread.n), and whether its own window binds it (confined: time nobody holds is not
 * free to it, gs_windows_confined). Per thread: a thread checks its launches against its own
 * copy, made every LAYOUT_NS, without a lock. */
static GS_TLS struct {
    gs_window own;
    bool confined;
    gs_window others[GS_BOARD_SLOTS];
} W;

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / UINT64_C(1000000000)), (long)(ns % UINT64_C(1000000000))};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
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

/* The thread's layout of the period on device dev (compute_windows.h) for the processes on the
 * board that want the GPU now (gs_board_holders). */
static void compute_layout(cdev *d, int dev, uint64_t now)
{
    gs_window_holder h[GS_BOARD_SLOTS];
    gs_window win[GS_BOARD_SLOTS];
    int mine, n = gs_board_holders(d, now, h, &mine);
    (void)gs_windows_lay_out(h, n, PERIOD_NS, win); /* n <= GS_BOARD_SLOTS: never refused */
    gs_gov_thread.dev = (int8_t)dev;
    gs_gov_thread.valid_until = now + LAYOUT_NS;
    W.own = (gs_window){0, 0};
    gs_gov_thread.n = 0;
    for (int i = 0; i < n; i++) {
        if (i == mine)
            W.own = win[i];
        else if (win[i].len > 0) /* disjoint windows: their order does not matter to decide() */
            W.others[gs_gov_thread.n++] = win[i];
    }
    /* our slot freed (mine -1): laid out as before, in time nobody holds, until it is claimed again */
    W.confined = d->confined && mine >= 0;
    atomic_store_explicit(&d->allowance_ns, W.own.len, memory_order_relaxed);
}

/* The period of now, in the thread's cache (a division only when a period starts). */
static void period_of(uint64_t now)
{
    if (now < gs_gov_thread.pstart || now - gs_gov_thread.pstart >= PERIOD_NS) {
        gs_gov_thread.pk = now / PERIOD_NS;
        gs_gov_thread.pstart = gs_gov_thread.pk * PERIOD_NS;
    }
}

/* Refills the budget at a period boundary; debt (an overshoot) carries over. After
 * period_of(now). */
static void refill(cdev *d)
{
    uint64_t k = gs_gov_thread.pk, seen = atomic_load_explicit(&d->period, memory_order_relaxed);
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
    uint64_t base = gs_gov_thread.pstart, phase = now - base;
    uint64_t one = atomic_load(&d->d_est_ns);
    int64_t balance = atomic_load(&d->balance_ns);
    if (balance <= 0 || (int64_t)pending >= balance)
        return base + PERIOD_NS - now; /* spent: the next period refills */
    /* Not in another process's window and, confined, in our own (compute_windows.c). */
    gs_window_gate wg = gs_windows_gate(W.own, W.confined, W.others, gs_gov_thread.n, phase, PERIOD_NS);
    if (wg.wait != 0)
        return wg.wait;
    /* Allowed here: our window or time nobody holds. Queue no further than the next window of
     * another process, nor, confined, past our window's end (or QUEUE_NS ahead). */
    uint64_t horizon = now + (wg.room < QUEUE_NS ? wg.room : QUEUE_NS);
    if (now + pending + one <= horizon)
        return 0;
    bool mine = phase >= W.own.off && phase - W.own.off < W.own.len;
    if (pending == 0 && mine && phase - W.own.off < W.own.len / 2)
        return 0; /* a kernel longer than what is left: at the start of our window, and the debt carries */
    if (pending == 0)
        return horizon > now ? horizon - now + 1 : 1000; /* it cannot fit before the next window */
    uint64_t wait = pending / 2;
    return wait < 100000 ? 100000 : wait > 2000000 ? 2000000 : wait;
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
    if (gs_gov_thread.dev != dev || gs_gov_thread.n != 0 || at < gs_gov_thread.pstart ||
        at - gs_gov_thread.pstart >= PERIOD_NS)
        return SAMPLE_NS;
    uint64_t left = gs_gov_thread.pstart + PERIOD_NS - at;
    if (W.confined) { /* the most GPU time it can take: to its window's end, outside none (it waits) */
        uint64_t phase = at - gs_gov_thread.pstart;
        if (phase < W.own.off || phase - W.own.off >= W.own.len)
            return SAMPLE_NS;
        left = W.own.off + W.own.len - phase;
    }
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
    uint64_t tick = atomic_load_explicit(&gs_gov.tick, memory_order_relaxed);
    uint64_t gap = spacing(d, dev, now, pending + one + tick);
    uint64_t a = atomic_load_explicit(&d->last_sample_ns, memory_order_relaxed) + gap;
    uint64_t b = atomic_load_explicit(&d->last_reap_ns, memory_order_relaxed) + gap;
    int64_t balance = atomic_load(&d->balance_ns);
    uint64_t room = balance > 0 ? (uint64_t)balance : 0;
    room = room < QUEUE_NS ? room : QUEUE_NS + 1;
    uint64_t until = a < b ? a : b;
    if (W.confined && gs_gov_thread.dev == dev) {
        /* Our window binds (no other window in the layout, or the fast path is not taken):
         * the queued work, over-estimated, ends before our window does, and no launch goes the
         * fast way at or past its end: fast_go's coarse clock lags by less than a tick. */
        uint64_t end = gs_gov_thread.pstart + W.own.off + W.own.len;
        uint64_t to_end = end > now ? end - now : 0;
        room = room < to_end ? room : to_end;
        uint64_t last = end > tick ? end - tick : 0;
        until = until < last ? until : last;
    }
    uint64_t done = atomic_load(&d->done), launches;
    if (room <= tick + one)
        launches = 0; /* every launch takes the precise path */
    else if (one == 0)
        launches = UINT64_MAX; /* nothing measured yet: the due times bound it */
    else
        launches = done + (room - tick - 1) / one; /* counted + 1 - done <= (room - tick - 1) / one */
    atomic_store_explicit(&d->pass_sparse, gap == SPARSE_NS, memory_order_relaxed);
    atomic_store_explicit(&d->pass_launches, launches, memory_order_relaxed);
    atomic_store_explicit(&d->pass_until, until, memory_order_relaxed);
}

/* The gate's precise path: reaps, markers, the demand word, the layout, waiting. */
void gs_gov_enter_precise(gs_gate *g, cdev *d, int dev, int li, why_precise why, CUstream s, bool ptsz)
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
            gs_measure_try_reap(d, dev, now, NULL))
            reaped = true;
        uint64_t pending = pending_ns(d, now);
        gs_board_demand(d, now, now + pending);
        if (gs_gov_thread.dev != dev || now >= gs_gov_thread.valid_until)
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
        if (gs_measure_try_reap(d, dev, now, ctx))
            reaped = true;
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
    CUstreamCaptureMode m = gs_measure_relax();
    if (!reaped)
        gs_measure_reap(d, now);
    line *l = gs_measure_sample_line(d, ctx, s, ptsz, now);
    if (l != NULL) {
        atomic_store_explicit(&d->last_sample_ns, now, memory_order_relaxed);
        g->sample = true;
        g->line = (int)(l - d->lines);
        /* an idle stream: its work starts now, not at its last marker */
        if (l->count == 0 && !gs_measure_start_marker(d, l, s, ptsz))
            g->sample = false;
    }
    gs_measure_unrelax(m);
    give_pass(d, dev, now);
    count_launch(d, g, s); /* after the start marker: it is recorded before this launch */
    if (!g->sample)
        pthread_mutex_unlock(&d->lock);
}
