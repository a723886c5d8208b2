/*
 * The daemon's process starter (protocol and reasons: spawner.h). One loop over two inputs:
 * requests on stdin, and SIGCHLD through a signalfd; each request is answered before the next
 * is read, so replies come in request order.
 *
 * State: the input buffer lives in spawner_main's frame and is passed down; nothing global.
 */
#define _GNU_SOURCE
#include "spawner.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* A request larger than this is a broken daemon, not a big command line (Linux caps argv+env at 2 MiB-ish by default). */
#define MAX_REQUEST (64u << 20)

struct input {
    unsigned char *data;
    size_t len;
    size_t cap;
};

/* What the child leaves for the parent when it cannot exec: in the parent's frame, which the
 * vfork'd child shares (handle()). */
struct child_failure {
    int32_t step;
    int32_t err;
};

static int write_all(int fd, const void *buf, size_t len) {
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int reply(uint32_t kind, uint32_t tag, int32_t pid, int32_t value, uint64_t start_time) {
    struct spawn_reply r = {.kind = kind, .tag = tag, .pid = pid, .value = value, .start_time = start_time};
    return write_all(STDOUT_FILENO, &r, sizeof r);
}

/* /proc/PID/stat field 22, as src/node/proc.ts parses it; 0 when unreadable. */
static uint64_t start_time_of(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char buf[1024];
    ssize_t n;
    do n = read(fd, buf, sizeof buf - 1);
    while (n < 0 && errno == EINTR);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    /* The command name (field 2) may hold spaces and parentheses: count from the last ')'. */
    char *p = strrchr(buf, ')');
    if (p == NULL) return 0;
    /* p is at the space before field 3 (the state); move it to the space before field 22. */
    p++;
    for (int field = 3; field < 22 && p != NULL; field++) p = strchr(p + 1, ' ');
    if (p == NULL) return 0;
    return strtoull(p + 1, NULL, 10);
}

/* Makes every missing directory above `path` (0700, as mkdir -p would); -1 with errno on failure. */
static int make_parents(const char *path) {
    char dir[PATH_MAX];
    size_t len = strlen(path);
    if (len >= sizeof dir) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(dir, path, len + 1);
    for (char *p = dir + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return 0;
}

/* Opens a log file for appending, making its directories when they are missing. */
static int open_log(const char *path) {
    if (path[0] == '\0') return open("/dev/null", O_WRONLY);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (fd >= 0 || errno != ENOENT) return fd;
    if (make_parents(path) != 0) return -1;
    return open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
}

/*
 * The new session is a new autogroup (the kernel's CPU fairness per session): as root, it starts
 * at nice START_NICE, so a burst of starts (each its own session, as heavy as any other) does
 * not take the CPU from the daemon (whose group is at nice -10, src/node/priority.ts), from
 * those who submit and from the tasks already running; the wrapper gives its session the
 * normal weight back once its command is exec'd (gpushare_exec.c). A daemon that is not root
 * leaves it alone: its wrappers could not lower the nice again. Best effort: without
 * autogroups there is no such file and nothing changes. System calls only (vfork child).
 */
static const char START_NICE[] = "10";
static void start_low(void) {
    if (geteuid() != 0) return;
    int fd = open("/proc/self/autogroup", O_WRONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t ignored = write(fd, START_NICE, sizeof START_NICE - 1);
    (void)ignored;
    close(fd);
}

_Noreturn static void child_fail(volatile struct child_failure *report, int step) {
    report->err = errno;
    report->step = step;
    _exit(127);
}

/*
 * In the child, between vfork and exec: a session of its own (a kill of the task's group
 * reaches everything it starts, and a terminal's ^C at the daemon does not), the log files as
 * stdout/stderr, the working directory, the user, default signal handling. It shares the
 * spawner's memory until it execs or exits (the spawner waits meanwhile), so it makes system
 * calls only: no allocation, no stdio, nothing written but its own stack and `report`.
 */
_Noreturn static void run_child(volatile struct child_failure *report, const struct spawn_request *req, const char *out, const char *err, const char *cwd, char **argv, char **envp) {
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    /* exec keeps ignored signals ignored: what spawner_main ignores, a task never does. */
    const int restored[] = {SIGPIPE, SIGINT, SIGQUIT, SIGHUP};
    for (size_t i = 0; i < sizeof restored / sizeof restored[0]; i++) signal(restored[i], SIG_DFL);
    if (setsid() < 0) child_fail(report, SPAWN_STEP_FORK);
    start_low();
    int in = open("/dev/null", O_RDONLY);
    if (in < 0 || dup2(in, STDIN_FILENO) < 0) child_fail(report, SPAWN_STEP_STDOUT);
    int o = open_log(out);
    if (o < 0 || dup2(o, STDOUT_FILENO) < 0) child_fail(report, SPAWN_STEP_STDOUT);
    int e = open_log(err);
    if (e < 0 || dup2(e, STDERR_FILENO) < 0) child_fail(report, SPAWN_STEP_STDERR);
    if (in > STDERR_FILENO) close(in);
    if (o > STDERR_FILENO) close(o);
    if (e > STDERR_FILENO) close(e);
    if (cwd[0] != '\0' && chdir(cwd) != 0) child_fail(report, SPAWN_STEP_CWD);
    if (req->uid >= 0) {
        if (setgroups(0, NULL) != 0 || setgid((gid_t)req->gid) != 0 || setuid((uid_t)req->uid) != 0) child_fail(report, SPAWN_STEP_USER);
    }
    execve(argv[0], argv, envp);
    child_fail(report, SPAWN_STEP_EXEC);
}

/* The next NUL-terminated string in [*p, end); NULL when the request ends first. */
static char *next_string(char **p, char *end) {
    char *s = *p;
    char *nul = memchr(s, '\0', (size_t)(end - s));
    if (nul == NULL) return NULL;
    *p = nul + 1;
    return s;
}

/* Handles one request (body of `len` bytes); -1 only when the daemon can no longer be told. */
static int handle(unsigned char *body, size_t len) {
    struct spawn_request req;
    if (len < sizeof req) return reply(SPAWN_FAILED, 0, 0, EINVAL, SPAWN_STEP_REQUEST);
    memcpy(&req, body, sizeof req);
    if (req.op != SPAWN_OP_SPAWN || req.argc == 0 || req.argc > len || req.envc > len) return reply(SPAWN_FAILED, req.tag, 0, EINVAL, SPAWN_STEP_REQUEST);
    char *p = (char *)body + sizeof req;
    char *end = (char *)body + len;
    char *out = next_string(&p, end);
    char *err = out ? next_string(&p, end) : NULL;
    char *cwd = err ? next_string(&p, end) : NULL;
    char **argv = calloc((size_t)req.argc + 1, sizeof *argv);
    char **envp = calloc((size_t)req.envc + 1, sizeof *envp);
    int ok = cwd != NULL && argv != NULL && envp != NULL;
    for (uint32_t i = 0; ok && i < req.argc; i++) ok = (argv[i] = next_string(&p, end)) != NULL;
    for (uint32_t i = 0; ok && i < req.envc; i++) ok = (envp[i] = next_string(&p, end)) != NULL;
    int rc;
    if (!ok || p != end) {
        rc = reply(SPAWN_FAILED, req.tag, 0, argv == NULL || envp == NULL ? ENOMEM : EINVAL, SPAWN_STEP_REQUEST);
    } else {
        /*
         * vfork: the child borrows this process's memory until its exec, so no page table is
         * copied for a process that is about to replace its image anyway (fork + exec of a
         * small static program took 1.3 ms of CPU, vfork + exec 0.9 ms, on the development VM,
         * where page-table updates trap),
         * and this process resumes only once the child has exec'd or failed: `failure` then
         * says which, with no pipe to make and read.
         */
        volatile struct child_failure failure = {0, 0};
        pid_t pid = vfork();
        if (pid == 0) run_child(&failure, &req, out, err, cwd, argv, envp);
        if (pid < 0) {
            rc = reply(SPAWN_FAILED, req.tag, 0, errno, SPAWN_STEP_FORK);
        } else if (failure.step != 0) {
            /* It never ran: reaped here, so no SPAWN_EXITED follows for it. */
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {}
            rc = reply(SPAWN_FAILED, req.tag, 0, failure.err, (uint64_t)failure.step);
        } else {
            rc = reply(SPAWN_STARTED, req.tag, pid, 0, start_time_of(pid));
        }
    }
    free(argv);
    free(envp);
    return rc;
}

/* Reports every child that ended since the last call. */
static int reap(void) {
    for (;;) {
        int st;
        pid_t pid = waitpid(-1, &st, WNOHANG);
        if (pid > 0) {
            if (reply(SPAWN_EXITED, 0, pid, st, 0) != 0) return -1;
            continue;
        }
        if (pid < 0 && errno == EINTR) continue;
        return 0; /* 0: none ended yet; ECHILD: no children */
    }
}

/* Handles every whole request in the buffer and keeps the rest; -1 on a broken stream. */
static int drain(struct input *in) {
    size_t at = 0;
    while (in->len - at >= sizeof(uint32_t)) {
        uint32_t len;
        memcpy(&len, in->data + at, sizeof len);
        if (len > MAX_REQUEST) {
            fprintf(stderr, "gpushare-exec --spawner: a request of %u bytes is over the %u-byte limit; the stream is broken\n", len, MAX_REQUEST);
            return -1;
        }
        if (in->len - at - sizeof len < len) break;
        if (handle(in->data + at + sizeof len, len) != 0) return -1;
        at += sizeof len + len;
    }
    memmove(in->data, in->data + at, in->len - at);
    in->len -= at;
    return 0;
}

/* Reads what stdin has; 1 at its end, -1 on error. */
static int fill(struct input *in) {
    if (in->cap - in->len < 65536) {
        size_t cap = in->cap == 0 ? 262144 : in->cap * 2;
        unsigned char *data = realloc(in->data, cap);
        if (data == NULL) return -1;
        in->data = data;
        in->cap = cap;
    }
    ssize_t n;
    do n = read(STDIN_FILENO, in->data + in->len, in->cap - in->len);
    while (n < 0 && errno == EINTR);
    if (n < 0) return -1;
    if (n == 0) return 1;
    in->len += (size_t)n;
    return 0;
}

int spawner_main(void) {
    /* A daemon gone mid-reply is an EPIPE to notice, not a signal that kills us silently. A
     * terminal's ^C, quit or hangup at the daemon's process group is the daemon's to act on:
     * this process ends at its end of input. */
    const int ignored[] = {SIGPIPE, SIGINT, SIGQUIT, SIGHUP};
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++) signal(ignored[i], SIG_IGN);
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &chld, NULL) != 0) {
        perror("gpushare-exec --spawner: sigprocmask");
        return 1;
    }
    int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) {
        perror("gpushare-exec --spawner: signalfd");
        return 1;
    }
    struct input in = {NULL, 0, 0};
    int status = 0;
    for (;;) {
        struct pollfd fds[2] = {{.fd = STDIN_FILENO, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR) continue;
            perror("gpushare-exec --spawner: poll");
            status = 1;
            break;
        }
        if (fds[1].revents & POLLIN) {
            struct signalfd_siginfo info;
            while (read(sfd, &info, sizeof info) > 0) {}
            if (reap() != 0) break; /* the daemon is gone */
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            int r = fill(&in);
            if (r == 1) break; /* the daemon closed us: what we started runs on */
            if (r < 0 || drain(&in) != 0) {
                status = 1;
                break;
            }
        }
    }
    free(in.data);
    close(sfd);
    return status;
}
