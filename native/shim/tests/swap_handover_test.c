/*
 * swap_handover_test.c: an overlapped hand-over (swap.c, SWAP.md "Hand-over") against the
 * fake libcuda, under the sanitized libgpushare (run_shim_tests.sh). Two task processes (A and
 * B, forked before any CUDA call) share one fake card of 72 MiB (the fake's sharedMemory): a
 * slice is 38 MiB of swappable memory (16 + 14 + 6 + 2 MiB granules) and a 4 MiB context, so
 * the card holds one slice and the other's context, never both slices. This process is the
 * daemon: it swaps the outgoing slice out (`out`) while the incoming one swaps in with a wait
 * for room (`in MS`), on their control sockets, and reads the fake's card file for what each
 * process holds and the most the card ever held.
 *
 *     swap_handover_test SCENARIO   overlap, bound, kill-in, kill-out
 *
 * overlap:  three hand-overs back and forth (the first with the swap-in asked 100 ms before the
 *           swap-out: it waits on the card, then gets room as the outgoing slice releases);
 *           every byte at its address, each process's count on the card exactly its context
 *           (out) or context + slice (in), the card never over.
 * bound:    a swap-in with no room within its bound is refused (gpu-memory) and keeps nothing
 *           of what it had backed; `in-stop` ends a wait at once; then it comes in.
 * kill-in:  the incoming task killed while its swap-in waits: the outgoing one goes on, bytes
 *           intact, and the card holds nothing of the dead one.
 * kill-out: the outgoing task killed at several instants of its swap-out: the incoming swap-in
 *           completes (the memory went with the process), bytes intact.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fake_cuda_busy.h"
#include "gs_cuda.h"
#include "test_check.h"
#include "swap_ctl_connect.h"
#include "fake_card_map.h"

#define MiB (1024ull * 1024ull)
#define CARD (72 * MiB)
#define CTX (4 * MiB)
#define NBUF 4
static const size_t SIZES[NBUF] = {16 * MiB, 12 * MiB + 123, 6 * MiB, 2 * MiB};
#define SLICE (38 * MiB) /* SIZES rounded up to the 2 MiB granularity */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- a task: its memory, and commands from the daemon on a pipe ---------------------------- */

typedef struct task {
    pid_t pid;
    int cmd;  /* the daemon writes one byte: v (verify), f (free and end) */
    int ans;  /* the task answers one byte: 1 (good) or 0 */
    int seed;
} task;

static unsigned char pattern(int seed, int i, size_t k)
{
    return (unsigned char)(k * 31 + (size_t)i * 7 + (k >> 12) + (size_t)seed * 101);
}

/* The task's side: allocates and fills its slice, then serves the daemon's commands. */
static void task_main(int seed, int cmd, int ans)
{
    CUdevice d;
    CUcontext ctx;
    CUdeviceptr buf[NBUF];
    check(cuInit(0) == CUDA_SUCCESS && cuDeviceGet(&d, 0) == CUDA_SUCCESS, "task %d: cuInit", seed);
    check(cuCtxCreate_v2(&ctx, 0, d) == CUDA_SUCCESS, "task %d: context", seed);
    for (int i = 0; i < NBUF; i++) {
        unsigned char *b = malloc(SIZES[i]);
        for (size_t k = 0; k < SIZES[i]; k++)
            b[k] = pattern(seed, i, k);
        check(cuMemAlloc_v2(&buf[i], SIZES[i]) == CUDA_SUCCESS && cuMemcpyHtoD_v2(buf[i], b, SIZES[i]) == CUDA_SUCCESS,
              "task %d: buffer %d allocated and filled", seed, i);
        free(b);
    }
    (void)!write(ans, "1", 1);
    for (char c; read(cmd, &c, 1) == 1;) {
        bool good = failures == 0;
        if (c == 'v' || c == 'f') {
            for (int i = 0; i < NBUF; i++) {
                unsigned char *b = malloc(SIZES[i]);
                bool same = cuMemcpyDtoH_v2(b, buf[i], SIZES[i]) == CUDA_SUCCESS;
                for (size_t k = 0; same && k < SIZES[i]; k++)
                    same = b[k] == pattern(seed, i, k);
                check(same, "task %d: buffer %d has every byte it had, at the same address", seed, i);
                good = good && same;
                free(b);
            }
        }
        if (c == 'f')
            for (int i = 0; i < NBUF; i++)
                check(cuMemFree_v2(buf[i]) == CUDA_SUCCESS, "task %d: free buffer %d", seed, i);
        (void)!write(ans, good ? "1" : "0", 1);
        if (c == 'f')
            break;
    }
    (void)cuCtxDestroy_v2(ctx);
    exit(failures ? 1 : 0);
}

static task start_task(int seed)
{
    int c[2], a[2];
    check(pipe(c) == 0 && pipe(a) == 0, "pipes");
    pid_t pid = fork();
    if (pid == 0) {
        close(c[1]);
        close(a[0]);
        task_main(seed, c[0], a[1]);
    }
    close(c[0]);
    close(a[1]);
    task t = {.pid = pid, .cmd = c[1], .ans = a[0], .seed = seed};
    char r = 0;
    check(read(t.ans, &r, 1) == 1 && r == '1', "task %d ready", seed);
    return t;
}

/* Asks the task to check its bytes (it must be resident, or its copies wait for the swap-in). */
static bool task_verify(const task *t, const char *when)
{
    char r = 0;
    bool ok = write(t->cmd, "v", 1) == 1 && read(t->ans, &r, 1) == 1 && r == '1';
    check(ok, "%s: task %d's bytes intact", when, t->seed);
    return ok;
}

/* Frees the task's slice (bytes checked first) and waits for its end: exit status 0. */
static void task_end(task *t)
{
    char r = 0;
    check(write(t->cmd, "f", 1) == 1 && read(t->ans, &r, 1) == 1 && r == '1', "task %d: bytes intact and freed at the end", t->seed);
    int st = 0;
    check(waitpid(t->pid, &st, 0) == t->pid && WIFEXITED(st) && WEXITSTATUS(st) == 0, "task %d ended cleanly (status %d)", t->seed, st);
    close(t->cmd);
    close(t->ans);
    t->pid = 0;
}

static void task_kill(task *t)
{
    kill(t->pid, SIGKILL);
    waitpid(t->pid, NULL, 0); /* reaped: the fake counts a zombie's memory until then */
    close(t->cmd);
    close(t->ans);
    char sock[256];
    snprintf(sock, sizeof sock, "%s/%d.sock", getenv("GPUSHARE_SWAP"), (int)t->pid);
    (void)unlink(sock); /* the daemon's part: a dead process's socket */
    t->pid = 0;
}

/* ---- the fake's card file --------------------------------------------------------------- */

static fake_cuda_shared_memory_t *card;

static void map_card(void)
{
    if (card == NULL)
        card = fake_card_map();
}

/* What process `pid` holds on the card, by the fake's count (~0: no slot). */
static uint64_t held_by(pid_t pid)
{
    for (int k = 0; card != NULL && k < FAKE_CUDA_SHARED_MEMORY_SLOTS; k++)
        if (__atomic_load_n(&card->slot[k].pid, __ATOMIC_ACQUIRE) == pid)
            return __atomic_load_n(&card->slot[k].used, __ATOMIC_ACQUIRE);
    return ~0ull;
}

static uint64_t peak(void)
{
    return card != NULL ? __atomic_load_n(&card->peak, __ATOMIC_ACQUIRE) : ~0ull;
}

/* ---- the daemon's side: control connections ---------------------------------------------- */

static int ctl_connect(pid_t pid)
{
    return swap_ctl_connect(pid, 300);
}

static void say(int fd, const char *cmd)
{
    char line[64];
    snprintf(line, sizeof line, "%s\n", cmd);
    check(fd >= 0 && send(fd, line, strlen(line), MSG_NOSIGNAL) == (ssize_t)strlen(line), "send %s", cmd);
}

/* The next answer on fd within ms (unasked event lines skipped); empty: none came or it closed. */
static void hear(int fd, char *out, size_t len, int ms)
{
    double until = now_s() + ms / 1000.0;
    for (;;) {
        size_t have = 0;
        out[0] = '\0';
        while (fd >= 0 && have + 1 < len) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            int left = (int)((until - now_s()) * 1000);
            if (left < 0 || poll(&p, 1, left) <= 0 || recv(fd, out + have, 1, 0) != 1)
                break;
            if (out[have++] == '\n')
                break;
        }
        out[have] = '\0';
        if (strncmp(out, "{\"event\":", 9) != 0)
            return;
    }
}

static void ask(int fd, const char *cmd, char *out, size_t len)
{
    say(fd, cmd);
    hear(fd, out, len, 20000);
}

static double number(const char *answer, const char *name)
{
    char key[40];
    snprintf(key, sizeof key, "\"%s\":", name);
    const char *p = strstr(answer, key);
    return p ? strtod(p + strlen(key), NULL) : -1;
}

/* Each task's connection (kept: the one that swapped a slice out swaps it in). */
static int ctl[2];

static void expect_counts(const task *out, const task *in, const char *when)
{
    check(held_by(out->pid) == CTX, "%s: task %d (out) holds only its context on the card (%llu bytes)", when, out->seed,
          (unsigned long long)held_by(out->pid));
    check(held_by(in->pid) == CTX + SLICE, "%s: task %d (in) holds its context and slice (%llu bytes)", when, in->seed,
          (unsigned long long)held_by(in->pid));
    check(peak() <= CARD, "%s: the card never held more than its %llu bytes (peak %llu)", when, CARD, (unsigned long long)peak());
}

/*
 * One hand-over: `out` of t[o] on its connection while `in 10000` of t[i] runs on its own.
 * first_ms > 0: the swap-in is asked that long before the swap-out, and must still be waiting
 * (the card cannot hold it beside the resident slice).
 */
static void handover(task *t, int o, int i, int first_ms, const char *when)
{
    char ao[640], ai[640];
    say(ctl[i], "in 10000");
    if (first_ms > 0) {
        hear(ctl[i], ai, sizeof ai, first_ms);
        check(ai[0] == '\0', "%s: the swap-in waits while the card holds the other slice (%s)", when, ai);
    }
    ask(ctl[o], "out", ao, sizeof ao);
    if (first_ms == 0 || ai[0] == '\0')
        hear(ctl[i], ai, sizeof ai, 20000);
    check(has(ao, "\"ok\":true") && has(ao, "\"out\":true") && number(ao, "bytes") == (double)(SLICE - 2 * MiB + 123),
          "%s: task %d swapped out: %s", when, t[o].seed, ao);
    check(has(ai, "\"ok\":true") && has(ai, "\"op\":\"in\"") && has(ai, "\"out\":false"), "%s: task %d swapped in: %s", when,
          t[i].seed, ai);
    /* it waited for room (rounds that could back nothing; the rest of the time went to backing
     * what fitted and copying it, which the fake serializes) */
    if (first_ms > 0)
        check(number(ai, "waitSeconds") > 0, "%s: its wait for room is counted (%s)", when, ai);
    expect_counts(&t[o], &t[i], when);
    task_verify(&t[i], when);
}

/* A and B started; B swapped out, A resident. */
static void two(task *t)
{
    t[0] = start_task(1);
    map_card(); /* made by the first task's cuInit */
    ctl[0] = ctl_connect(t[0].pid);
    char a[640];
    ask(ctl[0], "out", a, sizeof a);
    check(has(a, "\"ok\":true"), "A out to make room for B: %s", a);
    t[1] = start_task(2);
    ctl[1] = ctl_connect(t[1].pid);
    ask(ctl[1], "out", a, sizeof a);
    check(has(a, "\"ok\":true"), "B out: %s", a);
    ask(ctl[0], "in", a, sizeof a);
    check(has(a, "\"ok\":true"), "A in: %s", a);
    expect_counts(&t[1], &t[0], "start");
}

static void t_overlap(void)
{
    task t[2];
    two(t);
    handover(t, 0, 1, 150, "hand-over 1 (in asked first)");
    handover(t, 1, 0, 0, "hand-over 2");
    handover(t, 0, 1, 0, "hand-over 3");
    /* B resident, A out: B ends, then A comes in (plain) and ends */
    task_end(&t[1]);
    char a[640];
    ask(ctl[0], "in", a, sizeof a);
    check(has(a, "\"ok\":true"), "A in at the end: %s", a);
    task_end(&t[0]);
    close(ctl[0]);
    close(ctl[1]);
}

static void t_bound(void)
{
    task t[2];
    two(t);
    char a[640];
    double t0 = now_s();
    ask(ctl[1], "in 300", a, sizeof a);
    double took = now_s() - t0;
    check(has(a, "\"ok\":false") && has(a, "\"code\":\"gpu-memory\""), "no room within 300 ms: refused: %s", a);
    check(took >= 0.28 && took < 5, "after its bound (%.3f s)", took);
    check(held_by(t[1].pid) == CTX, "B keeps nothing of what it had backed (%llu bytes)", (unsigned long long)held_by(t[1].pid));
    ask(ctl[1], "status", a, sizeof a);
    check(has(a, "\"out\":true"), "B stays swapped out: %s", a);
    /* in-stop (on another connection) ends a wait at once */
    int stop = ctl_connect(t[1].pid);
    say(ctl[1], "in 20000");
    usleep(100000);
    t0 = now_s();
    ask(stop, "in-stop", a, sizeof a);
    check(has(a, "\"ok\":true"), "in-stop answered at once: %s", a);
    hear(ctl[1], a, sizeof a, 10000);
    check(has(a, "\"code\":\"gpu-memory\"") && has(a, "stopped") && now_s() - t0 < 5, "the waiting swap-in stops: %s", a);
    close(stop);
    check(held_by(t[1].pid) == CTX, "B still keeps nothing (%llu bytes)", (unsigned long long)held_by(t[1].pid));
    ask(ctl[1], "in 0", a, sizeof a);
    check(has(a, "\"code\":\"usage\""), "in 0 is refused: %s", a);
    ask(ctl[1], "in soon", a, sizeof a);
    check(has(a, "\"code\":\"usage\""), "in soon is refused: %s", a);
    task_verify(&t[0], "A after B's refusals");
    handover(t, 0, 1, 0, "then the hand-over");
    task_end(&t[1]);
    ask(ctl[0], "in", a, sizeof a);
    task_end(&t[0]);
    close(ctl[0]);
    close(ctl[1]);
}

static void t_kill_in(void)
{
    task t[2];
    two(t);
    char a[640];
    say(ctl[1], "in 10000");
    usleep(200000); /* B waits on the card, with what fitted backed */
    check(held_by(t[1].pid) > CTX, "B's swap-in backed what fitted while it waits (%llu bytes)", (unsigned long long)held_by(t[1].pid));
    task_kill(&t[1]);
    hear(ctl[1], a, sizeof a, 5000);
    check(a[0] == '\0', "the connection of the killed task ends (%s)", a);
    close(ctl[1]);
    /* A goes on: its bytes, a swap of its own, and the card holds A alone */
    task_verify(&t[0], "A after B was killed");
    ask(ctl[0], "out", a, sizeof a);
    check(has(a, "\"ok\":true"), "A swaps out: %s", a);
    ask(ctl[0], "in", a, sizeof a);
    check(has(a, "\"ok\":true"), "and in: %s", a);
    task_verify(&t[0], "A after its own swap");
    uint64_t live = 0;
    for (int k = 0; k < FAKE_CUDA_SHARED_MEMORY_SLOTS; k++) {
        int32_t pid = card->slot[k].pid;
        if (pid > 0 && (kill(pid, 0) == 0 || errno == EPERM))
            live += card->slot[k].used;
    }
    check(live == CTX + SLICE, "the card holds A alone (%llu bytes)", (unsigned long long)live);
    task_end(&t[0]);
    close(ctl[0]);
}

static void t_kill_out(void)
{
    static const useconds_t delays[] = {0, 300, 1500, 6000};
    task t[2];
    two(t);
    char a[640];
    /* A ends, B comes in; each round B goes out for a fresh A, and A is killed mid-swap-out
     * while B swaps in */
    task_end(&t[0]);
    close(ctl[0]);
    ask(ctl[1], "in", a, sizeof a);
    check(has(a, "\"ok\":true"), "B in: %s", a);
    for (size_t k = 0; k < sizeof delays / sizeof delays[0]; k++) {
        ask(ctl[1], "out", a, sizeof a);
        check(has(a, "\"ok\":true"), "B out for a fresh A: %s", a);
        t[0] = start_task(10 + (int)k);
        ctl[0] = ctl_connect(t[0].pid);
        say(ctl[1], "in 10000");
        say(ctl[0], "out");
        usleep(delays[k]);
        task_kill(&t[0]);
        hear(ctl[1], a, sizeof a, 15000);
        check(has(a, "\"ok\":true") && has(a, "\"out\":false"), "A killed %u us into its swap-out: B comes in: %s", delays[k], a);
        hear(ctl[0], a, sizeof a, 5000);
        check(a[0] == '\0' || has(a, "\"op\":\"out\""), "A's connection ends (%s)", a);
        close(ctl[0]);
        check(held_by(t[1].pid) == CTX + SLICE, "B holds its slice (%llu bytes)", (unsigned long long)held_by(t[1].pid));
        task_verify(&t[1], "B after A was killed mid-swap-out");
    }
    task_end(&t[1]);
    close(ctl[1]);
}

int main(int argc, char **argv)
{
    scenario = argc > 1 ? argv[1] : "?";
    static const test_scenario all[] = {{"overlap", t_overlap}, {"bound", t_bound}, {"kill-in", t_kill_in}, {"kill-out", t_kill_out}};
    return run_scenario(all, sizeof all / sizeof all[0]);
}
