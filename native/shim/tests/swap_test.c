/*
 * swap_test.c: slice swap (swap.c, SWAP.md) against the fake libcuda, under the sanitized
 * libgpushare with GPUSHARE_SWAP set (run_shim_tests.sh). The program is both the task and,
 * on another thread or process, the daemon: it talks to the library's control socket.
 *
 *     swap_test SCENARIO     bytes, held, refuse, novmm, hostmem, gone, kill, move, managed, ahead, noswap
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gs_cuda.h"
#include "test_check.h"
#include "swap_ctl_connect.h"

#define MiB (1024ull * 1024ull)

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static CUcontext ctx;

static void setup(void)
{
    CUdevice d;
    check(cuInit(0) == CUDA_SUCCESS && cuDeviceGet(&d, 0) == CUDA_SUCCESS, "cuInit, device 0");
    check(cuCtxCreate_v2(&ctx, 0, d) == CUDA_SUCCESS, "context");
}

/* The fake driver's own free memory (past libgpushare, whose answer is the slice's view). */
static size_t fake_free(void)
{
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    CUresult (*info)(size_t *, size_t *) = (CUresult(*)(size_t *, size_t *))libc_dlsym(h, "cuMemGetInfo_v2");
    size_t f = 0, t = 0;
    check(info != NULL && info(&f, &t) == CUDA_SUCCESS, "the fake's cuMemGetInfo_v2");
    return f;
}

/* ---- the daemon's side: one connection to a process's control socket ------------------- */

static int ctl_connect(pid_t pid)
{
    return swap_ctl_connect(pid, 200);
}

/* Sends `cmd` (none: NULL), returns the next line in out (empty when the connection closed). */
static void ask(int fd, const char *cmd, char *out, size_t len)
{
    char line[64];
    snprintf(line, sizeof line, "%s\n", cmd != NULL ? cmd : "");
    out[0] = '\0';
    if (fd < 0 || (cmd != NULL && send(fd, line, strlen(line), MSG_NOSIGNAL) < 0))
        return;
    swap_ctl_hear(fd, out, len, -1);
}

/* ---- the task's memory ------------------------------------------------------------------ */

#define NBUF 3
static const size_t SIZES[NBUF] = {4 * MiB, 6 * MiB + 123, 2 * MiB};
static CUdeviceptr buf[NBUF];
static unsigned char *want[NBUF];

static void fill(void)
{
    for (int i = 0; i < NBUF; i++) {
        check(cuMemAlloc_v2(&buf[i], SIZES[i]) == CUDA_SUCCESS, "allocate buffer %d", i);
        want[i] = malloc(SIZES[i]);
        for (size_t k = 0; k < SIZES[i]; k++)
            want[i][k] = (unsigned char)(k * 31 + (size_t)i * 7 + (k >> 12));
        check(cuMemcpyHtoD_v2(buf[i], want[i], SIZES[i]) == CUDA_SUCCESS, "fill buffer %d", i);
    }
}

static void verify(const char *when)
{
    for (int i = 0; i < NBUF; i++) {
        unsigned char *got = malloc(SIZES[i]);
        check(cuMemcpyDtoH_v2(got, buf[i], SIZES[i]) == CUDA_SUCCESS, "%s: read buffer %d", when, i);
        check(memcmp(got, want[i], SIZES[i]) == 0, "%s: buffer %d has every byte it had, at the same address", when, i);
        free(got);
    }
}

static void release(void)
{
    for (int i = 0; i < NBUF; i++) {
        check(cuMemFree_v2(buf[i]) == CUDA_SUCCESS, "free buffer %d", i);
        free(want[i]);
    }
}

static size_t swapped_bytes(void)
{
    size_t sum = 0;
    for (int i = 0; i < NBUF; i++)
        sum += SIZES[i];
    return sum;
}

/* Swap out and in: bytes identical at the same addresses, the GPU memory free while out. */
static void t_bytes(void)
{
    setup();
    fill();
    CUdeviceptr small = 0; /* below the granularity: stays resident, untouched */
    check(cuMemAlloc_v2(&small, 4096) == CUDA_SUCCESS, "a small allocation");
    int fd = ctl_connect(getpid());
    char a[640];
    ask(fd, "status", a, sizeof a);
    check(has(a, "\"ok\":true") && field(a, "bytes") == swapped_bytes() && field(a, "allocations") == NBUF,
          "status: %s", a);
    size_t before = fake_free();
    ask(fd, "out", a, sizeof a);
    check(has(a, "\"ok\":true") && has(a, "\"out\":true") && field(a, "bytes") == swapped_bytes(), "out: %s", a);
    size_t during = fake_free();
    /* 4 + 8 + 2 MiB of 2 MiB granules came back */
    check(during - before == 14 * MiB, "the GPU memory is free while swapped out (%zu bytes came back)", during - before);
    ask(fd, "out", a, sizeof a);
    check(has(a, "\"ok\":false") && has(a, "\"code\":\"state\""), "a second out is refused: %s", a);
    ask(fd, "in", a, sizeof a);
    check(has(a, "\"ok\":true") && has(a, "\"out\":false"), "in: %s", a);
    check(fake_free() == before, "the memory is taken again after swap-in");
    verify("after a swap");
    /* the staging stays pinned for the next swap, which pins nothing */
    ask(fd, "out", a, sizeof a);
    check(has(a, "\"ok\":true") && has(a, "\"pinSeconds\":0.000000"), "a second swap reuses the staging: %s", a);
    ask(fd, "in", a, sizeof a);
    verify("after a second swap");
    ask(fd, "unstage", a, sizeof a);
    check(has(a, "\"ok\":true") && field(a, "pinnedBytes") == 0, "unstage: %s", a);
    ask(fd, "bogus", a, sizeof a);
    check(has(a, "\"code\":\"usage\""), "an unknown command is refused: %s", a);
    close(fd);
    check(cuMemFree_v2(small) == CUDA_SUCCESS, "free the small allocation");
    release();
}

/* ---- held: a launch, a copy and an allocation during the swap wait and run after it ---- */

typedef struct held_arg {
    int what; /* 0: launch, 1: copy, 2: allocation, 3: stream-ordered copy */
    _Atomic int done;
    double at;
    CUresult r;
} held_arg;

static void *held_call(void *p)
{
    held_arg *h = p;
    cuCtxSetCurrent(ctx);
    if (h->what == 0) {
        CUmodule m;
        CUfunction f;
        CUresult r = cuModuleLoadData(&m, "x");
        if (r == CUDA_SUCCESS)
            r = cuModuleGetFunction(&f, m, "sleep_1000");
        if (r == CUDA_SUCCESS)
            r = cuLaunchKernel(f, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL);
        if (r == CUDA_SUCCESS)
            r = cuCtxSynchronize();
        h->r = r;
    } else if (h->what == 1) {
        unsigned char b[64];
        h->r = cuMemcpyDtoH_v2(b, buf[0], sizeof b);
        if (h->r == CUDA_SUCCESS && memcmp(b, want[0], sizeof b) != 0)
            h->r = CUDA_ERROR_UNKNOWN;
    } else if (h->what == 3) {
        unsigned char b[64];
        h->r = cuMemcpyDtoHAsync_v2(b, buf[1], sizeof b, NULL);
        if (h->r == CUDA_SUCCESS)
            h->r = cuCtxSynchronize();
        if (h->r == CUDA_SUCCESS && memcmp(b, want[1], sizeof b) != 0)
            h->r = CUDA_ERROR_UNKNOWN;
    } else {
        CUdeviceptr p2;
        h->r = cuMemAlloc_v2(&p2, 2 * MiB);
        if (h->r == CUDA_SUCCESS)
            h->r = cuMemFree_v2(p2);
    }
    h->at = now_s();
    atomic_store(&h->done, 1);
    return NULL;
}

static void t_held(void)
{
    setup();
    fill();
    int fd = ctl_connect(getpid());
    char a[640];
    ask(fd, "out", a, sizeof a);
    check(has(a, "\"ok\":true"), "out: %s", a);
    held_arg h[4] = {{.what = 0}, {.what = 1}, {.what = 2}, {.what = 3}};
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, held_call, &h[i]);
    usleep(300000);
    for (int i = 0; i < 4; i++)
        check(!atomic_load(&h[i].done), "%s waits while the slice is swapped out",
              (const char *[]){"a launch", "a copy", "an allocation", "a stream-ordered copy"}[i]);
    /* the waiting program says so once, unasked, on the connection that swapped it out */
    ask(fd, NULL, a, sizeof a);
    char want_line[64];
    snprintf(want_line, sizeof want_line, "{\"event\":\"wants-in\",\"pid\":%d}\n", (int)getpid());
    check(strcmp(a, want_line) == 0, "one wants-in line: %s", a);
    double in_at = now_s();
    ask(fd, "in", a, sizeof a);
    check(has(a, "\"ok\":true"), "in: %s", a);
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        check(h[i].r == CUDA_SUCCESS && h[i].at >= in_at, "%s ran after the swap-in (%d)",
              (const char *[]){"the launch", "the copy", "the allocation", "the stream-ordered copy"}[i], (int)h[i].r);
    }
    verify("after held calls");
    ask(fd, "status", a, sizeof a);
    check(has(a, "\"op\":\"status\""), "no second wants-in for one swap-out: %s", a);
    /* each swap-out is told of anew */
    ask(fd, "out", a, sizeof a);
    check(has(a, "\"ok\":true"), "out again: %s", a);
    held_arg h2 = {.what = 1};
    pthread_t t2;
    pthread_create(&t2, NULL, held_call, &h2);
    ask(fd, NULL, a, sizeof a);
    check(strcmp(a, want_line) == 0, "wants-in after the second swap-out: %s", a);
    ask(fd, "in", a, sizeof a);
    check(has(a, "\"ok\":true"), "in again: %s", a);
    pthread_join(t2, NULL);
    check(h2.r == CUDA_SUCCESS, "the copy ran after the second swap-in");
    close(fd);
    release();
}

/* A refusal of `cmd` with `code`: nothing changes (the program goes on, bytes intact, the GPU
 * memory where it was, nothing left pinned or out). */
static void refused(const char *cmd, const char *code, const char *why)
{
    setup();
    fill();
    int fd = ctl_connect(getpid());
    char a[640], want[48];
    size_t before = fake_free();
    ask(fd, cmd, a, sizeof a);
    snprintf(want, sizeof want, "\"code\":\"%s\"", code);
    check(has(a, "\"ok\":false") && has(a, want), "%s (%s): %s", cmd, why, a);
    check(fake_free() == before, "%s: no GPU memory moved", why);
    ask(fd, "status", a, sizeof a);
    check(has(a, "\"out\":false") && field(a, "pinnedBytes") == 0, "%s: nothing pinned, not out: %s", why, a);
    verify(why);
    close(fd);
    release();
}

static void t_refuse(void)
{
    refused("in", "state", "in before out");
}

/* GPUSHARE_FAKE_CUDA's errors fail cuMemHostAlloc: the staging cannot be pinned. */
static void t_hostmem(void)
{
    refused("out", "host-memory", "no pinned host memory");
}

/* The fake's cuMemGetAllocationGranularity fails: no VMM; memory is plain, out is refused. */
static void t_novmm(void)
{
    refused("out", "no-vmm", "no VMM");
}

/* The daemon's connection closes with the slice out: the library swaps it back in. */
static void t_gone(void)
{
    setup();
    fill();
    int fd = ctl_connect(getpid());
    char a[640];
    size_t before = fake_free();
    ask(fd, "out", a, sizeof a);
    check(has(a, "\"ok\":true"), "out: %s", a);
    close(fd); /* the daemon dies */
    held_arg h = {.what = 0};
    pthread_t t;
    pthread_create(&t, NULL, held_call, &h);
    pthread_join(t, NULL);
    check(h.r == CUDA_SUCCESS, "the task goes on once the daemon is gone (%d)", (int)h.r);
    check(fake_free() == before, "its memory is back on the GPU");
    verify("after the daemon went away");
    fd = ctl_connect(getpid());
    ask(fd, "status", a, sizeof a);
    check(has(a, "\"out\":false"), "a new connection finds it swapped in: %s", a);
    close(fd);
    release();
}

/* The task killed at each step of a swap: its region accounting comes back (a new process
 * gets the whole limit), and the daemon's connection ends instead of hanging. */
static void t_kill(void)
{
    const useconds_t delays[] = {0, 200, 1000, 5000, 50000};
    for (size_t k = 0; k < sizeof delays / sizeof delays[0]; k++) {
        int ready[2];
        check(pipe(ready) == 0, "pipe");
        pid_t pid = fork();
        if (pid == 0) {
            setup();
            CUdeviceptr p;
            check(cuMemAlloc_v2(&p, 40 * MiB) == CUDA_SUCCESS, "child: 40 MiB");
            check(cuMemsetD8_v2(p, 0x5a, 40 * MiB) == CUDA_SUCCESS, "child: set");
            (void)!write(ready[1], "r", 1);
            for (;;)
                pause();
        }
        char c;
        close(ready[1]);
        check(read(ready[0], &c, 1) == 1, "child ready");
        close(ready[0]);
        int fd = ctl_connect(pid);
        (void)!send(fd, "out\n", 4, MSG_NOSIGNAL);
        usleep(delays[k]);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        char a[640];
        ask(fd, "status", a, sizeof a);
        /* either the out's answer came before the kill, or nothing: never a hang */
        check(a[0] == '\0' || has(a, "\"op\":\"out\""), "kill after %u us: the connection ends (%s)", delays[k], a);
        close(fd);
        char sock[256];
        snprintf(sock, sizeof sock, "%s/%d.sock", getenv("GPUSHARE_SWAP"), (int)pid);
        (void)unlink(sock); /* the daemon's part: a dead process's socket */
    }
    /* the limit is 64 MiB: 40 MiB fits only if every killed child's accounting came back */
    setup();
    CUdeviceptr p;
    check(cuMemAlloc_v2(&p, 40 * MiB) == CUDA_SUCCESS, "after the kills the slice's memory is free again");
    check(cuMemFree_v2(p) == CUDA_SUCCESS, "free");
}

/* ---- move: out on device 0, the rest checkpointed and restored onto device 1 (the driver's
 * GPU pairs, asked by another process as the daemon asks), in there (SWAP.md "Moving a slice") */

static void uuid_of(int ordinal, CUuuid *u)
{
    CUdevice d;
    check(cuDeviceGet(&d, ordinal) == CUDA_SUCCESS && cuDeviceGetUuid(u, d) == CUDA_SUCCESS, "the UUID of device %d", ordinal);
}

/* "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", as the library's answers write it. */
static void uuid_text(const CUuuid *u, char *out, size_t len)
{
    const unsigned char *b = (const unsigned char *)u->bytes;
    snprintf(out, len, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4],
             b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

static void t_move(void)
{
    setup();
    fill();
    CUuuid a, b, now;
    uuid_of(0, &a);
    uuid_of(1, &b);
    char ta[64], tb[64], want[96];
    uuid_text(&a, ta, sizeof ta);
    uuid_text(&b, tb, sizeof tb);
    int fd = ctl_connect(getpid());
    char ans[640];
    ask(fd, "out", ans, sizeof ans);
    snprintf(want, sizeof want, "\"devices\":\"%s\"", ta);
    check(has(ans, "\"ok\":true") && has(ans, want), "out on device 0 (%s): %s", ta, ans);
    /* the daemon's part, in another process: lock, checkpoint, restore with the pairs, unlock */
    char pid[16];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    pid_t helper = fork();
    if (helper == 0) {
        execl("/proc/self/exe", "swap_test", "move-helper", pid, NULL);
        _exit(127);
    }
    int st = 0;
    check(waitpid(helper, &st, 0) == helper && WIFEXITED(st) && WEXITSTATUS(st) == 0, "the helper moved the rest onto device 1 (status %d)", st);
    uuid_of(0, &now);
    check(memcmp(&now, &b, sizeof b) == 0, "device 0 is the other GPU now");
    ask(fd, "in", ans, sizeof ans);
    snprintf(want, sizeof want, "\"devices\":\"%s\"", tb);
    check(has(ans, "\"ok\":true") && has(ans, want), "in on the new GPU (%s): %s", tb, ans);
    verify("after a move"); /* every byte, at the same addresses */
    /* the program goes on there: it writes and reads its moved memory */
    check(cuMemsetD8_v2(buf[0], 0x3c, SIZES[0]) == CUDA_SUCCESS, "a set on the moved memory");
    unsigned char c = 0;
    check(cuMemcpyDtoH_v2(&c, buf[0] + SIZES[0] - 1, 1) == CUDA_SUCCESS && c == 0x3c, "and a copy back (%02x)", c);
    close(fd);
    release();
}

/* The helper: another process that moves `pid` with the checkpoint API, device 0 <-> 1. */
static int move_helper(const char *pid_text)
{
    int pid = atoi(pid_text);
    CUuuid a, b;
    check(cuInit(0) == CUDA_SUCCESS, "helper: cuInit");
    uuid_of(0, &a);
    uuid_of(1, &b);
    CUcheckpointGpuPair pairs[2] = {{a, b}, {b, a}};
    CUcheckpointRestoreArgs args;
    memset(&args, 0, sizeof args);
    args.gpuPairs = pairs;
    args.gpuPairsCount = 2;
    CUresult r[4] = {cuCheckpointProcessLock(pid, NULL), CUDA_ERROR_UNKNOWN, CUDA_ERROR_UNKNOWN, CUDA_ERROR_UNKNOWN};
    if (r[0] == CUDA_SUCCESS)
        r[1] = cuCheckpointProcessCheckpoint(pid, NULL);
    if (r[1] == CUDA_SUCCESS)
        r[2] = cuCheckpointProcessRestore(pid, &args);
    if (r[2] == CUDA_SUCCESS)
        r[3] = cuCheckpointProcessUnlock(pid, NULL);
    if (r[3] != CUDA_SUCCESS)
        fprintf(stderr, "move helper: lock %d, checkpoint %d, restore %d, unlock %d\n", (int)r[0], (int)r[1], (int)r[2], (int)r[3]);
    return r[3] == CUDA_SUCCESS ? 0 : 1;
}

/* ---- stage ahead: the program's allocations do not wait for the whole pinning (the fake pins
 * each 64 MiB chunk in "hostAllocMicros"; on an H100 12 GiB took 5.6 s, issue 22) */

typedef struct {
    int fd;
    double took;
    char ans[640];
} stage_arg;

static void *stage_call(void *arg)
{
    stage_arg *a = arg;
    double t0 = now_s();
    ask(a->fd, "stage", a->ans, sizeof a->ans);
    a->took = now_s() - t0;
    return NULL;
}

static void t_ahead(void)
{
    setup();
    CUdeviceptr big[3];
    for (int i = 0; i < 3; i++)
        check(cuMemAlloc_v2(&big[i], 64 * MiB) == CUDA_SUCCESS, "allocate 64 MiB (%d)", i);
    stage_arg a = {.fd = ctl_connect(getpid())};
    pthread_t t;
    check(pthread_create(&t, NULL, stage_call, &a) == 0, "the stage request's thread");
    usleep(100000);
    double t0 = now_s();
    CUdeviceptr p = 0;
    check(cuMemAlloc_v2(&p, 4 * MiB) == CUDA_SUCCESS && cuMemFree_v2(p) == CUDA_SUCCESS, "an allocation while the staging is pinned");
    double alloc_s = now_s() - t0;
    pthread_join(t, NULL);
    check(has(a.ans, "\"ok\":true") && has(a.ans, "\"op\":\"stage\""), "stage: %s", a.ans);
    check(alloc_s < a.took / 2, "the allocation took %.3f s of the pinning's %.3f s (one chunk at most)", alloc_s, a.took);
    char ans[640];
    ask(a.fd, "out", ans, sizeof ans);
    check(has(ans, "\"ok\":true") && has(ans, "\"pinSeconds\":0.000000,"), "out after the stage pins nothing more: %s", ans);
    ask(a.fd, "in", ans, sizeof ans);
    check(has(ans, "\"ok\":true"), "in: %s", ans);
    close(a.fd);
    for (int i = 0; i < 3; i++)
        check(cuMemFree_v2(big[i]) == CUDA_SUCCESS, "free");
}

/* GPUSHARE_OVERCOMMIT=1: managed memory beyond the card's free memory is refused, within it given. */
static void t_managed(void)
{
    setup();
    size_t free = 0, total = 0;
    check(cuMemGetInfo_v2(&free, &total) == CUDA_SUCCESS, "meminfo");
    CUdeviceptr p = 0;
    check(cuMemAllocManaged(&p, free + 2 * MiB, CU_MEM_ATTACH_GLOBAL) == CUDA_ERROR_OUT_OF_MEMORY && p == 0,
          "managed memory beyond the free %zu bytes is refused", free);
    check(cuMemAllocManaged(&p, 2 * MiB, CU_MEM_ATTACH_GLOBAL) == CUDA_SUCCESS, "managed memory within it is given");
    check(cuMemFree_v2(p) == CUDA_SUCCESS, "free");
}

/* Whether <GPUSHARE_SWAP>/<pid>.<ext> exists. */
static bool swap_file(pid_t pid, const char *ext)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%d.%s", getenv("GPUSHARE_SWAP"), (int)pid, ext);
    return access(path, F_OK) == 0;
}

/* A pool allocation (never swapped) before any swappable one says <pid>.noswap at once; a
 * swappable allocation then opens the socket (which the daemon prefers); a forked child says
 * its own; a process with its socket says nothing more. */
static void t_noswap(void)
{
    setup();
    pid_t me = getpid();
    check(!swap_file(me, "noswap") && !swap_file(me, "sock"), "nothing before any allocation");
    CUdeviceptr a = 0, b = 0;
    check(cuMemAllocAsync(&a, 4 * MiB, NULL) == CUDA_SUCCESS, "cuMemAllocAsync");
    check(swap_file(me, "noswap") && !swap_file(me, "sock"), "a pool allocation says noswap");
    check(cuMemAlloc_v2(&b, 8 * MiB) == CUDA_SUCCESS && swap_file(me, "sock"), "a swappable allocation opens the socket");
    pid_t child = fork();
    if (child == 0) {
        /* The child's own: its socket opens at its first swappable allocation, none here. */
        CUdeviceptr c = 0;
        bool ok = cuMemAllocAsync(&c, 2 * MiB, NULL) == CUDA_SUCCESS && swap_file(getpid(), "noswap");
        _exit(ok ? 0 : 1);
    }
    int st = 0;
    check(child > 0 && waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0, "a forked child says its own noswap");
    check(cuMemFreeAsync(a, NULL) == CUDA_SUCCESS && cuStreamSynchronize(NULL) == CUDA_SUCCESS && cuMemFree_v2(b) == CUDA_SUCCESS, "frees");
}

int main(int argc, char **argv)
{
    scenario = argc > 1 ? argv[1] : "?";
    if (argc > 2 && strcmp(scenario, "move-helper") == 0)
        return move_helper(argv[2]);
    static const test_scenario all[] = {{"bytes", t_bytes}, {"held", t_held}, {"refuse", t_refuse},
                                        {"hostmem", t_hostmem}, {"novmm", t_novmm}, {"gone", t_gone},
                                        {"kill", t_kill}, {"move", t_move}, {"managed", t_managed},
                                        {"ahead", t_ahead}, {"noswap", t_noswap}};
    return run_scenario(all, sizeof all / sizeof all[0]);
}
