/*
 * swap_ctl.c: how the daemon asks for a swap (swap.c, SWAP.md "The control socket"): a Unix
 * stream socket, <GPUSHARE_SWAP>/<pid>.sock, accepted by one thread started at the process's
 * first swappable allocation, each connection served on a thread of its own.
 *
 * Why a socket, not a command word in the shared region read by a polling thread or on a
 * signal: a request gets its answer (bytes, seconds, or a refusal's reason) on the same
 * connection; the waiting thread costs nothing (blocked in accept or read); no signal of the
 * program's is taken; and the daemon's going away is seen at once, as the connection closing.
 * A slice swapped out by a connection that then closes is swapped back in (retried for a
 * minute while the GPU memory is not free), so a daemon killed mid-swap leaves the task
 * running; if the memory never comes back the process ends with a clear error rather than
 * hang forever.
 *
 * Protocol: one command per line (out, in, stage, unstage, status, watch, room, no-room); one
 * JSON line back each. Two lines come unasked: {"event":"wants-in","pid":N}, on the connection
 * that swapped the slice out, once per swap-out, when a thread of the program waits for the
 * swap-in (a launch, a copy or an allocation held); and {"event":"wants-room","pid":N,
 * "bytes":B}, on the connection that said `watch`, when the driver refused an allocation for
 * want of GPU memory: the allocating thread waits (bounded) for `room` (retry) or `no-room`
 * (out of memory). Both are the daemon's cues under memory overcommit (SWAP.md).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "gs_config.h"
#include "log.h"
#include "state.h"
#include "swap.h"
#include "swap_impl.h"

/* How long a slice left swapped out by a closed connection is retried before the process ends. */
#define ORPHAN_RETRY_S 60

static struct {
    pthread_mutex_t lock;
    bool started;
    int fd; /* the listening socket, -1 when none */
    pid_t pid;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
} C = {.lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1};

void gs_swap_refuse(gs_swap_result *res, const char *code, const char *fmt, ...)
{
    res->ok = false;
    snprintf(res->code, sizeof res->code, "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->message, sizeof res->message, fmt, ap);
    va_end(ap);
}

uint64_t gs_swap_host_available(void)
{
    FILE *f = fopen("/proc/meminfo", "re");
    if (f == NULL)
        return UINT64_MAX;
    char line[128];
    unsigned long long kib = 0;
    bool found = false;
    while (!found && fgets(line, sizeof line, f) != NULL)
        found = sscanf(line, "MemAvailable: %llu kB", &kib) == 1;
    fclose(f);
    return found ? (uint64_t)kib * 1024u : UINT64_MAX;
}

/* The answer as one JSON line (messages are ours: no control characters, quotes escaped). */
static int render(char *out, size_t len, const char *op, const gs_swap_result *r)
{
    if (!r->ok) {
        char msg[2 * sizeof r->message];
        size_t k = 0;
        for (const char *p = r->message; *p && k + 2 < sizeof msg; p++) {
            if (*p == '"' || *p == '\\')
                msg[k++] = '\\';
            msg[k++] = *p;
        }
        msg[k] = '\0';
        return snprintf(out, len, "{\"ok\":false,\"op\":\"%s\",\"pid\":%d,\"code\":\"%s\",\"message\":\"%s\"}\n", op,
                        (int)getpid(), r->code, msg);
    }
    return snprintf(out, len,
                    "{\"ok\":true,\"op\":\"%s\",\"pid\":%d,\"bytes\":%llu,\"allocations\":%llu,\"pinnedBytes\":%llu,"
                    "\"residentBytes\":%llu,\"seconds\":%.6f,\"pinSeconds\":%.6f,\"drainSeconds\":%.6f,"
                    "\"waitSeconds\":%.6f,\"out\":%s,\"devices\":\"%s\"}\n",
                    op, (int)getpid(), (unsigned long long)r->bytes, (unsigned long long)r->allocations,
                    (unsigned long long)r->pinned_bytes, (unsigned long long)r->resident_bytes, r->seconds, r->pin_s, r->drain_s,
                    r->wait_s, r->out ? "true" : "false", r->devices);
}

/* The longest wait for room a swap-in may be asked for (ms). */
#define IN_WAIT_MAX_MS 600000u

/* `in MS`: a swap-in whose allocations wait up to MS ms for room (SWAP.md, "Hand-over"). */
static void in_waiting(const char *arg, gs_swap_result *r)
{
    char *end = NULL;
    errno = 0;
    unsigned long ms = arg[0] >= '0' && arg[0] <= '9' ? strtoul(arg, &end, 10) : 0;
    if (end == NULL || *end != '\0' || errno != 0 || ms == 0 || ms > IN_WAIT_MAX_MS)
        gs_swap_refuse(r, "usage", "in: the wait for room must be whole milliseconds from 1 to %u", IN_WAIT_MAX_MS);
    else
        gs_swap_in(r, (unsigned)ms);
}

static void run(const char *cmd, gs_swap_result *r)
{
    /* watch, room, no-room: taken apart by session(), which knows the connection */
    memset(r, 0, sizeof *r);
    if (strcmp(cmd, "out") == 0)
        gs_swap_out(r);
    else if (strcmp(cmd, "in") == 0)
        gs_swap_in(r, 0);
    else if (strncmp(cmd, "in ", 3) == 0)
        in_waiting(cmd + 3, r);
    else if (strcmp(cmd, "stage") == 0)
        gs_swap_stage(r, true);
    else if (strcmp(cmd, "unstage") == 0)
        gs_swap_stage(r, false);
    else if (strcmp(cmd, "status") == 0)
        gs_swap_status(r);
    else
        gs_swap_refuse(r, "usage", "unknown command (out, in [MS], in-stop, stage, unstage, status)");
    if (r->ok && strcmp(cmd, "status") != 0)
        r->out = gs_swap_is_out();
}

static bool write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* The daemon is gone and the slice is out: back in, or the process ends saying why. */
static void orphaned(void)
{
    gs_log(GS_LOG_WARN, "swap: the daemon's connection closed with the slice swapped out; swapping it back in");
    for (int tries = 0; tries < ORPHAN_RETRY_S * 10; tries++) {
        gs_swap_result r;
        run("in", &r);
        if (r.ok || !gs_swap_is_out())
            return;
        struct timespec t = {0, 100000000};
        nanosleep(&t, NULL);
    }
    gs_log(GS_LOG_ERROR, "swap: the slice was left swapped out by a daemon that went away, and its GPU memory did not "
                         "come back within %d s; ending the process", ORPHAN_RETRY_S);
    _exit(75);
}

/* The connection that swapped the slice out (where a wants-in goes; -1: none) and whether it
 * was told. Its lock also keeps an answer and a wants-in from interleaving on the socket; it is
 * taken under swap.c's lock (wait_in), so nothing here takes that lock while holding it. */
static struct {
    pthread_mutex_t lock;
    int fd;
    bool told;
} W = {.lock = PTHREAD_MUTEX_INITIALIZER, .fd = -1};

/* Under W.lock. */
static void tell_wants_in(void)
{
    if (W.fd < 0 || W.told)
        return;
    W.told = true;
    char line[64];
    int n = snprintf(line, sizeof line, "{\"event\":\"wants-in\",\"pid\":%d}\n", (int)getpid());
    if (n > 0 && (size_t)n < sizeof line && !write_all(W.fd, line, (size_t)n))
        gs_log(GS_LOG_WARN, "swap: could not tell the daemon that the program waits to be swapped in");
}

bool gs_swap_ctl_send(int fd, const char *line, size_t n)
{
    pthread_mutex_lock(&W.lock);
    bool sent = write_all(fd, line, n);
    pthread_mutex_unlock(&W.lock);
    return sent;
}

void gs_swap_ctl_wants_in(void)
{
    pthread_mutex_lock(&W.lock);
    tell_wants_in();
    pthread_mutex_unlock(&W.lock);
}

/* After a command on `fd`: a swap-out makes it the one told; a swap-in (or the end) forgets it. */
static void track(int fd, const char *cmd, const gs_swap_result *r, bool ending)
{
    pthread_mutex_lock(&W.lock);
    if (!ending && r->ok && strcmp(cmd, "out") == 0) {
        W.fd = fd;
        W.told = false;
        if (gs_swap_waiters() > 0) /* a thread that began waiting during the swap-out */
            tell_wants_in();
    } else if (ending ? W.fd == fd : (r->ok && (strcmp(cmd, "in") == 0 || strncmp(cmd, "in ", 3) == 0))) {
        W.fd = -1;
    }
    pthread_mutex_unlock(&W.lock);
}

static void session(int fd)
{
    char buf[256];
    size_t have = 0;
    bool swapped_here = false;
    for (;;) {
        char *nl = memchr(buf, '\n', have);
        if (nl == NULL) {
            if (have == sizeof buf)
                break; /* not our protocol */
            ssize_t n = recv(fd, buf + have, sizeof buf - have, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            have += (size_t)n;
            continue;
        }
        *nl = '\0';
        gs_swap_result r;
        if (strcmp(buf, "watch") == 0 || strcmp(buf, "room") == 0 || strcmp(buf, "no-room") == 0) {
            memset(&r, 0, sizeof r);
            if (buf[0] == 'w')
                gs_swap_room_watch(fd, true);
            else
                gs_swap_room_answer(fd, buf[0] == 'r');
            r.ok = true;
        } else if (strcmp(buf, "in-stop") == 0) {
            /* not under the swap's locks: the swap-in it stops holds them while it waits */
            memset(&r, 0, sizeof r);
            gs_swap_in_stop();
            r.ok = true;
            r.out = swapped_here; /* gs_swap_is_out would wait for that very swap-in */
        } else {
            run(buf, &r);
        }
        swapped_here = r.out;
        char out[896];
        int len = render(out, sizeof out, strncmp(buf, "in ", 3) == 0 ? "in" : buf, &r);
        /* the answer before a wants-in the swap-out may bring on */
        pthread_mutex_lock(&W.lock);
        bool sent = len >= 0 && write_all(fd, out, (size_t)len < sizeof out ? (size_t)len : sizeof out - 1);
        pthread_mutex_unlock(&W.lock);
        track(fd, buf, &r, false);
        size_t used = (size_t)(nl + 1 - buf);
        memmove(buf, nl + 1, have - used);
        have -= used;
        if (!sent)
            break;
    }
    track(fd, "", NULL, true);
    gs_swap_room_watch(fd, false);
    if (swapped_here && gs_swap_is_out())
        orphaned();
}

static void *session_thread(void *arg)
{
    int c = (int)(intptr_t)arg;
    session(c);
    close(c);
    return NULL;
}

/* Each connection on a thread of its own (inheriting this one's blocked signals): the daemon
 * keeps a watching connection open for as long as the task runs (wants-room), and one per
 * swap-out until the swap-in, beside which its other requests must be served. */
static void *serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    for (;;) {
        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0 && (errno == EINTR || errno == ECONNABORTED))
            continue;
        if (c < 0)
            break;
        pthread_t t;
        if (pthread_create(&t, &attr, session_thread, (void *)(intptr_t)c) != 0) {
            gs_log(GS_LOG_WARN, "swap: cannot start a thread for a control connection; refused");
            close(c);
        }
    }
    pthread_attr_destroy(&attr);
    return NULL;
}

/* A forked child has no control thread and must not answer on its parent's socket. */
static void after_fork_child(void)
{
    if (C.fd >= 0)
        close(C.fd);
    C.fd = -1;
    C.started = false;
    pthread_mutex_init(&C.lock, NULL);
}

__attribute__((destructor)) static void ctl_exit(void)
{
    if (C.fd >= 0 && C.pid == getpid())
        (void)unlink(C.path);
}

static int listen_at(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    memcpy(a.sun_path, path, strlen(path) + 1);
    (void)unlink(path); /* a process of the same pid before us */
    /* The socket is the task's user's alone (0600, in a 0700 directory of its own): only that
     * user and root (the daemon) can connect, never another tenant's user (SWAP.md). */
    if (fd >= 0 && (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || chmod(path, 0600) != 0 || listen(fd, 4) != 0)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/*
 * This process will never have a control socket: says so to the daemon with an empty file
 * <GPUSHARE_SWAP>/<pid>.noswap (0600), so memory overcommit counts its task at its promise at
 * once instead of waiting for a socket that will not come (SWAP.md, "Waiting for room"; the
 * daemon's src/node/swap.ts, pending). A file rather than a word in the region: the region is
 * the task's, this is one process's, and the directory is where the daemon already looks.
 */
static void say_no_swap(void)
{
    char path[GS_CONFIG_PATH_LEN + 32];
    int n = snprintf(path, sizeof path, "%s/%d.noswap", gs_cfg.swap_dir, (int)getpid());
    if (n < 0 || (size_t)n >= sizeof path)
        return;
    (void)mkdir(gs_cfg.swap_dir, 0700); /* as gs_swap_ctl_start: a task of its own user makes it */
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        gs_log(GS_LOG_WARN, "swap: cannot write %s (%s); the daemon finds out later", path, strerror(errno));
        return;
    }
    close(fd);
}

/* This process said <pid>.noswap, or has its socket: nothing more to say (reset in a forked child). */
static _Atomic int said_no_swap;
static void said_reset_child(void)
{
    atomic_store(&said_no_swap, 0);
}

void gs_swap_ctl_unswappable(void)
{
    static bool atfork;
    if (atomic_load_explicit(&said_no_swap, memory_order_relaxed) != 0 || !gs_swap_on())
        return;
    pthread_mutex_lock(&C.lock);
    if (atomic_load(&said_no_swap) == 0) {
        if (!atfork)
            atfork = pthread_atfork(NULL, NULL, said_reset_child) == 0;
        if (!C.started)
            say_no_swap();
        atomic_store(&said_no_swap, 1);
    }
    pthread_mutex_unlock(&C.lock);
}

void gs_swap_ctl_start(void)
{
    static bool atfork;
    pthread_mutex_lock(&C.lock);
    if (C.started) {
        pthread_mutex_unlock(&C.lock);
        return;
    }
    C.started = true;
    if (!atfork)
        atfork = pthread_atfork(NULL, NULL, after_fork_child) == 0;
    int n = snprintf(C.path, sizeof C.path, "%s/%d.sock", gs_cfg.swap_dir, (int)getpid());
    /* A task run as its tenant's own user makes the directory itself (the daemon, root, could
     * not give it one its user owns before the user exists in the task's own directory). */
    if (mkdir(gs_cfg.swap_dir, 0700) != 0 && errno != EEXIST)
        gs_log(GS_LOG_WARN, "swap: cannot create %s (%s)", gs_cfg.swap_dir, strerror(errno));
    if (n < 0 || (size_t)n >= sizeof C.path) {
        gs_log(GS_LOG_WARN, "swap: GPUSHARE_SWAP is too long for a socket path; this process cannot be swapped");
        say_no_swap();
    } else if ((C.fd = listen_at(C.path)) < 0) {
        gs_log(GS_LOG_WARN, "swap: cannot listen on %s (%s); this process cannot be swapped", C.path, strerror(errno));
        say_no_swap();
    } else {
        /* the thread takes none of the program's signals (sigprocmask: the calling thread's
         * mask on Linux, and in glibc 2.2.5 where pthread_sigmask moved to 2.32's libc) */
        sigset_t all, old;
        sigfillset(&all);
        sigprocmask(SIG_SETMASK, &all, &old);
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, serve, (void *)(intptr_t)C.fd) != 0) {
            gs_log(GS_LOG_WARN, "swap: cannot start the control thread; this process cannot be swapped");
            close(C.fd);
            (void)unlink(C.path);
            C.fd = -1;
            say_no_swap();
        }
        pthread_attr_destroy(&attr);
        sigprocmask(SIG_SETMASK, &old, NULL);
        C.pid = getpid();
    }
    pthread_mutex_unlock(&C.lock);
}
