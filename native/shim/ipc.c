/*
 * ipc.c: CUDA IPC handles (cuIpcGetMemHandle, cuIpcOpenMemHandle(_v2), cuIpcCloseMemHandle)
 * for swappable allocations (SWAP.md, "Sharing memory between processes").
 *
 * Under GPUSHARE_SWAP a cuMemAlloc_v2 is VMM memory (cuMemCreate mapped into a reserved
 * range, swap.c), and the driver's cuIpcGetMemHandle refuses VMM memory: PyTorch's
 * multiprocessing (a CUDA tensor sent to another process) and NCCL's intra-node paths would
 * break. So swappable memory is created shareable (CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR)
 * and its IPC handles are ours:
 *
 *   get:   the handle (64 bytes, gs_ipc_wire below) names this process (pid and a random
 *          per-process nonce: the name of its IPC socket), a random per-allocation token,
 *          the offset of the pointer in its allocation, and the allocation's size.
 *   open:  (in another process under libgpushare) connects to the exporter's socket, sends
 *          the token, receives the allocation's file descriptor (SCM_RIGHTS; the exporter
 *          calls cuMemExportToShareableHandle for it), imports it
 *          (cuMemImportFromShareableHandle), reserves a range, maps it, makes it readable and
 *          writable by the current device, and returns the range's base plus the offset. The
 *          connection stays open while the memory is mapped: it is how the exporter knows an
 *          export is live (the importer's close, exit or crash all close it).
 *   close: unmaps, releases, frees the range, closes the connection.
 *
 * A handle that is not ours goes to the driver unchanged, as does any handle asked of memory
 * that is not swappable.
 *
 * Why a socket and SCM_RIGHTS rather than pidfd_getfd(2): pidfd_getfd needs ptrace rights
 * over the exporter (PTRACE_MODE_ATTACH_REALCREDS): under Yama's default ptrace_scope=1
 * (Ubuntu, Debian) a process may only do that to its own descendants, and PyTorch's usual
 * direction is the other way (the parent shares a tensor with a spawned child, which opens
 * it); container seccomp profiles also often deny it, and it needs Linux 5.6. A Unix socket
 * works in all those cases, and its connection tells the exporter how long the importer holds
 * the memory, which the swap needs (SWAP.md: a slice with live exports is not swapped out).
 * The socket is in the abstract namespace ("\0gpushare-ipc-<pid>-<nonce>": nothing on disk to
 * clean up, reachable within the network namespace, as CUDA IPC needs a shared host anyway);
 * it answers only peers of the same user or root (SO_PEERCRED), and only for a token it
 * handed out (64 random bits).
 */
#define _GNU_SOURCE /* accept4, SO_PEERCRED, struct ucred */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "hooks.h"
#include "ipc.h"
#include "log.h"
#include "swap.h"

#define GS_IPC_MAGIC 0x50494753u /* "GSIP" in memory on a little-endian machine */
#define GS_IPC_VERSION 1
/* How long an open waits for the exporter's answer: the exporter may be swapped out and
 * answers after its swap-in. */
#define GS_IPC_ANSWER_S 60

/* The handle, as it sits in CUipcMemHandle.reserved (one machine: native byte order). */
typedef struct gs_ipc_wire {
    uint32_t magic;
    uint16_t version;
    uint16_t flags; /* 0 */
    int32_t pid;    /* the exporter */
    int32_t dev;    /* the allocation's device ordinal in the exporter (for messages) */
    uint64_t proc;  /* the exporter's nonce: its socket's name with pid */
    uint64_t token; /* the export: which allocation, and the right to ask for it */
    uint64_t offset; /* of the pointer the handle was asked for, in its allocation */
    uint64_t size;   /* the allocation's mapped size */
    uint64_t check;  /* FNV-1a of the bytes above: garbage with our magic is refused */
    uint64_t zero;   /* reserved, 0 */
} gs_ipc_wire;
_Static_assert(sizeof(gs_ipc_wire) == sizeof(CUipcMemHandle), "the handle fills a CUipcMemHandle exactly");

/* The importer's request and the exporter's answer on the socket. */
typedef struct gs_ipc_ask {
    uint32_t magic, version;
    uint64_t token;
} gs_ipc_ask;
typedef struct gs_ipc_answer {
    int32_t status; /* a CUresult; CUDA_SUCCESS comes with the allocation's fd */
    uint32_t pad;
    uint64_t size;
} gs_ipc_answer;

typedef struct gs_export {
    uint64_t token;
    CUdeviceptr base;
} gs_export;

typedef struct gs_import {
    int32_t pid;
    uint64_t proc, token;
    CUdeviceptr va;
    size_t size;
    CUmemGenericAllocationHandle handle;
    unsigned refs;
    int conn; /* open while mapped: the exporter counts it as a live export */
} gs_import;

/* A connection the exporter's thread serves; `holds`: it was given a descriptor. */
typedef struct gs_conn {
    int fd;
    bool holds;
} gs_conn;

static struct {
    pthread_mutex_t lock; /* everything below; never held across a wait for another process */
    pid_t pid;            /* the process the state below is of (a forked child starts afresh) */
    uint64_t proc;
    int listen_fd; /* -1: not listening (yet) */
    gs_export *ex;
    size_t nex, capex;
    gs_import *im;
    size_t nim, capim;
    bool atfork;
} I = {.lock = PTHREAD_MUTEX_INITIALIZER, .listen_fd = -1};

_Atomic int gs_ipc_live;

static uint64_t fnv(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static uint64_t random64(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v) {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        v = fnv(&t, sizeof t) ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&v;
    }
    return v != 0 ? v : 1;
}

static void socket_name(struct sockaddr_un *a, socklen_t *len, int32_t pid, uint64_t proc)
{
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    int n = snprintf(a->sun_path + 1, sizeof a->sun_path - 1, "gpushare-ipc-%d-%016llx", (int)pid,
                     (unsigned long long)proc);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

static void after_fork_child(void)
{
    /* the thread serving the socket did not come along; the child's handles name the child */
    if (I.listen_fd >= 0)
        close(I.listen_fd);
    for (size_t i = 0; i < I.nim; i++)
        close(I.im[i].conn);
    free(I.ex);
    free(I.im);
    I.ex = NULL;
    I.im = NULL;
    I.nex = I.capex = I.nim = I.capim = 0;
    I.listen_fd = -1;
    I.pid = 0;
    atomic_store(&gs_ipc_live, 0);
    pthread_mutex_init(&I.lock, NULL);
}

/* ---- creating shareable memory ------------------------------------------------------- */

#define IPC_MAX_DEVICES 64
/* Per device: 0 not asked yet, 1 shareable, 2 not (no support, or the driver refused). */
static _Atomic int shareable_dev[IPC_MAX_DEVICES];

CUmemAllocationHandleType gs_ipc_handle_type(CUdevice dev)
{
    if (dev < 0 || dev >= IPC_MAX_DEVICES)
        return CU_MEM_HANDLE_TYPE_NONE;
    int s = atomic_load(&shareable_dev[dev]);
    if (s == 0) {
        int yes = 0;
        CUresult r = gs_real()->cuDeviceGetAttribute(&yes, CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED, dev);
        s = r == CUDA_SUCCESS && yes ? 1 : 2;
        atomic_store(&shareable_dev[dev], s);
    }
    return s == 1 ? CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR : CU_MEM_HANDLE_TYPE_NONE;
}

void gs_ipc_not_shareable(CUdevice dev, CUresult r)
{
    if (dev >= 0 && dev < IPC_MAX_DEVICES && atomic_exchange(&shareable_dev[dev], 2) != 2)
        gs_log(GS_LOG_WARN, "ipc: device %d refused shareable memory (CUDA error %d); its swappable allocations from "
                            "now on cannot be shared with other processes (cuIpcGetMemHandle)", (int)dev, (int)r);
}

/* ---- the exporter's side ------------------------------------------------------------- */

static bool recv_all(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t k = recv(fd, (char *)buf + got, n - got, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        got += (size_t)k;
    }
    return true;
}

/* Whether the peer is this process's user or root. */
static bool peer_allowed(int fd)
{
    struct ucred c;
    socklen_t len = sizeof c;
    return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &len) == 0 && (c.uid == getuid() || c.uid == 0);
}

static CUdeviceptr base_of_token(uint64_t token)
{
    CUdeviceptr base = 0;
    pthread_mutex_lock(&I.lock);
    for (size_t i = 0; i < I.nex; i++)
        if (I.ex[i].token == token)
            base = I.ex[i].base;
    pthread_mutex_unlock(&I.lock);
    return base;
}

/* Answers one request on conn: the allocation's fd, or why not. True: the peer now holds it. */
static bool answer(int conn)
{
    gs_ipc_ask ask;
    gs_ipc_answer ans = {.status = CUDA_ERROR_INVALID_HANDLE};
    int fd = -1;
    if (!recv_all(conn, &ask, sizeof ask))
        return false;
    CUdeviceptr base = ask.magic == GS_IPC_MAGIC && ask.version == GS_IPC_VERSION ? base_of_token(ask.token) : 0;
    size_t size = 0;
    if (base != 0)
        ans.status = (int32_t)gs_swap_export(base, &fd, &size); /* counts the export live on success */
    ans.size = size;
    struct iovec iov = {.iov_base = &ans, .iov_len = sizeof ans};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        memset(&u, 0, sizeof u);
        m.msg_control = u.buf;
        m.msg_controllen = sizeof u.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    bool sent = sendmsg(conn, &m, MSG_NOSIGNAL) == (ssize_t)sizeof ans;
    if (fd >= 0) {
        close(fd); /* the peer has its own copy now (or none: the export ends here) */
        if (!sent)
            atomic_fetch_sub(&gs_ipc_live, 1);
    }
    return sent && fd >= 0;
}

/* The exporter's thread: accepts importers, answers each one request, then watches the
 * connection until the importer closes it (its memory unmapped, or the process gone). */
static void *serve(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    gs_conn *c = NULL;
    struct pollfd *p = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 16;
            gs_conn *nc = realloc(c, ncap * sizeof *nc);
            if (nc != NULL)
                c = nc;
            struct pollfd *np = nc != NULL ? realloc(p, (ncap + 1) * sizeof *np) : NULL;
            if (np != NULL) {
                p = np;
                cap = ncap;
            }
        }
        if (p == NULL) { /* no memory for even the first poll set: try again shortly */
            sleep(1);
            continue;
        }
        p[0] = (struct pollfd){.fd = n < cap ? lfd : -1, .events = POLLIN};
        for (size_t i = 0; i < n; i++)
            p[i + 1] = (struct pollfd){.fd = c[i].fd, .events = POLLIN};
        if (poll(p, n + 1, -1) < 0) {
            if (errno == EINTR)
                continue;
            gs_log(GS_LOG_WARN, "ipc: poll failed (%s); handles of this process can no longer be opened", strerror(errno));
            return NULL;
        }
        for (size_t i = n; i-- > 0;) {
            if (p[i + 1].revents == 0)
                continue;
            bool keep = false;
            if (!c[i].holds && (p[i + 1].revents & POLLIN) != 0)
                keep = c[i].holds = answer(c[i].fd);
            if (!keep) { /* done, refused, or the importer let go: its export ends */
                if (c[i].holds)
                    atomic_fetch_sub(&gs_ipc_live, 1);
                close(c[i].fd);
                c[i] = c[--n];
            }
        }
        if ((p[0].revents & POLLIN) != 0) {
            int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
            if (fd >= 0 && !peer_allowed(fd)) {
                gs_log(GS_LOG_WARN, "ipc: a process of another user asked for this process's memory; refused");
                close(fd);
            } else if (fd >= 0) {
                /* a peer that connects and sends half a request holds this thread 2 s at most */
                struct timeval tv = {.tv_sec = 2};
                (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
                c[n++] = (gs_conn){fd, false};
            }
        }
    }
}

/* Listens and starts the serving thread once per process (under I.lock). */
static bool serving(void)
{
    if (I.pid == getpid() && I.listen_fd >= 0)
        return true;
    if (!I.atfork)
        I.atfork = pthread_atfork(NULL, NULL, after_fork_child) == 0;
    I.pid = getpid();
    I.proc = random64();
    struct sockaddr_un a;
    socklen_t len;
    socket_name(&a, &len, (int32_t)I.pid, I.proc);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, len) != 0 || listen(fd, 64) != 0) {
        gs_log(GS_LOG_WARN, "ipc: cannot listen for IPC handle requests (%s)", strerror(errno));
        if (fd >= 0)
            close(fd);
        return false;
    }
    sigset_t all, old;
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old); /* the thread takes none of the program's signals */
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    bool ok = pthread_create(&t, &attr, serve, (void *)(intptr_t)fd) == 0;
    pthread_attr_destroy(&attr);
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (!ok) {
        gs_log(GS_LOG_WARN, "ipc: cannot start the thread that serves IPC handles");
        close(fd);
        return false;
    }
    I.listen_fd = fd;
    return true;
}

CUresult gs_ipc_get_mem_handle(gs_fn_cuIpcGetMemHandle real, CUipcMemHandle *pHandle, CUdeviceptr dptr)
{
    CUdeviceptr base = 0;
    size_t size = 0;
    CUdevice dev = -1;
    bool shareable = false;
    if (pHandle == NULL || !gs_swap_on() || !gs_swap_find(dptr, &base, &size, &dev, &shareable))
        return real(pHandle, dptr);
    if (!shareable) {
        gs_log(GS_LOG_WARN, "ipc: this allocation was created without a shareable handle (the driver refused one); "
                            "it cannot be shared with another process");
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    pthread_mutex_lock(&I.lock);
    CUresult r = serving() ? CUDA_SUCCESS : CUDA_ERROR_OPERATING_SYSTEM;
    uint64_t token = 0;
    for (size_t i = 0; r == CUDA_SUCCESS && i < I.nex && token == 0; i++)
        if (I.ex[i].base == base)
            token = I.ex[i].token; /* one handle per allocation, as the driver's */
    if (r == CUDA_SUCCESS && token == 0) {
        if (I.nex == I.capex) {
            size_t cap = I.capex ? I.capex * 2 : 16;
            gs_export *e = realloc(I.ex, cap * sizeof *e);
            if (e == NULL)
                r = CUDA_ERROR_OUT_OF_MEMORY;
            else {
                I.ex = e;
                I.capex = cap;
            }
        }
        if (r == CUDA_SUCCESS) {
            token = random64();
            I.ex[I.nex++] = (gs_export){token, base};
        }
    }
    if (r == CUDA_SUCCESS) {
        gs_ipc_wire w = {.magic = GS_IPC_MAGIC, .version = GS_IPC_VERSION, .pid = (int32_t)I.pid, .dev = (int32_t)dev,
                         .proc = I.proc, .token = token, .offset = (uint64_t)(dptr - base), .size = (uint64_t)size};
        w.check = fnv(&w, offsetof(gs_ipc_wire, check));
        memcpy(pHandle->reserved, &w, sizeof w);
    }
    pthread_mutex_unlock(&I.lock);
    return r;
}

void gs_ipc_forget(CUdeviceptr base)
{
    pthread_mutex_lock(&I.lock);
    for (size_t i = 0; i < I.nex; i++)
        if (I.ex[i].base == base)
            I.ex[i--] = I.ex[--I.nex];
    pthread_mutex_unlock(&I.lock);
}

/* ---- the importer's side ------------------------------------------------------------- */

/* Asks the exporter for the allocation's fd; its connection in *conn (kept while mapped). */
static CUresult ask_exporter(const gs_ipc_wire *w, int *conn, int *fd, size_t *size)
{
    struct sockaddr_un a;
    socklen_t len;
    socket_name(&a, &len, w->pid, w->proc);
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return CUDA_ERROR_OPERATING_SYSTEM;
    if (connect(s, (struct sockaddr *)&a, len) != 0) {
        gs_log(GS_LOG_WARN, "ipc: cannot open a handle of process %d: that process is gone, or is not under gpushare "
                            "(%s)", (int)w->pid, strerror(errno));
        close(s);
        return CUDA_ERROR_INVALID_HANDLE;
    }
    struct timeval tv = {.tv_sec = GS_IPC_ANSWER_S};
    (void)setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    gs_ipc_ask ask = {.magic = GS_IPC_MAGIC, .version = GS_IPC_VERSION, .token = w->token};
    gs_ipc_answer ans;
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof u);
    struct iovec iov = {.iov_base = &ans, .iov_len = sizeof ans};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
    ssize_t got = -1;
    if (send(s, &ask, sizeof ask, MSG_NOSIGNAL) == (ssize_t)sizeof ask)
        do
            got = recvmsg(s, &m, MSG_CMSG_CLOEXEC);
        while (got < 0 && errno == EINTR);
    int recv_fd = -1;
    struct cmsghdr *c = got > 0 ? CMSG_FIRSTHDR(&m) : NULL;
    if (c != NULL && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int)))
        memcpy(&recv_fd, CMSG_DATA(c), sizeof recv_fd);
    if (got != (ssize_t)sizeof ans || ans.status != CUDA_SUCCESS || recv_fd < 0 || ans.size == 0) {
        CUresult r = got != (ssize_t)sizeof ans ? CUDA_ERROR_INVALID_HANDLE
                     : ans.status != CUDA_SUCCESS ? (CUresult)ans.status
                                                  : CUDA_ERROR_INVALID_HANDLE;
        gs_log(GS_LOG_WARN, "ipc: process %d did not hand over the memory of this handle (%s, CUDA error %d): it was "
                            "freed, or the handle is not one it gave",
               (int)w->pid, got != (ssize_t)sizeof ans ? "no answer" : "refused", (int)r);
        if (recv_fd >= 0)
            close(recv_fd);
        close(s);
        return r;
    }
    *conn = s;
    *fd = recv_fd;
    *size = (size_t)ans.size;
    return CUDA_SUCCESS;
}

/* Imports the fd and maps it, readable and writable by the current context's device. */
static CUresult map_import(int fd, size_t size, CUdeviceptr *va, CUmemGenericAllocationHandle *h)
{
    const gs_real_fns *R = gs_real();
    CUdevice dev = -1;
    CUresult r = R->cuCtxGetDevice(&dev);
    if (r == CUDA_SUCCESS)
        r = R->cuMemImportFromShareableHandle(h, (void *)(intptr_t)fd, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR);
    if (r != CUDA_SUCCESS)
        return r;
    r = R->cuMemAddressReserve(va, size, 0, 0, 0);
    if (r == CUDA_SUCCESS) {
        r = R->cuMemMap(*va, size, 0, *h, 0);
        if (r == CUDA_SUCCESS) {
            CUmemAccessDesc access = {.location = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = dev},
                                      .flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
            r = R->cuMemSetAccess(*va, size, &access, 1);
            if (r != CUDA_SUCCESS)
                (void)R->cuMemUnmap(*va, size);
        }
        if (r != CUDA_SUCCESS)
            (void)R->cuMemAddressFree(*va, size);
    }
    if (r != CUDA_SUCCESS)
        (void)R->cuMemRelease(*h);
    return r;
}

static bool imports_room(void)
{
    if (I.nim < I.capim)
        return true;
    size_t cap = I.capim ? I.capim * 2 : 16;
    gs_import *m = realloc(I.im, cap * sizeof *m);
    if (m == NULL)
        return false;
    I.im = m;
    I.capim = cap;
    return true;
}

CUresult gs_ipc_open_mem_handle(gs_fn_cuIpcOpenMemHandle_v2 real, CUdeviceptr *pdptr, CUipcMemHandle handle,
                                unsigned int Flags)
{
    gs_ipc_wire w;
    memcpy(&w, handle.reserved, sizeof w);
    if (w.magic != GS_IPC_MAGIC)
        return real(pdptr, handle, Flags); /* the driver's own handle (or garbage: its answer) */
    const char *bad = w.check != fnv(&w, offsetof(gs_ipc_wire, check)) ? "damaged (its check does not match)"
                      : w.version != GS_IPC_VERSION                      ? "of another version of gpushare"
                      : w.zero != 0 || w.flags != 0 || w.size == 0 || w.offset >= w.size
                          ? "malformed (offset past the allocation, or reserved fields set)"
                          : NULL;
    if (bad != NULL) {
        gs_log(GS_LOG_WARN, "ipc: a CUDA IPC handle with gpushare's mark is %s; refused (CUDA_ERROR_INVALID_VALUE)", bad);
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (pdptr == NULL || Flags != CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS)
        return CUDA_ERROR_INVALID_VALUE; /* as the driver */
    CUcontext ctx = NULL;
    if (gs_real()->cuCtxGetCurrent(&ctx) != CUDA_SUCCESS || ctx == NULL)
        return CUDA_ERROR_INVALID_CONTEXT;
    /* Opened before: the same mapping, one more reference (the driver's rule). */
    pthread_mutex_lock(&I.lock);
    for (size_t i = 0; i < I.nim; i++) {
        gs_import *m = &I.im[i];
        if (m->pid == w.pid && m->proc == w.proc && m->token == w.token) {
            m->refs++;
            *pdptr = m->va + (CUdeviceptr)w.offset;
            pthread_mutex_unlock(&I.lock);
            return CUDA_SUCCESS;
        }
    }
    pthread_mutex_unlock(&I.lock);
    int conn = -1, fd = -1;
    size_t size = 0;
    CUresult r = ask_exporter(&w, &conn, &fd, &size);
    if (r != CUDA_SUCCESS)
        return r;
    CUdeviceptr va = 0;
    CUmemGenericAllocationHandle h = 0;
    r = size == w.size ? map_import(fd, size, &va, &h) : CUDA_ERROR_INVALID_HANDLE;
    close(fd); /* the imported handle holds the memory now */
    pthread_mutex_lock(&I.lock);
    if (r == CUDA_SUCCESS && !imports_room()) {
        (void)gs_real()->cuMemUnmap(va, size);
        (void)gs_real()->cuMemAddressFree(va, size);
        (void)gs_real()->cuMemRelease(h);
        r = CUDA_ERROR_OUT_OF_MEMORY;
    }
    if (r == CUDA_SUCCESS) {
        I.im[I.nim++] = (gs_import){w.pid, w.proc, w.token, va, size, h, 1, conn};
        *pdptr = va + (CUdeviceptr)w.offset;
    } else {
        close(conn);
    }
    pthread_mutex_unlock(&I.lock);
    return r;
}

CUresult gs_ipc_close_mem_handle(gs_fn_cuIpcCloseMemHandle real, CUdeviceptr dptr)
{
    pthread_mutex_lock(&I.lock);
    size_t i = 0;
    while (i < I.nim && !(dptr >= I.im[i].va && dptr - I.im[i].va < I.im[i].size))
        i++;
    if (i == I.nim) {
        pthread_mutex_unlock(&I.lock);
        return real(dptr); /* opened by the driver */
    }
    gs_import m = I.im[i];
    if (--I.im[i].refs > 0) {
        pthread_mutex_unlock(&I.lock);
        return CUDA_SUCCESS;
    }
    I.im[i] = I.im[--I.nim];
    pthread_mutex_unlock(&I.lock);
    /* the work that may use it first, as a free waits for it; then the mapping goes */
    const gs_real_fns *R = gs_real();
    CUresult r = R->cuCtxSynchronize();
    if (r == CUDA_SUCCESS)
        r = R->cuMemUnmap(m.va, m.size);
    if (r == CUDA_SUCCESS) {
        (void)R->cuMemRelease(m.handle);
        (void)R->cuMemAddressFree(m.va, m.size);
        close(m.conn); /* the exporter's export of it ends */
    } else {
        pthread_mutex_lock(&I.lock);
        if (imports_room())
            I.im[I.nim++] = m; /* still mapped: still open */
        pthread_mutex_unlock(&I.lock);
    }
    return r;
}
