/*
 * swap_impl.h: between the swap itself (swap.c) and its control socket (swap_ctl.c).
 */
#ifndef GS_SWAP_IMPL_H
#define GS_SWAP_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One operation's answer, written to the daemon as one JSON line. */
typedef struct gs_swap_result {
    bool ok;
    char code[16];     /* a refusal's stable code: state, host-memory, gpu-memory, driver, usage */
    char message[200]; /* a refusal's reason, for people */
    uint64_t bytes;    /* swapped (or swappable, for status) */
    uint64_t allocations;
    uint64_t pinned_bytes; /* the staging's pinned host memory after the operation */
    double seconds;        /* the whole operation, from the request to done */
    double pin_s;          /* of it, pinning staging that was not pinned ahead */
    double drain_s;        /* of it, waiting for the program's queued GPU work */
    double wait_s;         /* of it (swap-in), waiting for room on the GPU (another slice's releases) */
    bool out;              /* status: swapped out */
    uint64_t resident_bytes; /* this process's device memory a swap leaves in place (region's count) */
    char devices[200];       /* the UUIDs of the GPUs its swappable memory is on (or goes back to), comma-separated:
                              * after a move (a restore onto other GPUs), the new ones */
} gs_swap_result;

void gs_swap_refuse(gs_swap_result *res, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* MemAvailable of /proc/meminfo in bytes; UINT64_MAX when unknown. */
uint64_t gs_swap_host_available(void);
/* The program has a thread waiting for the hold to end: tells the daemon's connection that
 * swapped the slice out, once per swap-out (swap_ctl.c; never blocks on the swap's lock). */
void gs_swap_ctl_wants_in(void);
/* Swap-outs begun so far: a wait for room that sees it move knows the process was swapped out
 * meanwhile, even when it is already back in by the time the waiting thread wakes. */
extern _Atomic unsigned long gs_swap_outs;
/* Writes one line on a control connection, never inside another line on it (swap_ctl.c). */
bool gs_swap_ctl_send(int fd, const char *line, size_t n);
/* A control connection's `watch` (on) or its end (off: whoever waits gets out of memory), and
 * its `room` / `no-room` (swap_room.c). */
void gs_swap_room_watch(int fd, bool on);
void gs_swap_room_answer(int fd, bool room);
/* The driver refused `bytes` of GPU memory: tells the watching daemon (a wants-room line) and
 * waits, holding no lock, for its answer until *deadline (CLOCK_MONOTONIC seconds; 0: set it
 * now from GPUSHARE_SWAP_ROOM_WAIT_MS). True: retry the allocation (room was made, or the
 * process was swapped out meanwhile). False at once when no daemon watches or no wait is set. */
bool gs_swap_room_wait(uint64_t bytes, double *deadline);
/* How many of the program's threads wait for the hold to end now. */
int gs_swap_waiters(void);
/* Starts the control thread once (the first swappable allocation). */
void gs_swap_ctl_start(void);

/* The operations (swap.c); each fills *res, which starts zeroed. */
void gs_swap_out(gs_swap_result *res);
/* wait_ms: how long allocations the driver refuses for want of memory are tried again (an
 * overlapped hand-over: the outgoing slice releases meanwhile); 0: refused at once. */
void gs_swap_in(gs_swap_result *res, unsigned wait_ms);
/* Ends a swap-in's wait for room now (or the next one's, if none waits yet). Takes no lock. */
void gs_swap_in_stop(void);
/* pin: pins the staging for what is allocated now (ahead of a swap-out); else frees it. */
void gs_swap_stage(gs_swap_result *res, bool pin);
void gs_swap_status(gs_swap_result *res);
bool gs_swap_is_out(void);

#endif /* GS_SWAP_IMPL_H */
