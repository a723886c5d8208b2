/*
 * swap_fault_test.c: a daemon or a task killed at each step of a swap (SWAP.md "Faults"),
 * against the fake libcuda under the sanitized libgpushare (run_shim_tests.sh). The step is
 * reached exactly, not by a sleep: the task's fake driver stops at the nth call of the entry
 * point the library makes at that step ("pauseAt", FAKE_CUDA.md), says so in a file, and waits
 * for the test's go; meanwhile the test does the fault.
 *
 * The task (forked before any CUDA call, its own fake configuration) holds 16 MiB of swappable
 * memory in three allocations on a 72 MiB card its processes share (the fake's sharedMemory),
 * beside a 4 MiB context; this process is the daemon, on the task's control socket.
 *
 *     swap_fault_test SCENARIO   daemon, task
 *
 * Steps: swap-out's staging (pinned before the hold), drain, copy, release; swap-in's create,
 * map, copy back (each allocation's first; the gate re-opens after the last, with no driver
 * call of its own: the held program running on after the swap-in shows it).
 *
 * daemon: the daemon's connection closes at the step (the daemon killed). The swap goes on to
 *         its end; the library then swaps a slice the closed connection left out back in by
 *         itself. The task goes on: a held copy runs, every byte at its address, the card holds
 *         exactly its context and slice (no GPU memory lost or held twice), the status says
 *         not out, and what is pinned is one staging (64 MiB chunks), which unstage frees.
 * task:   the task is killed at the step. The daemon's connection ends (no hang, no answer),
 *         and the slice's region accounting is back (a new task's slice fits the 24 MiB limit
 *         again, which two slices do not). Its GPU memory and pinned staging are the dead
 *         process's: the driver's and the kernel's to free (the fake's card counts no dead pid,
 *         so the card is not checked here: such a check could not fail).
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
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fake_cuda_busy.h"
#include "gs_cuda.h"
#include "test_check.h"
#include "swap_ctl_connect.h"
#include "fake_card_map.h"

#define MiB (1024ull * 1024ull)
#define CTX (4 * MiB)
#define NBUF 3
static const size_t SIZES[NBUF] = {8 * MiB, 4 * MiB + 123, 2 * MiB};
#define BYTES (14 * MiB + 123) /* what the allocations asked */
#define SLICE (16 * MiB)       /* on the card: SIZES rounded up to the 2 MiB granularity */
#define STAGING (64 * MiB) /* one 64 MiB chunk of pinned staging holds it */

typedef struct step {
    const char *name;
    const char *fn; /* the entry point the library calls at this step */
    int nth;        /* its nth call in the task (the allocations made NBUF cuMemCreate/cuMemMap) */
    bool in;        /* a swap-in's step (the slice is swapped out first, whole) */
} step;

static const step STEPS[] = {
    {"out: pinning the staging (before the hold)", "cuMemHostRegister_v2", 1, false},
    {"out: draining", "cuCtxSynchronize", 1, false},
    {"out: copying to the host", "cuMemcpyDtoH_v2_ptds", 1, false},
    {"out: releasing the GPU memory", "cuMemRelease", 1, false},
    {"in: creating the memory again", "cuMemCreate", NBUF + 1, true},
    {"in: mapping it at its address", "cuMemMap", NBUF + 1, true},
    {"in: copying back", "cuMemcpyHtoD_v2_ptds", 1, true},
};
#define NSTEPS (sizeof STEPS / sizeof STEPS[0])

static unsigned char pattern(int i, size_t k)
{
    return (unsigned char)(k * 31 + (size_t)i * 7 + (k >> 12));
}

/* ---- the task: its slice, then the daemon's commands on a pipe --------------------------- */

typedef struct task {
    pid_t pid;
    int cmd; /* the daemon writes v: verify (a held copy waits for the swap-in), then end */
    int ans; /* the task answers 1 (ready; good) or 0 */
} task;

static void task_main(int cmd, int ans)
{
    CUdevice d;
    CUcontext ctx;
    CUdeviceptr buf[NBUF];
    check(cuInit(0) == CUDA_SUCCESS && cuDeviceGet(&d, 0) == CUDA_SUCCESS, "task: cuInit");
    check(cuCtxCreate_v2(&ctx, 0, d) == CUDA_SUCCESS, "task: context");
    for (int i = 0; i < NBUF; i++) {
        unsigned char *b = malloc(SIZES[i]);
        for (size_t k = 0; k < SIZES[i]; k++)
            b[k] = pattern(i, k);
        check(cuMemAlloc_v2(&buf[i], SIZES[i]) == CUDA_SUCCESS && cuMemcpyHtoD_v2(buf[i], b, SIZES[i]) == CUDA_SUCCESS,
              "task: buffer %d allocated and filled", i);
        free(b);
    }
    (void)!write(ans, failures == 0 ? "1" : "0", 1);
    char c;
    if (read(cmd, &c, 1) != 1)
        exit(failures ? 1 : 0);
    for (int i = 0; i < NBUF; i++) {
        unsigned char *b = malloc(SIZES[i]);
        bool same = cuMemcpyDtoH_v2(b, buf[i], SIZES[i]) == CUDA_SUCCESS;
        for (size_t k = 0; same && k < SIZES[i]; k++)
            same = b[k] == pattern(i, k);
        check(same, "task: buffer %d has every byte it had, at the same address", i);
        free(b);
    }
    (void)!write(ans, failures == 0 ? "1" : "0", 1);
    (void)read(cmd, &c, 1); /* the daemon has looked at the card: free and end */
    for (int i = 0; i < NBUF; i++)
        check(cuMemFree_v2(buf[i]) == CUDA_SUCCESS, "task: free buffer %d", i);
    (void)cuCtxDestroy_v2(ctx);
    exit(failures ? 1 : 0);
}

/* A task whose fake driver pauses at `s` (NULL: nowhere), in pause directory `dir`. */
static task start_task(const step *s, const char *dir)
{
    int c[2], a[2];
    check(pipe(c) == 0 && pipe(a) == 0, "pipes");
    pid_t pid = fork();
    if (pid == 0) {
        checks = failures = 0; /* the task's own, not the daemon's so far */
        char json[768];
        int n = snprintf(json, sizeof json, "{\"contextBytes\": %llu, \"sharedMemory\": true, \"devices\": [{\"totalMemory\": %llu}]",
                         CTX, 72 * MiB);
        if (s != NULL)
            n += snprintf(json + n, sizeof json - (size_t)n, ", \"pauseAt\": {\"fn\": \"%s\", \"nth\": %d, \"dir\": \"%s\"}", s->fn,
                          s->nth, dir);
        snprintf(json + n, sizeof json - (size_t)n, "}");
        setenv("GPUSHARE_FAKE_CUDA", json, 1);
        close(c[1]);
        close(a[0]);
        task_main(c[0], a[1]);
    }
    close(c[0]);
    close(a[1]);
    task t = {.pid = pid, .cmd = c[1], .ans = a[0]};
    char r = 0;
    check(read(t.ans, &r, 1) == 1 && r == '1', "task ready");
    return t;
}

/* Sends the task command c and reads its answer within 30 s (a task that hangs fails, not the run). */
static bool task_says(const task *t, char c)
{
    char r = 0;
    struct pollfd p = {.fd = t->ans, .events = POLLIN};
    return write(t->cmd, &c, 1) == 1 && poll(&p, 1, 30000) == 1 && read(t->ans, &r, 1) == 1 && r == '1';
}

static void task_reap(task *t, bool killed)
{
    if (killed)
        kill(t->pid, SIGKILL);
    int st = 0;
    check(waitpid(t->pid, &st, 0) == t->pid && (killed || (WIFEXITED(st) && WEXITSTATUS(st) == 0)), "task ended (status %d)", st);
    close(t->cmd);
    close(t->ans);
    char sock[256];
    snprintf(sock, sizeof sock, "%s/%d.sock", getenv("GPUSHARE_SWAP"), (int)t->pid);
    (void)unlink(sock); /* the daemon's part: a dead process's socket (the library removes its own at exit) */
}

/* ---- the fake's card file ---------------------------------------------------------------- */

static fake_cuda_shared_memory_t *card;

static void map_card(void)
{
    if (card == NULL)
        card = fake_card_map();
}

/* What live processes hold on the card, all together, by the fake's count. */
static uint64_t card_used(void)
{
    uint64_t sum = 0;
    for (int k = 0; card != NULL && k < FAKE_CUDA_SHARED_MEMORY_SLOTS; k++) {
        int32_t pid = __atomic_load_n(&card->slot[k].pid, __ATOMIC_ACQUIRE);
        if (pid > 0 && (kill(pid, 0) == 0 || errno == EPERM))
            sum += __atomic_load_n(&card->slot[k].used, __ATOMIC_ACQUIRE);
    }
    return sum;
}

/* ---- the daemon's side ------------------------------------------------------------------- */

static void say(int fd, const char *cmd)
{
    char line[64];
    int n = snprintf(line, sizeof line, "%s\n", cmd);
    check(send(fd, line, (size_t)n, MSG_NOSIGNAL) == n, "send %s", cmd);
}

static void ask(int fd, const char *cmd, char *out, size_t len)
{
    say(fd, cmd);
    swap_ctl_hear(fd, out, len, 20000);
}

/* Waits (up to 20 s) for the task's fake driver to say it stopped at the step. */
static bool reached(const char *dir, pid_t pid)
{
    char path[512];
    snprintf(path, sizeof path, "%s/reached", dir);
    for (int ms = 0; ms < 20000; ms++) {
        FILE *f = fopen(path, "re");
        int who = 0;
        if (f != NULL) {
            bool read_pid = fscanf(f, "%d", &who) == 1;
            fclose(f);
            if (read_pid)
                return who == (int)pid;
        }
        usleep(1000);
    }
    return false;
}

static void go(const char *dir)
{
    char path[512];
    snprintf(path, sizeof path, "%s/go", dir);
    FILE *f = fopen(path, "we");
    check(f != NULL, "create %s", path);
    if (f != NULL)
        fclose(f);
}

/* Step k's task, taken to the step: the swap asked on a fresh connection (a swap-in's slice
 * swapped out whole first), the fake stopped there. */
static task at_step(size_t k, const char *dir, int *fd)
{
    const step *s = &STEPS[k];
    check(mkdir(dir, 0700) == 0, "pause directory %s", dir);
    task t = start_task(s, dir);
    map_card(); /* the first task made the card's file */
    *fd = swap_ctl_connect(t.pid, 200);
    char a[640];
    if (s->in) {
        ask(*fd, "out", a, sizeof a);
        check(has(a, "\"ok\":true") && field(a, "bytes") == BYTES, "%s: swapped out first: %s", s->name, a);
        check(card_used() == CTX, "%s: the card holds only the context while out (%llu)", s->name, (unsigned long long)card_used());
    }
    char path[600];
    snprintf(path, sizeof path, "%s/reached", dir);
    check(access(path, F_OK) != 0, "%s: the driver had not stopped before the swap was asked", s->name);
    say(*fd, s->in ? "in" : "out");
    check(reached(dir, t.pid), "%s: the task's driver stopped at %s #%d", s->name, s->fn, s->nth);
    return t;
}

static void t_daemon(void)
{
    for (size_t k = 0; k < NSTEPS; k++) {
        const step *s = &STEPS[k];
        char dir[512], a[640];
        snprintf(dir, sizeof dir, "%s-pause-daemon-%zu", getenv("GPUSHARE_SWAP"), k);
        int fd;
        task t = at_step(k, dir, &fd);
        close(fd); /* the daemon dies at this step */
        go(dir);
        /* The program goes on: a held copy waits for the swap-in the library does by itself. */
        check(task_says(&t, 'v'), "%s: the task goes on, bytes intact", s->name);
        check(card_used() == CTX + SLICE, "%s: the card holds its context and slice, nothing more or less (%llu)", s->name,
              (unsigned long long)card_used());
        int fd2 = swap_ctl_connect(t.pid, 200);
        ask(fd2, "status", a, sizeof a);
        check(has(a, "\"out\":false") && field(a, "bytes") == BYTES, "%s: a new daemon finds it resident: %s", s->name, a);
        check(field(a, "pinnedBytes") == STAGING, "%s: one staging pinned, no more: %s", s->name, a);
        ask(fd2, "unstage", a, sizeof a);
        check(has(a, "\"ok\":true") && field(a, "pinnedBytes") == 0, "%s: unstage frees it: %s", s->name, a);
        close(fd2);
        check(write(t.cmd, "f", 1) == 1, "end the task");
        task_reap(&t, failures > 0); /* one that hangs is killed: the run goes on to its summary */
        check(card_used() == 0, "%s: the card holds nothing once it ended (%llu)", s->name, (unsigned long long)card_used());
    }
}

static void t_task(void)
{
    for (size_t k = 0; k < NSTEPS; k++) {
        const step *s = &STEPS[k];
        char dir[512], a[640];
        snprintf(dir, sizeof dir, "%s-pause-task-%zu", getenv("GPUSHARE_SWAP"), k);
        int fd;
        task t = at_step(k, dir, &fd);
        task_reap(&t, true); /* the task dies at this step */
        go(dir);
        swap_ctl_hear(fd, a, sizeof a, 5000);
        check(a[0] == '\0', "%s: the daemon's connection ends, no answer (%s)", s->name, a);
        close(fd);
        /* Its GPU memory went with the process (the driver's doing, as the fake's card, which
         * counts no dead pid, mirrors); its region accounting is the library's and the daemon's:
         * back, or a new task's slice would not fit the limit (GPUSHARE_MEMORY_LIMIT, 24 MiB). */
        task n = start_task(NULL, dir);
        check(task_says(&n, 'v'), "%s: a new task's slice fits", s->name);
        check(write(n.cmd, "f", 1) == 1, "end the new task");
        task_reap(&n, false);
    }
}

int main(int argc, char **argv)
{
    scenario = argc > 1 ? argv[1] : "?";
    static const test_scenario all[] = {{"daemon", t_daemon}, {"task", t_task}};
    return run_scenario(all, sizeof all / sizeof all[0]);
}
