/*
 * swap_room.c: an allocation that waits for room (SWAP.md, "Waiting for room"). Under memory
 * overcommit the card may be full of other slices the daemon could swap out: a swappable
 * allocation the driver refuses for want of memory tells the daemon's watching connection how
 * much it needs (a wants-room line) and waits, holding no lock, for `room` (retry) or
 * `no-room` (out of memory), bounded by GPUSHARE_SWAP_ROOM_WAIT_MS, which the daemon sets.
 * Apart from swap_ctl.c, the socket's protocol, because the wait has its own state and lock.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "swap.h"
#include "swap_impl.h"

/* The connection that said `watch` (-1: none, and then nobody waits), and the daemon's answers
 * counted, so a waiting thread sees an answer that came after it asked. Never held while
 * swap_ctl.c's socket lock or swap.c's lock is: a thread waits here with neither, so a
 * swap-out of this very process runs meanwhile. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t answered;
    int fd;
    uint64_t answers; /* room, no-room or the watcher gone: each adds one */
    bool room;        /* the last answer */
    long wait_ms;     /* GPUSHARE_SWAP_ROOM_WAIT_MS; -1: not read yet */
} R = {.lock = PTHREAD_MUTEX_INITIALIZER, .answered = PTHREAD_COND_INITIALIZER, .fd = -1, .wait_ms = -1};

/* GPUSHARE_SWAP_ROOM_WAIT_MS, the daemon's bound on a wait for room (0 or unset: no wait).
 * Read here rather than in gs_config: nothing else in the library uses it. Under R.lock. */
static long room_wait_ms(void)
{
    if (R.wait_ms >= 0)
        return R.wait_ms;
    const char *v = getenv("GPUSHARE_SWAP_ROOM_WAIT_MS");
    char *end = NULL;
    long ms = v != NULL && *v != '\0' ? strtol(v, &end, 10) : 0;
    if (v != NULL && *v != '\0' && (end == NULL || *end != '\0' || ms < 0 || ms > 3600000)) {
        gs_log(GS_LOG_WARN, "GPUSHARE_SWAP_ROOM_WAIT_MS=\"%s\" is not milliseconds from 0 to 3600000; an allocation "
                            "the GPU cannot hold fails at once", v);
        ms = 0;
    }
    R.wait_ms = ms;
    return ms;
}

/* The daemon's answer to a wait for room (or the watcher gone: no room). */
void gs_swap_room_answer(int fd, bool room)
{
    pthread_mutex_lock(&R.lock);
    if (R.fd == fd) {
        R.answers++;
        R.room = room; /* a no-room ends the waits, not the watching */
        pthread_cond_broadcast(&R.answered);
    }
    pthread_mutex_unlock(&R.lock);
}

void gs_swap_room_watch(int fd, bool on)
{
    pthread_mutex_lock(&R.lock);
    if (on) {
        R.fd = fd;
        pthread_cond_broadcast(&R.answered); /* an allocation waiting for a watcher to ask */
    } else if (R.fd == fd) {
        /* the daemon went away: whoever waits gets its out-of-memory now */
        R.fd = -1;
        R.answers++;
        R.room = false;
        pthread_cond_broadcast(&R.answered);
    }
    pthread_mutex_unlock(&R.lock);
}

/* Slices of a wait: a swap-out of this process meanwhile ends it early (the retry then waits
 * for the swap-in, where the room is the daemon's to make). */
#define ROOM_SLICE_MS 20
/* With a wait set (the daemon overcommits this GPU) but no watcher yet: how long to wait for
 * one. The daemon watches a slice at its next look (every 250 ms at most) after the socket
 * appears, which is at the first swappable allocation: that very allocation may fail before. */
#define WATCH_GRACE_S 1.0

/* CLOCK_REALTIME `s` seconds from now, for pthread_cond_timedwait. */
static struct timespec realtime_in(double s)
{
    struct timespec at;
    clock_gettime(CLOCK_REALTIME, &at);
    at.tv_sec += (time_t)s;
    at.tv_nsec += (long)((s - (double)(time_t)s) * 1e9);
    if (at.tv_nsec >= 1000000000L) {
        at.tv_sec++;
        at.tv_nsec -= 1000000000L;
    }
    return at;
}

static double mono_s(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* Under R.lock: the watching connection, waiting up to WATCH_GRACE_S (within the deadline) for one. */
static int watcher(double deadline)
{
    double until = mono_s() + WATCH_GRACE_S;
    until = until < deadline ? until : deadline;
    for (double t = mono_s(); R.fd < 0 && t < until; t = mono_s()) {
        struct timespec at = realtime_in(until - t);
        (void)pthread_cond_timedwait(&R.answered, &R.lock, &at);
    }
    return R.fd;
}

bool gs_swap_room_wait(uint64_t bytes, double *deadline)
{
    pthread_mutex_lock(&R.lock);
    long ms = room_wait_ms();
    double t = mono_s();
    if (ms > 0 && *deadline == 0)
        *deadline = t + (double)ms / 1000.0;
    int fd = ms > 0 && t < *deadline ? watcher(*deadline) : -1;
    uint64_t seen = R.answers;
    unsigned long outs = atomic_load(&gs_swap_outs);
    pthread_mutex_unlock(&R.lock);
    if (fd < 0)
        return false;
    char line[96];
    int n = snprintf(line, sizeof line, "{\"event\":\"wants-room\",\"pid\":%d,\"bytes\":%llu}\n", (int)getpid(),
                     (unsigned long long)bytes);
    if (n <= 0 || (size_t)n >= sizeof line || !gs_swap_ctl_send(fd, line, (size_t)n))
        return false;
    bool room = false, answered = false;
    pthread_mutex_lock(&R.lock);
    while (!answered) {
        if (R.answers != seen) {
            answered = true;
            room = R.room;
            break;
        }
        if (atomic_load(&gs_swap_outs) != outs) {
            /* swapped out meanwhile (perhaps already back in: a swap of small memory can come
             * and go within one slice of this wait): retry, after the swap-in if still out */
            room = true;
            break;
        }
        t = mono_s();
        if (t >= *deadline)
            break;
        double slice = ROOM_SLICE_MS / 1000.0 < *deadline - t ? ROOM_SLICE_MS / 1000.0 : *deadline - t;
        struct timespec at = realtime_in(slice);
        (void)pthread_cond_timedwait(&R.answered, &R.lock, &at);
    }
    pthread_mutex_unlock(&R.lock);
    return room;
}
