/*
 * gpushare-exec: the parent of every task's command. The daemon starts it as the leader of the
 * task's process group; it runs the command as its child and, when the command ends, writes
 * how it ended to a status file ("exit N", "signal N", or "error ERRNO" when it could not be
 * started at all). The daemon may have restarted meanwhile: a process it did not start is not
 * its child, so without this file an adopted task's exit code would be unknowable.
 *
 *   gpushare-exec [--claim CLAIM_FILE] STATUS_FILE -- COMMAND [ARGS...]
 *   gpushare-exec --spawner      the daemon's process starter (spawner.h)
 *
 * With --claim, it first claims the launch (claim.h): a wrapper that finds the claim taken runs
 * nothing and exits with EXIT_CLAIM_TAKEN (120), so a task's command runs once even when a
 * daemon crash led to two wrappers being started for it.
 *
 * GPUSHARE_EXEC_GRANT and GPUSHARE_EXEC_BOARDS, when set, give the task its compute grants (grant.h):
 * taken here, as root, before the command exists, and freed when it ends.
 *
 * GPUSHARE_EXEC_PRELOAD, when set, becomes the command's LD_PRELOAD (prepended to any it
 * already has), so libgpushare loads into the task and never into this wrapper.
 *
 * The task's own variables that the dynamic loader or libc act on (LD_PRELOAD, LD_LIBRARY_PATH,
 * GCONV_PATH, ...) arrive renamed GPUSHARE_EXEC_TASK_ENV_<NAME> (launcher.ts wrapperEnvironment):
 * this wrapper runs as root, and under their own names the loader would run a tenant's library
 * in it before main. The child names them back just before it enters the sandbox and execs.
 *
 * Signals sent to the group reach the command directly; the wrapper catches them (so it
 * survives to write the status) without forwarding, which would deliver them twice.
 */
/* syscall(2), for close_range without a glibc 2.34 symbol (cloexec_inherited). */
#define _DEFAULT_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "claim.h"
#include "grant.h"
#include "sandbox.h"
#include "spawner.h"

/* Exit statuses of the wrapper itself when the command never ran (as env(1) uses them). */
enum { EXIT_WRAPPER = 125, EXIT_CANNOT_RUN = 126, EXIT_NOT_FOUND = 127 };

static void on_signal(int sig) { (void)sig; }

extern char **environ;

/* Names the task's loader variables back (see the top of this file); -1 with errno on failure. */
static int restore_task_env(void) {
    static const char prefix[] = "GPUSHARE_EXEC_TASK_ENV_";
    const size_t plen = sizeof prefix - 1;
    for (;;) {
        const char *found = NULL;
        for (char **e = environ; *e != NULL && found == NULL; e++)
            if (strncmp(*e, prefix, plen) == 0) found = *e;
        if (found == NULL) return 0;
        char *copy = strdup(found);
        if (copy == NULL) return -1;
        char *eq = strchr(copy, '=');
        if (eq != NULL) *eq = '\0';
        /* unsetenv removes every entry of the name, so each turn removes at least one. */
        int rc = unsetenv(copy);
        if (rc == 0 && eq != NULL && copy[plen] != '\0') rc = setenv(copy + plen, eq + 1, 1);
        free(copy);
        if (rc != 0) return -1;
    }
}

/*
 * Not fsynced, as the claim is not (claim.c): the file must outlive the daemon's process, which
 * the page cache gives; after a machine crash the task is dead and the daemon's own last commits
 * may be gone too (synchronous=NORMAL). An fsync here was a journal commit per ended task, the
 * largest cost of a short task's start and end on this development machine's disk.
 */
static int write_status(const char *path, const char *text) {
    size_t len = strlen(path) + 5;
    char *tmp = malloc(len);
    if (tmp == NULL) return -1;
    snprintf(tmp, len, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rc = -1;
    if (fd >= 0) {
        size_t n = strlen(text);
        rc = write(fd, text, n) == (ssize_t)n ? 0 : -1;
        if (close(fd) != 0) rc = -1;
        /* rename is atomic: a reader sees no file or a whole one, never half a line. */
        if (rc == 0 && rename(tmp, path) != 0) rc = -1;
    }
    if (rc != 0) fprintf(stderr, "gpushare-exec: cannot write %s: %s\n", path, strerror(errno));
    free(tmp);
    return rc;
}

/*
 * Nothing the daemon or whoever started it left open reaches the task: every descriptor from 3
 * up closes at exec (the report pipe already does). close_range(2) with CLOSE_RANGE_CLOEXEC
 * (Linux 5.11) by syscall, so the binary needs no glibc 2.34; else each one in /proc/self/fd
 * (this process is single-threaded, so opendir's allocation is safe after fork).
 */
static int cloexec_inherited(void) {
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */) == 0) return 0;
#endif
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL) return -1;
    int own = dirfd(d);
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(e->d_name, &end, 10);
        if (*end != '\0' || end == e->d_name || fd < 3 || fd == own) continue;
        int flags = fcntl((int)fd, F_GETFD);
        if (flags < 0 || fcntl((int)fd, F_SETFD, flags | FD_CLOEXEC) != 0) rc = -1;
    }
    if (closedir(d) != 0) rc = -1;
    return rc;
}

static void set_preload(void) {
    const char *ours = getenv("GPUSHARE_EXEC_PRELOAD");
    if (ours == NULL || ours[0] == '\0') return;
    const char *theirs = getenv("LD_PRELOAD");
    if (theirs == NULL || theirs[0] == '\0') {
        setenv("LD_PRELOAD", ours, 1);
    } else {
        size_t len = strlen(ours) + strlen(theirs) + 2;
        char *both = malloc(len);
        if (both == NULL) return;
        snprintf(both, len, "%s:%s", ours, theirs);
        setenv("LD_PRELOAD", both, 1);
        free(both);
    }
    unsetenv("GPUSHARE_EXEC_PRELOAD");
}

/*
 * The spawner starts a root daemon's wrappers in sessions whose autogroup is at a low weight
 * (spawner.c start_low): once the command is exec'd (or could not be), the session, the
 * command's, gets the normal weight (nice 0) back. Only for a session this wrapper leads (the
 * spawner's): one run from a shell shares that shell's group, which is not ours to change.
 */
static void normal_weight(void) {
    if (getsid(0) != getpid()) return;
    int fd = open("/proc/self/autogroup", O_WRONLY | O_CLOEXEC);
    if (fd < 0) return;
    ssize_t ignored = write(fd, "0", 1);
    (void)ignored;
    close(fd);
}

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--spawner") == 0) return spawner_main();
    const char *claim = NULL;
    if (argc >= 3 && strcmp(argv[1], "--claim") == 0) {
        claim = argv[2];
        argc -= 2;
        argv += 2;
    }
    if (argc < 4 || strcmp(argv[2], "--") != 0) {
        fprintf(stderr, "usage: gpushare-exec [--claim CLAIM_FILE] STATUS_FILE -- COMMAND [ARGS...]\n       gpushare-exec --spawner\n");
        return EXIT_WRAPPER;
    }
    const char *status = argv[1];
    if (claim != NULL) {
        claim_result_t claimed = claim_launch(claim);
        if (claimed != CLAIM_TAKEN_BY_US) return claimed == CLAIM_HELD_BY_OTHER ? EXIT_CLAIM_TAKEN : EXIT_WRAPPER;
    }
    /* The task's compute grants (grant.h), written as root before the command exists; freed
     * below when it ends. */
    grants_taken grants;
    grants_take(&grants);
    /* The child reports a failed exec through this pipe; a successful exec closes it empty. */
    int report[2];
    if (pipe(report) != 0 || fcntl(report[1], F_SETFD, FD_CLOEXEC) != 0) {
        fprintf(stderr, "gpushare-exec: pipe: %s\n", strerror(errno));
        grants_release(&grants);
        return EXIT_WRAPPER;
    }
    pid_t child = fork();
    if (child < 0) {
        fprintf(stderr, "gpushare-exec: fork: %s\n", strerror(errno));
        grants_release(&grants);
        return EXIT_WRAPPER;
    }
    if (child == 0) {
        close(report[0]);
        if (restore_task_env() == 0) {
            set_preload();
            if (sandbox_enter() == 0 && cloexec_inherited() == 0) execvp(argv[3], argv + 3);
        }
        int err = errno;
        ssize_t ignored = write(report[1], &err, sizeof err);
        (void)ignored;
        fprintf(stderr, "gpushare-exec: cannot run %s: %s\n", argv[3], strerror(err));
        _exit(err == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_RUN);
    }
    close(report[1]);
    /* Caught (not ignored) in the parent only: the child's dispositions stay the defaults. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    const int caught[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT};
    for (size_t i = 0; i < sizeof caught / sizeof caught[0]; i++) sigaction(caught[i], &sa, NULL);

    int exec_errno = 0;
    ssize_t got;
    do got = read(report[0], &exec_errno, sizeof exec_errno);
    while (got < 0 && errno == EINTR);
    close(report[0]);
    normal_weight();

    int st;
    while (waitpid(child, &st, 0) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "gpushare-exec: waitpid: %s\n", strerror(errno));
            return EXIT_WRAPPER;
        }
    }
    grants_release(&grants);
    char line[64];
    int code;
    if (got == (ssize_t)sizeof exec_errno) {
        snprintf(line, sizeof line, "error %d\n", exec_errno);
        code = exec_errno == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT_RUN;
    } else if (WIFSIGNALED(st)) {
        snprintf(line, sizeof line, "signal %d\n", WTERMSIG(st));
        code = 128 + WTERMSIG(st);
    } else {
        snprintf(line, sizeof line, "exit %d\n", WEXITSTATUS(st));
        code = WEXITSTATUS(st);
    }
    write_status(status, line);
    /* After the status, so a kill meanwhile loses nothing the daemon needs: the daemon's end of
     * the task then finds its directory empty and starts no `rm` (an exec per task) to empty it. */
    (void)sandbox_clean_own_dir();
    return code;
}
