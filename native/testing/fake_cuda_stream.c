/*
 * fake_cuda_stream.c: streams as worker threads with op queues, and events.
 *
 * Each stream has a thread that runs its ops in order, so launches return at once and
 * work completes later, as on a GPU. Time is kept on a per-stream timeline: an op starts
 * at max(when it was queued, when the previous op ended), a kernel ends `duration` later,
 * and the worker sleeps until that absolute time. Event timestamps are timeline values,
 * so a 2 ms fake kernel measures 2 ms between events however late the worker wakes.
 *
 * Simplification: the legacy default stream and the per-thread default stream are one
 * stream per context, and it does not synchronize with other streams.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "fake_cuda_state.h"
#include "gs_cuda_procs_extra.h"

static void sleep_until(uint64_t t_ns)
{
    struct timespec ts = {(time_t)(t_ns / 1000000000ULL), (long)(t_ns % 1000000000ULL)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
    return a > b ? a : b;
}

/* Runs one op; called with the lock held, may drop it while "executing". */
static void run_op(fake_stream_t *s, fake_op_t *op)
{
    fake_cuda_state_t *st = fake_state();
    switch (op->kind) {
    case FAKE_OP_KERNEL: {
        uint64_t start = max_u64(op->enqueued_ns, s->timeline_ns);
        if (st->config.shared_gpu) {
            /* claim the device when the op could start, not before: others run meanwhile */
            fake_unlock();
            sleep_until(start);
            fake_lock();
            /* from `start`, not from when this thread woke: a late wake-up is the host's
             * delay, not time the GPU idled (nobody else claimed it meanwhile, or
             * free_at_ns would say so) */
            start = fake_shared_gpu_claim(s->ctx->device, start, op->duration_ns);
        }
        uint64_t end = start + op->duration_ns;
        s->timeline_ns = end;
        fake_unlock();
        sleep_until(end);
        fake_lock();
        fake_busy_record(s->ctx->device, start, end, op->kernels);
        break;
    }
    case FAKE_OP_EVENT_RECORD:
        s->timeline_ns = max_u64(op->enqueued_ns, s->timeline_ns);
        if (fake_list_has(&st->events, op->event) && op->event_seq > op->event->completed) {
            op->event->completed = op->event_seq;
            op->event->time_ns = s->timeline_ns;
        }
        break;
    case FAKE_OP_WAIT_EVENT:
        while (fake_list_has(&st->events, op->event) && op->event->completed < op->event_seq)
            (void)pthread_cond_wait(&st->changed, &st->lock);
        if (fake_list_has(&st->events, op->event))
            s->timeline_ns = max_u64(s->timeline_ns, op->event->time_ns);
        break;
    case FAKE_OP_FREE:
        if (fake_list_has(&st->allocs, op->alloc))
            fake_alloc_release(op->alloc);
        break;
    }
}

static void *worker(void *arg)
{
    fake_stream_t *s = arg;
    fake_cuda_state_t *st = fake_state();
    fake_lock();
    for (;;) {
        while (!s->head && !s->closing)
            (void)pthread_cond_wait(&s->work, &st->lock);
        if (!s->head)
            break; /* closing and drained */
        fake_op_t *op = s->head;
        s->head = op->next;
        if (!s->head)
            s->tail = NULL;
        run_op(s, op);
        free(op);
        s->pending--;
        (void)pthread_cond_broadcast(&st->changed);
    }
    fake_list_remove(&st->dying_streams, s);
    (void)pthread_cond_destroy(&s->work);
    free(s);
    (void)pthread_cond_broadcast(&st->changed);
    fake_unlock();
    return NULL;
}

fake_stream_t *fake_stream_new(struct CUctx_st *ctx, unsigned int flags, int priority, bool is_default)
{
    fake_stream_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->ctx = ctx;
    s->flags = flags;
    s->priority = priority;
    s->is_default = is_default;
    if (pthread_cond_init(&s->work, NULL) != 0) {
        free(s);
        return NULL;
    }
    pthread_attr_t attr;
    bool ok = pthread_attr_init(&attr) == 0;
    /* Detached: a destroyed stream's worker drains its queue and frees itself. */
    ok = ok && pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0;
    ok = ok && pthread_attr_setstacksize(&attr, 256 * 1024) == 0;
    ok = ok && pthread_create(&s->worker, &attr, worker, s) == 0;
    (void)pthread_attr_destroy(&attr);
    if (!ok) {
        (void)pthread_cond_destroy(&s->work);
        free(s);
        return NULL;
    }
    fake_list_add(&fake_state()->streams, s);
    return s;
}

/* Hands a stream to its worker for draining and exit; the handle is invalid at once. */
static void close_stream(fake_stream_t *s)
{
    fake_cuda_state_t *st = fake_state();
    fake_list_remove(&st->streams, s);
    fake_list_add(&st->dying_streams, s);
    if (s->ctx->default_stream == s)
        s->ctx->default_stream = NULL;
    s->closing = true;
    (void)pthread_cond_signal(&s->work);
}

void fake_streams_close_ctx(struct CUctx_st *ctx)
{
    fake_cuda_state_t *st = fake_state();
    FAKE_FOREACH(fake_stream_t, s, &st->streams)
    if (s->ctx == ctx)
        close_stream(s);
    for (;;) {
        bool left = false;
        FAKE_FOREACH(fake_stream_t, s, &st->dying_streams)
        left = left || s->ctx == ctx;
        if (!left)
            break;
        (void)pthread_cond_wait(&st->changed, &st->lock);
    }
}

fake_op_t *fake_op_new(fake_op_kind_t kind)
{
    fake_op_t *op = calloc(1, sizeof *op);
    if (op) {
        op->kind = kind;
        op->enqueued_ns = fake_now_ns();
    }
    return op;
}

void fake_stream_push(fake_stream_t *s, fake_op_t *op)
{
    fake_cuda_state_t *st = fake_state();
    if (st->config.inline_launch && !st->config.shared_gpu && !s->head &&
        ((op->kind == FAKE_OP_KERNEL && op->duration_ns == 0) || op->kind == FAKE_OP_EVENT_RECORD)) {
        /* "inlineLaunch": nothing queued ahead and nothing to wait for: done in the call,
         * without waking the worker (a launch then costs the fake's bookkeeping only, so a
         * launch-path bench sees the caller's own cost) */
        if (op->kind == FAKE_OP_KERNEL) {
            s->timeline_ns = max_u64(op->enqueued_ns, s->timeline_ns);
            fake_busy_record(s->ctx->device, s->timeline_ns, s->timeline_ns, op->kernels);
        } else {
            run_op(s, op);
            (void)pthread_cond_broadcast(&st->changed);
        }
        free(op);
        return;
    }
    op->next = NULL;
    if (s->tail)
        s->tail->next = op;
    else
        s->head = op;
    s->tail = op;
    s->pending++;
    (void)pthread_cond_signal(&s->work);
}

void fake_stream_wait_idle(fake_stream_t *s)
{
    fake_cuda_state_t *st = fake_state();
    while (fake_list_has(&st->streams, s) && s->pending > 0)
        (void)pthread_cond_wait(&st->changed, &st->lock);
}

CUresult fake_stream_resolve(CUstream h, fake_stream_t **out)
{
    fake_cuda_state_t *st = fake_state();
    if (h == NULL || h == CU_STREAM_LEGACY || h == CU_STREAM_PER_THREAD) {
        struct CUctx_st *ctx;
        CUresult r = fake_need_ctx(&ctx);
        if (r != CUDA_SUCCESS)
            return r;
        if (!ctx->default_stream)
            ctx->default_stream = fake_stream_new(ctx, CU_STREAM_DEFAULT, 0, true);
        if (!ctx->default_stream)
            return CUDA_ERROR_OUT_OF_MEMORY;
        *out = ctx->default_stream;
        return CUDA_SUCCESS;
    }
    if (!fake_list_has(&st->streams, h))
        return CUDA_ERROR_INVALID_HANDLE;
    if (!fake_ctx_valid(h->ctx))
        return CUDA_ERROR_CONTEXT_IS_DESTROYED;
    *out = h;
    return CUDA_SUCCESS;
}

/* ---- stream entry points ------------------------------------------------------------ */
static CUresult create(const char *fn, CUstream *ph, unsigned int flags, int priority)
{
    struct CUctx_st *ctx = NULL;
    CUresult r = fake_enter(fn);
    if (r == CUDA_SUCCESS && (!ph || flags > CU_STREAM_NON_BLOCKING))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS)
        r = fake_need_ctx(&ctx);
    if (r == CUDA_SUCCESS) {
        fake_stream_t *s = fake_stream_new(ctx, flags, priority, false);
        if (s)
            *ph = s;
        else
            r = CUDA_ERROR_OUT_OF_MEMORY;
    }
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuStreamCreate(CUstream *phStream, unsigned int Flags)
{
    return create("cuStreamCreate", phStream, Flags, 0);
}

FAKE_EXPORT CUresult cuStreamCreateWithPriority(CUstream *phStream, unsigned int flags, int priority)
{
    /* Like the real driver, priorities outside [-5, 0] are clamped, not refused. */
    return create("cuStreamCreateWithPriority", phStream, flags, priority < -5 ? -5 : priority > 0 ? 0 : priority);
}

FAKE_EXPORT CUresult cuGreenCtxStreamCreate(CUstream *phStream, CUgreenCtx greenCtx, unsigned int flags, int priority)
{
    CUresult r = fake_enter("cuGreenCtxStreamCreate");
    /* The real driver requires CU_STREAM_NON_BLOCKING here. */
    if (r == CUDA_SUCCESS && (!phStream || flags != CU_STREAM_NON_BLOCKING))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && !fake_list_has(&fake_state()->greens, greenCtx))
        r = CUDA_ERROR_INVALID_HANDLE;
    if (r == CUDA_SUCCESS) {
        fake_stream_t *s = fake_stream_new(&greenCtx->ctx, flags, priority, false);
        if (s)
            *phStream = s;
        else
            r = CUDA_ERROR_OUT_OF_MEMORY;
    }
    return fake_leave(r);
}

static CUresult destroy(const char *fn, CUstream h)
{
    CUresult r = fake_enter(fn);
    if (r == CUDA_SUCCESS && !fake_list_has(&fake_state()->streams, h))
        r = CUDA_ERROR_INVALID_HANDLE; /* NULL and the special handles included */
    if (r == CUDA_SUCCESS)
        close_stream(h); /* returns at once; queued work still completes, as documented */
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuStreamDestroy(CUstream hStream)
{
    return destroy("cuStreamDestroy", hStream);
}

FAKE_EXPORT CUresult cuStreamDestroy_v2(CUstream hStream)
{
    return destroy("cuStreamDestroy_v2", hStream);
}

static CUresult stream_sync(const char *fn, CUstream h)
{
    fake_stream_t *s = NULL;
    CUresult r = fake_enter(fn);
    if (r == CUDA_SUCCESS)
        r = fake_stream_resolve(h, &s);
    if (r == CUDA_SUCCESS) {
        fake_stream_wait_idle(s);
        fake_pools_on_sync(s->ctx->device);
    }
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuStreamSynchronize(CUstream hStream)
{
    return stream_sync("cuStreamSynchronize", hStream);
}

FAKE_EXPORT CUresult cuStreamSynchronize_ptsz(CUstream hStream)
{
    return stream_sync("cuStreamSynchronize_ptsz", hStream);
}

static CUresult stream_query(const char *fn, CUstream h)
{
    fake_stream_t *s = NULL;
    CUresult r = fake_enter(fn);
    if (r == CUDA_SUCCESS)
        r = fake_stream_resolve(h, &s);
    if (r == CUDA_SUCCESS && s->pending > 0)
        r = CUDA_ERROR_NOT_READY;
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuStreamQuery(CUstream hStream)
{
    return stream_query("cuStreamQuery", hStream);
}

FAKE_EXPORT CUresult cuStreamQuery_ptsz(CUstream hStream)
{
    return stream_query("cuStreamQuery_ptsz", hStream);
}

static CUresult wait_event(const char *fn, CUstream h, CUevent ev, unsigned int flags)
{
    fake_stream_t *s = NULL;
    CUresult r = fake_enter(fn);
    if (r == CUDA_SUCCESS && flags > 1)
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && !fake_list_has(&fake_state()->events, ev))
        r = CUDA_ERROR_INVALID_HANDLE;
    if (r == CUDA_SUCCESS)
        r = fake_stream_resolve(h, &s);
    if (r == CUDA_SUCCESS && ev->recorded > ev->completed) {
        fake_op_t *op = fake_op_new(FAKE_OP_WAIT_EVENT);
        if (!op)
            return fake_leave(CUDA_ERROR_OUT_OF_MEMORY);
        op->event = ev;
        op->event_seq = ev->recorded;
        fake_stream_push(s, op);
    }
    return fake_leave(r);
}

/* Not in gs_cuda_api.h (served by cuGetProcAddress's extra rows): the range
 * cuStreamCreateWithPriority clamps to, as an H100's driver reports it. */
FAKE_EXPORT CUresult cuCtxGetStreamPriorityRange(int *leastPriority, int *greatestPriority)
{
    struct CUctx_st *ctx;
    CUresult r = fake_enter("cuCtxGetStreamPriorityRange");
    if (r == CUDA_SUCCESS)
        r = fake_need_ctx(&ctx);
    if (r == CUDA_SUCCESS) {
        if (leastPriority)
            *leastPriority = 0;
        if (greatestPriority)
            *greatestPriority = -5;
    }
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuStreamWaitEvent(CUstream hStream, CUevent hEvent, unsigned int Flags)
{
    return wait_event("cuStreamWaitEvent", hStream, hEvent, Flags);
}

FAKE_EXPORT CUresult cuStreamWaitEvent_ptsz(CUstream hStream, CUevent hEvent, unsigned int Flags)
{
    return wait_event("cuStreamWaitEvent_ptsz", hStream, hEvent, Flags);
}

/* ---- events ------------------------------------------------------------------------- */
FAKE_EXPORT CUresult cuEventCreate(CUevent *phEvent, unsigned int Flags)
{
    struct CUctx_st *ctx;
    CUresult r = fake_enter("cuEventCreate");
    if (r == CUDA_SUCCESS && (!phEvent || Flags > 0x7))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS)
        r = fake_need_ctx(&ctx);
    if (r == CUDA_SUCCESS) {
        struct CUevent_st *ev = calloc(1, sizeof *ev);
        if (!ev)
            return fake_leave(CUDA_ERROR_OUT_OF_MEMORY);
        ev->flags = Flags;
        fake_list_add(&fake_state()->events, ev);
        *phEvent = ev;
    }
    return fake_leave(r);
}

static CUresult record(const char *fn, CUevent ev, CUstream h)
{
    fake_stream_t *s = NULL;
    CUresult r = fake_enter(fn);
    if (r == CUDA_SUCCESS && !fake_list_has(&fake_state()->events, ev))
        r = CUDA_ERROR_INVALID_HANDLE;
    if (r == CUDA_SUCCESS)
        r = fake_stream_resolve(h, &s);
    if (r == CUDA_SUCCESS) {
        fake_op_t *op = fake_op_new(FAKE_OP_EVENT_RECORD);
        if (!op)
            return fake_leave(CUDA_ERROR_OUT_OF_MEMORY);
        op->event = ev;
        op->event_seq = ev->recorded = ++fake_state()->event_seq;
        fake_stream_push(s, op);
    }
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuEventRecord(CUevent hEvent, CUstream hStream)
{
    return record("cuEventRecord", hEvent, hStream);
}

FAKE_EXPORT CUresult cuEventRecord_ptsz(CUevent hEvent, CUstream hStream)
{
    return record("cuEventRecord_ptsz", hEvent, hStream);
}

FAKE_EXPORT CUresult cuEventQuery(CUevent hEvent)
{
    CUresult r = fake_enter("cuEventQuery");
    if (r == CUDA_SUCCESS && !fake_list_has(&fake_state()->events, hEvent))
        r = CUDA_ERROR_INVALID_HANDLE;
    if (r == CUDA_SUCCESS && hEvent->completed < hEvent->recorded)
        r = CUDA_ERROR_NOT_READY;
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuEventSynchronize(CUevent hEvent)
{
    fake_cuda_state_t *st = fake_state();
    CUresult r = fake_enter("cuEventSynchronize");
    if (r == CUDA_SUCCESS && !fake_list_has(&st->events, hEvent))
        r = CUDA_ERROR_INVALID_HANDLE;
    while (r == CUDA_SUCCESS && fake_list_has(&st->events, hEvent) && hEvent->completed < hEvent->recorded)
        (void)pthread_cond_wait(&st->changed, &st->lock);
    return fake_leave(r);
}

static CUresult elapsed(const char *fn, float *ms, CUevent a, CUevent b)
{
    fake_cuda_state_t *st = fake_state();
    CUresult r = fake_enter(fn);
    if (r == CUDA_SUCCESS && !ms)
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && (!fake_list_has(&st->events, a) || !fake_list_has(&st->events, b)))
        r = CUDA_ERROR_INVALID_HANDLE;
    if (r == CUDA_SUCCESS && ((a->flags | b->flags) & CU_EVENT_DISABLE_TIMING || !a->recorded || !b->recorded))
        r = CUDA_ERROR_INVALID_HANDLE;
    if (r == CUDA_SUCCESS && (a->completed < a->recorded || b->completed < b->recorded))
        r = CUDA_ERROR_NOT_READY;
    if (r == CUDA_SUCCESS)
        *ms = (float)((double)((int64_t)(b->time_ns - a->time_ns)) / 1e6);
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuEventElapsedTime(float *pMilliseconds, CUevent hStart, CUevent hEnd)
{
    return elapsed("cuEventElapsedTime", pMilliseconds, hStart, hEnd);
}

FAKE_EXPORT CUresult cuEventElapsedTime_v2(float *pMilliseconds, CUevent hStart, CUevent hEnd)
{
    return elapsed("cuEventElapsedTime_v2", pMilliseconds, hStart, hEnd);
}

static CUresult event_destroy(const char *fn, CUevent ev)
{
    CUresult r = fake_enter(fn);
    if (r == CUDA_SUCCESS && !fake_list_has(&fake_state()->events, ev))
        r = CUDA_ERROR_INVALID_HANDLE;
    if (r == CUDA_SUCCESS) {
        /* Ops that still name it check the list first, so freeing now is safe. */
        fake_list_remove(&fake_state()->events, ev);
        free(ev);
        (void)pthread_cond_broadcast(&fake_state()->changed);
    }
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuEventDestroy(CUevent hEvent)
{
    return event_destroy("cuEventDestroy", hEvent);
}

FAKE_EXPORT CUresult cuEventDestroy_v2(CUevent hEvent)
{
    return event_destroy("cuEventDestroy_v2", hEvent);
}

/* Stream capture is not modelled: no stream is ever capturing; the thread's capture mode is
 * kept and exchanged as the driver does (libraries switch to relaxed around their calls). */
static _Thread_local CUstreamCaptureMode capture_mode = CU_STREAM_CAPTURE_MODE_GLOBAL;

static CUresult is_capturing(const char *fn, CUstream h, CUstreamCaptureStatus *status)
{
    fake_stream_t *s = NULL;
    CUresult r = fake_enter(fn);
    if (r == CUDA_SUCCESS && !status)
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS)
        r = fake_stream_resolve(h, &s);
    if (r == CUDA_SUCCESS)
        *status = CU_STREAM_CAPTURE_STATUS_NONE;
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuStreamIsCapturing(CUstream hStream, CUstreamCaptureStatus *captureStatus)
{
    return is_capturing("cuStreamIsCapturing", hStream, captureStatus);
}

FAKE_EXPORT CUresult cuStreamIsCapturing_ptsz(CUstream hStream, CUstreamCaptureStatus *captureStatus)
{
    return is_capturing("cuStreamIsCapturing_ptsz", hStream, captureStatus);
}

FAKE_EXPORT CUresult cuThreadExchangeStreamCaptureMode(CUstreamCaptureMode *mode)
{
    CUresult r = fake_enter("cuThreadExchangeStreamCaptureMode");
    if (r == CUDA_SUCCESS && (!mode || *mode > CU_STREAM_CAPTURE_MODE_RELAXED))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS) {
        CUstreamCaptureMode was = capture_mode;
        capture_mode = *mode;
        *mode = was;
    }
    return fake_leave(r);
}
