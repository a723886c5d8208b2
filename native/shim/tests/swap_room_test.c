/*
 * swap_room_test.c: waiting for room (swap.c, swap_ctl.c; SWAP.md "Waiting for room") against
 * the fake libcuda, under the sanitized libgpushare with GPUSHARE_SWAP and
 * GPUSHARE_SWAP_ROOM_WAIT_MS set (run_shim_tests.sh). The fake card is 64 MiB; "other
 * slices" are a blocker allocated from the fake directly (past libgpushare), so the library's
 * allocation fails in the driver, as on a card full of other processes' memory. The program
 * is the task and, on its main thread, the daemon on the control socket. The bound is 0.8 s for
 * nodaemon, bound and gone (what they test), 10 s for the others.
 *
 *     swap_room_test SCENARIO   nodaemon, retry, bound, refused, gone, limit, late
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "gs_cuda.h"
#include "test_check.h"

#define MiB (1024ull * 1024ull)
/* What the asking thread allocates: more than the card has free beside the blocker. */
#define ASK (24 * MiB)

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static CUcontext ctx;
static CUdeviceptr mine;    /* a swappable 4 MiB allocation: starts the control socket */
static CUdeviceptr blocker; /* the fake's own: "another slice" holding the card */

/* The fake's entry point itself, past libgpushare. */
static void *fake_fn(const char *name)
{
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    void *f = h != NULL ? libc_dlsym(h, name) : NULL;
    check(f != NULL, "the fake's %s", name);
    return f;
}

/* The card: 60 MiB free after the context; 4 MiB ours, 40 MiB the blocker's, 16 MiB free. */
static void setup(void)
{
    CUdevice d;
    check(cuInit(0) == CUDA_SUCCESS && cuDeviceGet(&d, 0) == CUDA_SUCCESS, "cuInit, device 0");
    check(cuCtxCreate_v2(&ctx, 0, d) == CUDA_SUCCESS, "context");
    check(cuMemAlloc_v2(&mine, 4 * MiB) == CUDA_SUCCESS, "a swappable allocation");
    CUresult (*alloc)(CUdeviceptr *, size_t) = (CUresult(*)(CUdeviceptr *, size_t))fake_fn("cuMemAlloc_v2");
    check(alloc != NULL && alloc(&blocker, 40 * MiB) == CUDA_SUCCESS, "the blocker, from the fake");
}

static void free_blocker(void)
{
    CUresult (*fr)(CUdeviceptr) = (CUresult(*)(CUdeviceptr))fake_fn("cuMemFree_v2");
    check(fr != NULL && fr(blocker) == CUDA_SUCCESS, "the blocker freed");
    blocker = 0;
}

static int ctl_connect(void)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s/%d.sock", getenv("GPUSHARE_SWAP"), (int)getpid());
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    check(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0, "connect to %s: %s", a.sun_path, strerror(errno));
    return fd;
}

/* One line from fd within ms (byte by byte: the next line stays unread); empty: none came. */
static void read_line(int fd, char *out, size_t len, int ms)
{
    size_t have = 0;
    double until = now_s() + ms / 1000.0;
    out[0] = '\0';
    while (have + 1 < len) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = (int)((until - now_s()) * 1000);
        if (left <= 0 || poll(&p, 1, left) <= 0 || recv(fd, out + have, 1, 0) != 1)
            break;
        if (out[have++] == '\n')
            break;
    }
    out[have] = '\0';
}

static void say(int fd, const char *cmd)
{
    char line[32];
    snprintf(line, sizeof line, "%s\n", cmd);
    check(send(fd, line, strlen(line), MSG_NOSIGNAL) == (ssize_t)strlen(line), "send %s", cmd);
}

/* Sends cmd and reads its answer, skipping unasked lines (kept in `events` when given). */
static void ask(int fd, const char *cmd, char *out, size_t len)
{
    say(fd, cmd);
    do
        read_line(fd, out, len, 5000);
    while (strncmp(out, "{\"event\":", 9) == 0);
}

static bool has(const char *s, const char *part)
{
    return strstr(s, part) != NULL;
}

/* ---- the asking thread ---------------------------------------------------------------- */

typedef struct {
    CUdeviceptr p;
    CUresult r;
    double took;
    _Atomic int done;
} asking;

static void *ask_thread(void *arg)
{
    asking *a = arg;
    (void)cuCtxSetCurrent(ctx);
    double t0 = now_s();
    a->r = cuMemAlloc_v2(&a->p, ASK);
    a->took = now_s() - t0;
    atomic_store(&a->done, 1);
    return NULL;
}

static void start(asking *a, pthread_t *t)
{
    memset(a, 0, sizeof *a);
    check(pthread_create(t, NULL, ask_thread, a) == 0, "the asking thread");
}

/* The watching connection sees a wants-room line for ASK (within 5 s); the thread waits. */
static void expect_wants_room(int watch, asking *a)
{
    char line[160], want[64];
    read_line(watch, line, sizeof line, 5000); /* a loaded machine under the sanitizers */
    snprintf(want, sizeof want, "\"bytes\":%llu}", ASK);
    check(has(line, "{\"event\":\"wants-room\",\"pid\":") && has(line, want), "a wants-room line for 24 MiB: \"%s\"", line);
    usleep(100000);
    check(atomic_load(&a->done) == 0, "the allocation waits for the daemon's answer");
}

/* The card full, a daemon watching, and an allocation on thread *t waiting for room: the watcher. */
static int waiting(asking *a, pthread_t *t)
{
    setup();
    int watch = ctl_connect();
    char ans[640];
    ask(watch, "watch", ans, sizeof ans);
    check(has(ans, "\"ok\":true") && has(ans, "\"op\":\"watch\""), "watch: %s", ans);
    start(a, t);
    expect_wants_room(watch, a);
    return watch;
}

/* No daemon watching: the driver's out-of-memory; at once without a wait set (no daemon that
 * overcommits: run with GPUSHARE_SWAP_ROOM_WAIT_MS unset), else after the grace a daemon has
 * to start watching (1 s, within the 0.8 s bound here). */
static void t_nodaemon(void)
{
    setup();
    CUdeviceptr p = 0;
    const char *wait = getenv("GPUSHARE_SWAP_ROOM_WAIT_MS");
    double bound = wait != NULL ? 0.8 : 0.0;
    double t0 = now_s();
    check(cuMemAlloc_v2(&p, ASK) == CUDA_ERROR_OUT_OF_MEMORY, "out of memory");
    double took = now_s() - t0;
    check(took >= bound * 0.9 && took < bound + 0.4, "after %.1f s without a watching daemon (%.3f s)", bound, took);
    int fd = ctl_connect(); /* a connection that does not watch changes nothing */
    t0 = now_s();
    check(cuMemAlloc_v2(&p, ASK) == CUDA_ERROR_OUT_OF_MEMORY && now_s() - t0 < bound + 0.4, "the same with a connection that does not watch");
    close(fd);
    free_blocker();
}

/*
 * The daemon makes room: the allocation waits holding no lock (a swap-out of this very process
 * runs meanwhile, and the wait, its retry held until the swap-in, asks again), then room comes
 * (the blocker goes) and `room` has the retry succeed.
 */
static void t_retry(void)
{
    asking a;
    pthread_t t;
    int watch = waiting(&a, &t), ctl = ctl_connect();
    char ans[640];
    ask(ctl, "out", ans, sizeof ans);
    check(has(ans, "\"ok\":true") && has(ans, "\"out\":true"), "a swap-out of the waiting process runs: %s", ans);
    ask(ctl, "in", ans, sizeof ans);
    check(has(ans, "\"ok\":true"), "in: %s", ans);
    expect_wants_room(watch, &a); /* retried after the swap-in, still no room: asks again */
    free_blocker();
    ask(watch, "room", ans, sizeof ans);
    check(has(ans, "\"ok\":true") && has(ans, "\"op\":\"room\""), "room: %s", ans);
    pthread_join(t, NULL);
    check(a.r == CUDA_SUCCESS && a.p != 0, "the retried allocation succeeds (%d)", (int)a.r);
    check(a.r != CUDA_SUCCESS || cuMemsetD8_v2(a.p, 7, ASK) == CUDA_SUCCESS, "and is usable");
    check(a.r != CUDA_SUCCESS || cuMemFree_v2(a.p) == CUDA_SUCCESS, "and freed");
    close(ctl);
    close(watch);
}

/* Nobody answers: out of memory at the bound (GPUSHARE_SWAP_ROOM_WAIT_MS=800), not before. */
static void t_bound(void)
{
    asking a;
    pthread_t t;
    int watch = waiting(&a, &t);
    pthread_join(t, NULL);
    check(a.r == CUDA_ERROR_OUT_OF_MEMORY, "out of memory at the bound (%d)", (int)a.r);
    check(a.took >= 0.75 && a.took < 2.0, "after the bound of 0.8 s (%.3f s)", a.took);
    close(watch);
    free_blocker();
}

/* `no-room`: out of memory at once. */
static void t_refused(void)
{
    asking a;
    pthread_t t;
    int watch = waiting(&a, &t);
    char ans[640];
    double t0 = now_s();
    ask(watch, "no-room", ans, sizeof ans);
    check(has(ans, "\"ok\":true"), "no-room: %s", ans);
    pthread_join(t, NULL);
    check(a.r == CUDA_ERROR_OUT_OF_MEMORY && now_s() - t0 < 0.3, "out of memory at once (%d, %.3f s)", (int)a.r, now_s() - t0);
    close(watch);
    free_blocker();
}

/* The watching daemon goes away mid-wait: out of memory at once; the next allocation waits the
 * bound for a watcher, then fails. */
static void t_gone(void)
{
    asking a;
    pthread_t t;
    int watch = waiting(&a, &t);
    double t0 = now_s();
    close(watch);
    pthread_join(t, NULL);
    check(a.r == CUDA_ERROR_OUT_OF_MEMORY && now_s() - t0 < 0.3, "out of memory when the daemon goes (%d, %.3f s)", (int)a.r, now_s() - t0);
    CUdeviceptr p = 0;
    t0 = now_s();
    check(cuMemAlloc_v2(&p, ASK) == CUDA_ERROR_OUT_OF_MEMORY && now_s() - t0 < 1.2, "and afterwards within the bound (no watcher comes)");
    free_blocker();
}

/* Our own memory limit (GPUSHARE_MEMORY_LIMIT=20Mi) refuses before the driver is asked: at once,
 * no wants-room. */
static void t_limit(void)
{
    setup();
    int watch = ctl_connect();
    char ans[640];
    ask(watch, "watch", ans, sizeof ans);
    CUdeviceptr p = 0;
    double t0 = now_s();
    check(cuMemAlloc_v2(&p, ASK) == CUDA_ERROR_OUT_OF_MEMORY && now_s() - t0 < 0.5, "the limit's out of memory at once");
    read_line(watch, ans, sizeof ans, 200);
    check(ans[0] == '\0', "no wants-room for the limit's refusal: \"%s\"", ans);
    close(watch);
    free_blocker();
}

/* The daemon starts watching only after the allocation failed (its next look after the socket
 * appeared): the allocation waits for it, then asks. */
static void t_late(void)
{
    setup();
    asking a;
    pthread_t t;
    start(&a, &t);
    usleep(300000);
    int watch = ctl_connect();
    char ans[640];
    say(watch, "watch");
    read_line(watch, ans, sizeof ans, 2000);
    if (strncmp(ans, "{\"event\":", 9) == 0) /* the wants-room may come before the answer */
        read_line(watch, ans, sizeof ans, 2000);
    else
        expect_wants_room(watch, &a);
    check(atomic_load(&a.done) == 0, "the allocation waited for the watcher");
    free_blocker();
    ask(watch, "room", ans, sizeof ans);
    pthread_join(t, NULL);
    check(a.r == CUDA_SUCCESS, "and got its memory (%d)", (int)a.r);
    check(a.r != CUDA_SUCCESS || cuMemFree_v2(a.p) == CUDA_SUCCESS, "freed");
    close(watch);
}

int main(int argc, char **argv)
{
    scenario = argc > 1 ? argv[1] : "?";
    static const test_scenario all[] = {{"nodaemon", t_nodaemon}, {"retry", t_retry}, {"bound", t_bound},
                                        {"refused", t_refused},   {"gone", t_gone},   {"limit", t_limit}, {"late", t_late}};
    int rc = run_scenario(all, sizeof all / sizeof all[0]);
    if (mine != 0)
        (void)cuMemFree_v2(mine);
    return rc;
}
