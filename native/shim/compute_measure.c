/*
 * compute_measure.c: what a process's work took on the GPU (COMPUTE.md, "Measurement"). Marker
 * events recorded on the launch's stream (at most one every SAMPLE_NS, a start marker before a
 * launch onto an idle stream), reaped without blocking (cuEventQuery) at later launches. Each
 * stream has its own timeline (a line, up to LINES per device): the time between two markers of
 * a busy stream is one busy interval, and busy time is the union of the intervals of all
 * streams (streams that run at once are counted once); the launches over an interval give the
 * estimate of one launch's GPU time that predicts when queued work ends. What is measured is
 * taken from the period's budget and published in the region.
 *
 * Everything here runs under the device's lock (taken with trylock by the gate) unless its
 * comment in compute_state.h says otherwise.
 */
#include <string.h>

#include "compute_state.h"

static void pool_put(cdev *d, CUevent ev)
{
    if (d->npool < (int)(sizeof d->pool / sizeof d->pool[0]))
        d->pool[d->npool++] = ev;
    else
        (void)gs_real()->cuEventDestroy_v2(ev);
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
    charge_busy(d, ns);
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
            charge_busy(d, ns);
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

void gs_measure_reap(cdev *d, uint64_t now)
{
    const gs_real_fns *R = gs_real();
    atomic_store_explicit(&d->last_reap_ns, now, memory_order_relaxed);
    uint64_t unlined = atomic_load(&d->unlined);
    if (unlined != d->unlined_seen) {
        /* streams that found every line busy: at the estimate, outside the union */
        uint64_t ns = (unlined - d->unlined_seen) * atomic_load(&d->d_est_ns);
        d->unlined_seen = unlined;
        charge_busy(d, ns);
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
    gs_clock_sample(d, (int)(d - gs_gov.dev), now); /* throughput shares: the clock, at a low rate */
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

/* Counters and the recent achieved share into the region. */
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

/* A marker on line l, recorded on its stream s now (the pool has an event); false: the driver
 * refused it, and every marker is forgotten (drop_all). */
static bool mark(cdev *d, line *l, CUstream s, bool ptsz, bool start, bool tail)
{
    CUevent ev = d->pool[--d->npool];
    if (record(ev, s, ptsz)) {
        push(d, l, (marker){ev, atomic_load(&d->launches), atomic_load(&l->launches), start, tail});
        return true;
    }
    pool_put(d, ev);
    drop_all(d);
    return false;
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
    if (mark(d, l, l->s, l->ptsz, false, true)) /* refused: the stream is gone, what it held is done */
        atomic_store_explicit(&d->last_sample_ns, now, memory_order_relaxed);
}

bool gs_measure_try_reap(cdev *d, int dev, uint64_t now, CUcontext waiting)
{
    if (pthread_mutex_trylock(&d->lock) != 0)
        return false;
    CUstreamCaptureMode m = gs_measure_relax();
    gs_measure_reap(d, now);
    if (waiting == NULL)
        publish(d, dev, now);
    else
        cover_tail(d, now, waiting);
    gs_measure_unrelax(m);
    pthread_mutex_unlock(&d->lock);
    return true;
}

line *gs_measure_sample_line(cdev *d, CUcontext cur, CUstream s, bool ptsz, uint64_t now)
{
    line *l = events_ready(d, cur) && d->npool >= 2 ? line_for(d, s, ptsz, now) : NULL;
    return l != NULL && l->count < RING - 1 ? l : NULL;
}

bool gs_measure_start_marker(cdev *d, line *l, CUstream s, bool ptsz)
{
    return mark(d, l, s, ptsz, true, false);
}

void gs_measure_end_marker(cdev *d, int li, CUstream s, bool ptsz)
{
    line *l = &d->lines[li];
    if (d->npool == 0 || !atomic_load_explicit(&l->used, memory_order_relaxed))
        return;
    d->last_line = li;
    CUstreamCaptureMode m = gs_measure_relax();
    (void)mark(d, l, s, ptsz, false, false);
    gs_measure_unrelax(m);
}

/* Our event calls run in relaxed capture mode: in the default (global) mode, an event query
 * while any thread captures a graph would invalidate that capture. */
CUstreamCaptureMode gs_measure_relax(void)
{
    CUstreamCaptureMode m = CU_STREAM_CAPTURE_MODE_RELAXED;
    if (gs_real()->cuThreadExchangeStreamCaptureMode == NULL ||
        gs_real()->cuThreadExchangeStreamCaptureMode(&m) != CUDA_SUCCESS)
        return CU_STREAM_CAPTURE_MODE_RELAXED;
    return m;
}

void gs_measure_unrelax(CUstreamCaptureMode m)
{
    if (m != CU_STREAM_CAPTURE_MODE_RELAXED && gs_real()->cuThreadExchangeStreamCaptureMode != NULL)
        (void)gs_real()->cuThreadExchangeStreamCaptureMode(&m);
}
