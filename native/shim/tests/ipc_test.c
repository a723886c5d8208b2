/*
 * ipc_test.c: CUDA IPC handles of swappable memory (ipc.c, SWAP.md "Sharing memory between
 * processes") against the fake libcuda, under the sanitized libgpushare with GPUSHARE_SWAP
 * set (run_shim_tests.sh). Two real processes: this one, and itself started again (fork and
 * exec, so the other is a fresh process under the same LD_PRELOAD) with a handle in hex.
 *
 *     ipc_test SCENARIO     share, passthrough, bad, swap, plain (with the fake's noShareable)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
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

static CUcontext ctx;

/* Files the processes leave each other, in the scenario's own swap directory. */
static const char *in_swap_dir(const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", getenv("GPUSHARE_SWAP"), name);
    return buf;
}
static const char *held_file(void)
{
    static char b[512];
    return in_swap_dir("held", b, sizeof b);
}
static const char *dead_file(void)
{
    static char b[512];
    return in_swap_dir("dead.hex", b, sizeof b);
}

static void setup(void)
{
    CUdevice d;
    check(cuInit(0) == CUDA_SUCCESS && cuDeviceGet(&d, 0) == CUDA_SUCCESS, "cuInit, device 0");
    check(cuCtxCreate_v2(&ctx, 0, d) == CUDA_SUCCESS, "context");
}

static void hex_of(const CUipcMemHandle *h, char *out)
{
    for (size_t i = 0; i < sizeof h->reserved; i++)
        sprintf(out + 2 * i, "%02x", (unsigned char)h->reserved[i]);
}

static CUipcMemHandle handle_of(const char *hex)
{
    CUipcMemHandle h;
    memset(&h, 0, sizeof h);
    for (size_t i = 0; i < sizeof h.reserved && hex[2 * i] && hex[2 * i + 1]; i++) {
        unsigned v = 0;
        sscanf(hex + 2 * i, "%2x", &v);
        h.reserved[i] = (char)v;
    }
    return h;
}

/* Runs this program again as `ipc_test <role> <args...>` and returns its exit status. With
 * `hold` set, returns at once with the child's pid in *pid and its stdin a pipe in *to. */
static int child(const char *role, const char *a1, const char *a2, bool hold, pid_t *pid, int *to)
{
    int p[2];
    check(pipe(p) == 0, "pipe");
    pid_t c = fork();
    if (c == 0) {
        dup2(p[0], 0);
        close(p[1]);
        char *argv[] = {"ipc_test", (char *)role, (char *)a1, (char *)a2, NULL};
        execv("/proc/self/exe", argv);
        _exit(127);
    }
    close(p[0]);
    if (hold) {
        *pid = c;
        *to = p[1];
        return 0;
    }
    close(p[1]);
    int st = 0;
    check(waitpid(c, &st, 0) == c, "wait for the %s process", role);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static unsigned char pattern(size_t i, unsigned seed)
{
    return (unsigned char)(i * 31u + seed + (i >> 12));
}

/* Our handle format (ipc.c's gs_ipc_wire), to damage handles on purpose. */
typedef struct wire {
    uint32_t magic;
    uint16_t version, flags;
    int32_t pid, dev;
    uint64_t proc, token, offset, size, check, zero;
} wire;

static uint64_t fnv(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static CUipcMemHandle resealed(CUipcMemHandle h, void (*edit)(wire *))
{
    wire w;
    memcpy(&w, h.reserved, sizeof w);
    edit(&w);
    w.check = fnv(&w, offsetof(wire, check));
    memcpy(h.reserved, &w, sizeof w);
    return h;
}

/* ---- share: bytes written by one process are read by the other, both ways ---------------- */

#define SHARE_BYTES (6 * MiB + 4096) /* three 2 MiB granules, the last one partly */
#define SHARE_OFFSET (2 * MiB + 512)

static void t_share(void)
{
    setup();
    CUdeviceptr p = 0;
    check(cuMemAlloc_v2(&p, SHARE_BYTES) == CUDA_SUCCESS, "allocate %llu bytes (swappable)", (unsigned long long)SHARE_BYTES);
    unsigned char *host = malloc(SHARE_BYTES);
    for (size_t i = 0; i < SHARE_BYTES; i++)
        host[i] = pattern(i, 1);
    check(cuMemcpyHtoD_v2(p, host, SHARE_BYTES) == CUDA_SUCCESS, "write the pattern");
    /* the driver's own IPC refuses this memory: it is VMM-backed */
    void *drv = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    CUresult (*real_get)(CUipcMemHandle *, CUdeviceptr) =
        (CUresult(*)(CUipcMemHandle *, CUdeviceptr))libc_dlsym(drv, "cuIpcGetMemHandle");
    CUipcMemHandle h, h2, again;
    check(real_get != NULL && real_get(&h, p) == CUDA_ERROR_INVALID_VALUE,
          "the driver's cuIpcGetMemHandle refuses VMM-backed memory (why ipc.c exists)");
    check(cuIpcGetMemHandle(&h, p) == CUDA_SUCCESS, "cuIpcGetMemHandle of the base");
    check(cuIpcGetMemHandle(&again, p) == CUDA_SUCCESS && memcmp(&h, &again, sizeof h) == 0,
          "asked again: the same handle");
    check(cuIpcGetMemHandle(&h2, p + SHARE_OFFSET) == CUDA_SUCCESS, "cuIpcGetMemHandle of a pointer inside it");
    char hex[129], hex2[129];
    hex_of(&h, hex);
    hex_of(&h2, hex2);
    check(child("share-child", hex, hex2, false, NULL, NULL) == 0, "the other process read and wrote the memory");
    /* the child wrote pattern 2 over the first MiB and after the offset */
    check(cuMemcpyDtoH_v2(host, p, SHARE_BYTES) == CUDA_SUCCESS, "read back");
    size_t bad = 0;
    for (size_t i = 0; i < SHARE_BYTES; i++) {
        bool written = i < MiB || (i >= SHARE_OFFSET && i < SHARE_OFFSET + MiB);
        bad += host[i] != pattern(i, written ? 2 : 1);
    }
    check(bad == 0, "the other process's writes are here, the rest intact (%zu bytes differ)", bad);
    /* the export ended with the child: a swap-out is allowed again (checked in t_swap) */
    check(cuMemFree_v2(p) == CUDA_SUCCESS, "free");
    /* a handle of freed memory opens nothing (tested in the other process) */
    check(child("open-fails", hex, "400", false, NULL, NULL) == 0, "a freed allocation's handle: CUDA_ERROR_INVALID_HANDLE");
    free(host);
}

static int share_child(const char *hex, const char *hex2)
{
    setup();
    CUipcMemHandle h = handle_of(hex), h2 = handle_of(hex2);
    CUdeviceptr p = 0, q = 0, p2 = 0;
    check(cuIpcOpenMemHandle_v2(&p, h, CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS) == CUDA_SUCCESS, "open the handle");
    check(p != 0, "a pointer");
    check(cuIpcOpenMemHandle_v2(&q, h, CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS) == CUDA_SUCCESS && q == p,
          "opened twice: the same pointer, one more reference");
    check(cuIpcOpenMemHandle(&p2, h2, CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS) == CUDA_SUCCESS && p2 == p + SHARE_OFFSET,
          "the interior handle (old ABI entry point): the same mapping at its offset");
    unsigned char *host = malloc(SHARE_BYTES);
    check(cuMemcpyDtoH_v2(host, p, SHARE_BYTES) == CUDA_SUCCESS, "read it");
    size_t bad = 0;
    for (size_t i = 0; i < SHARE_BYTES; i++)
        bad += host[i] != pattern(i, 1);
    check(bad == 0, "every byte the other process wrote (%zu differ)", bad);
    for (size_t i = 0; i < MiB; i++) {
        host[i] = pattern(i, 2);
        host[SHARE_OFFSET + i] = pattern(SHARE_OFFSET + i, 2);
    }
    check(cuMemcpyHtoD_v2(p, host, MiB) == CUDA_SUCCESS, "write through the base");
    check(cuMemcpyHtoD_v2(p2, host + SHARE_OFFSET, MiB) == CUDA_SUCCESS, "write through the interior pointer");
    check(cuIpcCloseMemHandle(p2) == CUDA_SUCCESS && cuIpcCloseMemHandle(q) == CUDA_SUCCESS, "close two references");
    check(cuMemcpyHtoD_v2(p, host, 16) == CUDA_SUCCESS, "still mapped while one reference is left");
    check(cuIpcCloseMemHandle(p) == CUDA_SUCCESS, "close the last");
    check(cuIpcCloseMemHandle(p) == CUDA_ERROR_INVALID_VALUE, "closed again: the driver's answer for an unknown pointer");
    free(host);
    return failures ? 1 : 0;
}

/* Opens hex and expects the error `code`. */
static int open_fails(const char *hex, const char *code)
{
    setup();
    CUdeviceptr p = 0;
    CUresult r = cuIpcOpenMemHandle_v2(&p, handle_of(hex), CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS);
    check(r == (CUresult)atoi(code), "open: CUDA error %d, expected %s", (int)r, code);
    check(p == 0, "no pointer");
    return failures ? 1 : 0;
}

/* ---- passthrough: memory that is not swappable, and handles that are not ours ------------ */

static void t_passthrough(void)
{
    setup();
    CUdeviceptr small = 0;
    check(cuMemAlloc_v2(&small, MiB) == CUDA_SUCCESS, "a 1 MiB allocation (below the granularity: the driver's)");
    CUipcMemHandle h;
    check(cuIpcGetMemHandle(&h, small) == CUDA_SUCCESS, "its handle comes from the driver");
    check(memcmp(h.reserved, "fakecuda-ipc", 12) == 0, "in the driver's format");
    char hex[129];
    hex_of(&h, hex);
    /* the fake answers NOT_SUPPORTED to a well-formed handle of its own: the call reached it */
    check(child("open-fails", hex, "801", false, NULL, NULL) == 0, "opened elsewhere: the driver's answer");
    CUipcMemHandle junk;
    for (size_t i = 0; i < sizeof junk.reserved; i++)
        junk.reserved[i] = (char)(i * 7 + 3);
    hex_of(&junk, hex);
    check(child("open-fails", hex, "1", false, NULL, NULL) == 0, "garbage: the driver's CUDA_ERROR_INVALID_VALUE");
    check(cuIpcCloseMemHandle(small) == CUDA_ERROR_INVALID_VALUE, "close of a pointer never opened: the driver's");
    check(cuMemFree_v2(small) == CUDA_SUCCESS, "free");
}

/* ---- bad: damaged handles of ours, a dead exporter ---------------------------------------- */

static void wrong_version(wire *w)
{
    w->version = 9;
}
static void wrong_token(wire *w)
{
    w->token ^= 1;
}
static void past_end(wire *w)
{
    w->offset = w->size;
}

static void t_bad(void)
{
    setup();
    CUdeviceptr p = 0;
    check(cuMemAlloc_v2(&p, 4 * MiB) == CUDA_SUCCESS, "allocate");
    CUipcMemHandle h;
    check(cuIpcGetMemHandle(&h, p) == CUDA_SUCCESS, "handle");
    char hex[129];
    CUipcMemHandle d = h;
    d.reserved[40] ^= 0x10; /* the offset, without resealing: the check fails */
    hex_of(&d, hex);
    check(child("open-fails", hex, "1", false, NULL, NULL) == 0, "a damaged handle: CUDA_ERROR_INVALID_VALUE");
    d = resealed(h, wrong_version);
    hex_of(&d, hex);
    check(child("open-fails", hex, "1", false, NULL, NULL) == 0, "another version: CUDA_ERROR_INVALID_VALUE");
    d = resealed(h, past_end);
    hex_of(&d, hex);
    check(child("open-fails", hex, "1", false, NULL, NULL) == 0, "an offset past the end: CUDA_ERROR_INVALID_VALUE");
    d = resealed(h, wrong_token);
    hex_of(&d, hex);
    check(child("open-fails", hex, "400", false, NULL, NULL) == 0, "a token never given: CUDA_ERROR_INVALID_HANDLE");
    check(cuIpcGetMemHandle(NULL, p) == CUDA_ERROR_INVALID_VALUE, "no handle pointer: the driver's answer");
    /* a handle of a process that is gone */
    int st = child("export-and-exit", "", "", false, NULL, NULL);
    check(st == 0, "the exporting process ran and ended");
    FILE *f = fopen(dead_file(), "r");
    check(f != NULL && fscanf(f, "%128s", hex) == 1, "its handle");
    if (f)
        fclose(f);
    unlink(dead_file());
    check(child("open-fails", hex, "400", false, NULL, NULL) == 0, "its handle: CUDA_ERROR_INVALID_HANDLE");
    check(cuMemFree_v2(p) == CUDA_SUCCESS, "free");
}

static int export_and_exit(void)
{
    setup();
    CUdeviceptr p = 0;
    CUipcMemHandle h;
    check(cuMemAlloc_v2(&p, 2 * MiB) == CUDA_SUCCESS && cuIpcGetMemHandle(&h, p) == CUDA_SUCCESS, "export");
    char hex[129];
    hex_of(&h, hex);
    FILE *f = fopen(dead_file(), "w");
    check(f != NULL && fprintf(f, "%s\n", hex) > 0, "write the handle down");
    if (f)
        fclose(f);
    check(cuMemFree_v2(p) == CUDA_SUCCESS, "free");
    return failures ? 1 : 0;
}

/* ---- swap: a slice with a live export is not swapped out ---------------------------------- */

static int ctl_connect(void)
{
    return swap_ctl_connect(getpid(), 200);
}

/* Sends cmd and returns its answer line, past any {"event": line (a wants-in comes when a
 * thread waits for the swap-in: here, the exporter's thread serving a held open). */
static void ask(int fd, const char *cmd, char *out, size_t len)
{
    char line[64];
    snprintf(line, sizeof line, "%s\n", cmd);
    out[0] = '\0';
    if (fd < 0 || send(fd, line, strlen(line), MSG_NOSIGNAL) < 0)
        return;
    for (;;) {
        size_t have = 0;
        char c = 0;
        while (have + 1 < len && recv(fd, &c, 1, 0) == 1 && c != '\n')
            out[have++] = c;
        out[have] = '\0';
        if (strncmp(out, "{\"event\":", 9) != 0 || have == 0)
            return;
    }
}

static void t_swap(void)
{
    setup();
    CUdeviceptr p = 0;
    check(cuMemAlloc_v2(&p, 4 * MiB) == CUDA_SUCCESS, "allocate");
    unsigned char *host = malloc(4 * MiB);
    for (size_t i = 0; i < 4 * MiB; i++)
        host[i] = pattern(i, 5);
    check(cuMemcpyHtoD_v2(p, host, 4 * MiB) == CUDA_SUCCESS, "write");
    CUipcMemHandle h;
    check(cuIpcGetMemHandle(&h, p) == CUDA_SUCCESS, "handle");
    char hex[129], ans[512];
    hex_of(&h, hex);
    int ctl = ctl_connect();
    /* a handle made but not opened anywhere: nothing is mapped elsewhere, the swap goes */
    ask(ctl, "out", ans, sizeof ans);
    check(strstr(ans, "\"ok\":true") != NULL, "swap-out with a handle no one opened: %s", ans);
    ask(ctl, "in", ans, sizeof ans);
    check(strstr(ans, "\"ok\":true") != NULL, "swap-in: %s", ans);
    /* another process holds it open */
    pid_t c = 0;
    int to = -1;
    child("hold-child", hex, "5", true, &c, &to);
    /* the child says it holds the mapping by creating this file */
    for (int i = 0; i < 1000 && access(held_file(), F_OK) != 0; i++)
        usleep(10000);
    check(access(held_file(), F_OK) == 0, "the other process opened the handle");
    ask(ctl, "out", ans, sizeof ans);
    check(strstr(ans, "\"ok\":false") != NULL && strstr(ans, "\"code\":\"exported\"") != NULL,
          "swap-out while another process maps the memory: refused, code exported: %s", ans);
    check(cuMemcpyDtoH_v2(host, p, 16) == CUDA_SUCCESS, "the program runs on (not held)");
    /* the child closes the handle and exits */
    check(write(to, "x", 1) == 1, "tell the child to let go");
    close(to);
    int st = 0;
    check(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 0, "the other process saw the bytes and closed");
    unlink(held_file());
    /* its connection closed: the export is over; the exporter's thread sees it at once, but a
     * few retries allow for it being scheduled */
    bool ok = false;
    for (int i = 0; i < 100 && !ok; i++) {
        ask(ctl, "out", ans, sizeof ans);
        ok = strstr(ans, "\"ok\":true") != NULL;
        if (!ok)
            usleep(10000);
    }
    check(ok, "after the other process closed it: swapped out: %s", ans);
    ask(ctl, "in", ans, sizeof ans);
    check(strstr(ans, "\"ok\":true") != NULL, "swap-in: %s", ans);
    check(cuMemcpyDtoH_v2(host, p, 4 * MiB) == CUDA_SUCCESS, "read");
    size_t bad = 0;
    for (size_t i = 0; i < 4 * MiB; i++)
        bad += host[i] != pattern(i, i < 4096 ? 6 : 5);
    check(bad == 0, "the other process's write and the rest, through the swap (%zu differ)", bad);
    /* an open that arrives while the slice is swapped out waits for the swap-in */
    ask(ctl, "out", ans, sizeof ans);
    check(strstr(ans, "\"ok\":true") != NULL, "swap-out again: %s", ans);
    child("hold-child", hex, "6", true, &c, &to);
    usleep(300000);
    check(access(held_file(), F_OK) != 0, "while swapped out, the open waits");
    ask(ctl, "in", ans, sizeof ans);
    check(strstr(ans, "\"ok\":true") != NULL, "swap-in: %s", ans);
    for (int i = 0; i < 1000 && access(held_file(), F_OK) != 0; i++)
        usleep(10000);
    check(access(held_file(), F_OK) == 0, "after the swap-in, the open went through");
    /* the importer is killed while it maps the memory: its export ends with it */
    kill(c, SIGKILL);
    close(to);
    waitpid(c, &st, 0);
    unlink(held_file());
    ok = false;
    for (int i = 0; i < 100 && !ok; i++) {
        ask(ctl, "out", ans, sizeof ans);
        ok = strstr(ans, "\"ok\":true") != NULL;
        if (!ok)
            usleep(10000);
    }
    check(ok, "the importer killed: swapped out: %s", ans);
    ask(ctl, "in", ans, sizeof ans);
    close(ctl);
    check(cuMemFree_v2(p) == CUDA_SUCCESS, "free");
    free(host);
}

/* Opens hex, checks the first bytes carry pattern `seed`, writes pattern 6 over the first
 * 4 KiB, says so (the held file), and closes when told. */
static int hold_child(const char *hex, const char *seed)
{
    setup();
    CUdeviceptr p = 0;
    check(cuIpcOpenMemHandle_v2(&p, handle_of(hex), CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS) == CUDA_SUCCESS, "open");
    unsigned char b[16];
    check(cuMemcpyDtoH_v2(b, p, sizeof b) == CUDA_SUCCESS && b[3] == pattern(3, (unsigned)atoi(seed)), "read the exporter's bytes");
    unsigned char w[4096];
    for (size_t i = 0; i < sizeof w; i++)
        w[i] = pattern(i, 6);
    check(cuMemcpyHtoD_v2(p, w, sizeof w) == CUDA_SUCCESS, "write its first 4 KiB");
    FILE *f = fopen(held_file(), "w");
    if (f)
        fclose(f);
    char x;
    (void)read(0, &x, 1); /* until told (or killed) */
    check(cuIpcCloseMemHandle(p) == CUDA_SUCCESS, "close");
    return failures ? 1 : 0;
}

/* ---- plain: a driver that refuses shareable memory (the fake's noShareable) --------------- */

static void t_plain(void)
{
    setup();
    CUdeviceptr p = 0, q = 0;
    check(cuMemAlloc_v2(&p, 4 * MiB) == CUDA_SUCCESS, "allocate: made again without the handle type");
    check(cuMemAlloc_v2(&q, 4 * MiB) == CUDA_SUCCESS, "and the next one");
    unsigned char w[64] = {1, 2, 3}, r[64] = {0};
    check(cuMemcpyHtoD_v2(q, w, sizeof w) == CUDA_SUCCESS && cuMemcpyDtoH_v2(r, q, sizeof r) == CUDA_SUCCESS &&
              memcmp(w, r, sizeof w) == 0,
          "the memory works");
    CUipcMemHandle h;
    check(cuIpcGetMemHandle(&h, p) == CUDA_ERROR_NOT_SUPPORTED, "its IPC handle: CUDA_ERROR_NOT_SUPPORTED, said why");
    int ctl = ctl_connect();
    char ans[512];
    ask(ctl, "out", ans, sizeof ans);
    check(strstr(ans, "\"ok\":true") != NULL, "still swappable: %s", ans);
    ask(ctl, "in", ans, sizeof ans);
    check(strstr(ans, "\"ok\":true") != NULL, "swap-in: %s", ans);
    check(cuMemcpyDtoH_v2(r, q, sizeof r) == CUDA_SUCCESS && memcmp(w, r, sizeof w) == 0, "bytes through the swap");
    close(ctl);
    check(cuMemFree_v2(p) == CUDA_SUCCESS && cuMemFree_v2(q) == CUDA_SUCCESS, "free");
}

int main(int argc, char **argv)
{
    scenario = argc > 1 ? argv[1] : "?";
    if (argc > 3 && strcmp(scenario, "share-child") == 0)
        return share_child(argv[2], argv[3]);
    if (argc > 3 && strcmp(scenario, "open-fails") == 0)
        return open_fails(argv[2], argv[3]);
    if (strcmp(scenario, "export-and-exit") == 0)
        return export_and_exit();
    if (argc > 3 && strcmp(scenario, "hold-child") == 0)
        return hold_child(argv[2], argv[3]);
    static const test_scenario all[] = {{"share", t_share}, {"passthrough", t_passthrough}, {"bad", t_bad}, {"swap", t_swap},
                                        {"plain", t_plain}};
    return run_scenario(all, sizeof all / sizeof all[0]);
}
