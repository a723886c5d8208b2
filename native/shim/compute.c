/*
 * compute.c: the compute governor (time-slice mode; design and numbers in COMPUTE.md): its
 * process-wide state, which devices it governs and their setup, and what it says at exit.
 *
 * Time on a GPU is cut into host-wide periods of 1 s (CLOCK_MONOTONIC, the same clock
 * in every process). The governed processes on a GPU meet on a small board file per GPU
 * (compute_board.c; layout: native/region/gpushare_board.h): each has a slot with its share,
 * priority, policy and the last time it wanted the GPU. From the board every process works out
 * the same layout of the period (compute_windows.c): an exclusive window for each process that
 * wants the GPU now (share x period, hard; share processes split what is left), in priority
 * order. The gate (compute_gate.c, its precise path compute_precise.c) lets a launch go inside
 * the process's own window or in time nobody holds, while its budget for the period lasts;
 * what its work took on the GPU is measured with CUDA events (compute_measure.c).
 * compute_state.h has what these files share.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <unistd.h>

#include "compute_hold.h"
#include "compute_state.h"
#include "log.h"
#include "state.h"
#include "swap.h"

/* The one governor of the process (compute_state.h: gs_governor), shared by the governor's files:
 * global because the launch hooks carry no handle and every thread must find the same one. */
gs_governor gs_gov = {.init = PTHREAD_MUTEX_INITIALIZER, .key_once = PTHREAD_ONCE_INIT};

static const char *const why_name[WHY_COUNT] = {"", "shared", "layout", "sample", "idle", "budget"};

/* A device's setup at its first launch: governed or not, its share, priority and policy, a board
 * slot, the budget of the first period. */
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
    d->confined = gs_windows_confined(&(gs_window_holder){d->share_ppm, d->priority, d->policy == GS_REGION_POLICY_SHARE},
                                      gs_cfg.compute_accounting);
    (void)pthread_mutex_init(&d->lock, NULL);
    d->last_line = -1;
    struct timespec res;
    /* a coarse clock of at most 4 ms per tick is fine for the fast path (fast_go) */
    atomic_store(&gs_gov.tick, clock_getres(CLOCK_MONOTONIC_COARSE, &res) == 0 && res.tv_sec == 0 &&
                              res.tv_nsec > 0 && res.tv_nsec <= 4000000
                          ? (uint64_t)res.tv_nsec
                          : 0);
    uint64_t now = now_ns();
    d->token = ((uint64_t)(uint32_t)getpid() << GS_BOARD_OWNER_PID_SHIFT) |
               (((uint64_t)now ^ (uint64_t)(uintptr_t)d) & 0xffffffffu) | 1u; /* odd: never 0 (free) */
    gs_clock_setup(d, dev, uuid[0] ? uuid : NULL);
    gs_board_join(d, uuid[0] ? uuid : NULL, now);
    atomic_store(&d->period, now / PERIOD_NS);
    atomic_store(&d->balance_ns, (int64_t)(PERIOD_NS / PPM * d->share_ppm));
    if (gs_ready())
        (void)gs_region_compute_set_policy((uint32_t)dev, (uint32_t)((uint64_t)d->share_ppm * GS_REGION_SHARE_ONE / PPM),
                                           d->priority, d->policy);
    gs_log(GS_LOG_INFO, "device %d: compute %u%% (%s, priority %s)", dev, d->share_ppm / (PPM / 100),
           d->confined ? "hard, its own window only" : d->policy == GS_REGION_POLICY_HARD ? "hard" : "share",
           d->priority == GS_PRIORITY_HIGH ? "high" : d->priority == GS_PRIORITY_LOW ? "low" : "normal");
    atomic_store(&d->state, DEV_ON);
}

/* Whether the configuration governs any device in time-slice mode. */
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

/* Whether any device can be governed (ctx_get set: it is published with the mode). */
static int decide_mode(void)
{
    atomic_store_explicit(&gs_gov.ctx_get, gs_real()->cuCtxGetCurrent, memory_order_relaxed);
    return any_governed_possible() ? DEV_ON : DEV_OFF;
}

/* The mode a swap's hold put aside (compute_hold.h); written only by the swapping thread. */
static int held_mode = DEV_UNKNOWN;

/* The first launch of the process: whether any device can be governed. A launch during a
 * slice swap's hold (DEV_HELD) waits here until the gate opens. */
int gs_gov_mode_setup(void)
{
    for (;;) {
        int mode = atomic_load_explicit(&gs_gov.mode, memory_order_acquire);
        if (mode == DEV_HELD) {
            gs_swap_wait_slow();
            continue;
        }
        if (mode != DEV_UNKNOWN)
            return mode;
        int decided = decide_mode();
        if (atomic_compare_exchange_strong(&gs_gov.mode, &mode, decided))
            return decided;
    }
}

void gs_compute_hold(void)
{
    int mode = atomic_load(&gs_gov.mode);
    if (mode == DEV_UNKNOWN)
        mode = decide_mode();
    held_mode = mode;
    atomic_store_explicit(&gs_gov.mode, DEV_HELD, memory_order_release);
}

void gs_compute_open(void)
{
    atomic_store_explicit(&gs_gov.mode, held_mode, memory_order_release);
}

/* The first launch on a device. */
int gs_gov_state_setup(cdev *d, int dev)
{
    pthread_mutex_lock(&gs_gov.init);
    if (atomic_load(&d->state) == DEV_UNKNOWN)
        dev_setup(d, dev);
    pthread_mutex_unlock(&gs_gov.init);
    return atomic_load(&d->state);
}

/* Process exit: what the gate did (GPUSHARE_LOG_LEVEL=debug), and the board slots are freed. */
__attribute__((destructor)) static void governor_exit(void)
{
    gs_gov_credit_flush(); /* the exiting thread's credit launches (other threads' went at their exit) */
    for (unsigned dev = 0; dev < GS_REGION_MAX_DEVICES; dev++) {
        cdev *d = &gs_gov.dev[dev];
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
                   (unsigned long long)atomic_load(&gs_gov.tick) / 1000, (double)atomic_load(&d->busy_ns) / 1e6,
                   (double)atomic_load(&d->throttle_ns) / 1e6);
            if (d->clock_on)
                gs_log(GS_LOG_DEBUG, "compute: device %u: throughput shares: busy %.1f ms charged as %.1f ms, saturated clock %u MHz%s",
                       dev, (double)atomic_load(&d->busy_ns) / 1e6, (double)atomic_load(&d->charged_ns) / 1e6,
                       d->clock.saturated_mhz, d->clock.fixed ? " (GPUSHARE_COMPUTE_CLOCK)" : d->clock.saturated_mhz ? " (learned)" : " (not learned yet: time)");
        }
        if (atomic_load(&d->state) == DEV_ON)
            gs_board_leave(d);
    }
}
