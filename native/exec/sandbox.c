/*
 * The task's sandbox, entered by the wrapper's child just before exec (sandbox.h says how the
 * daemon asks for it). Order matters: the cgroup is joined while still root (cgroup.procs is
 * root's), then groups, gid and uid are dropped in that order (after setuid nothing else may
 * change), and PR_SET_NO_NEW_PRIVS makes sure no setuid binary the task runs gives it back.
 * The wrapper itself stays root: it must still write the exit-status file in the daemon's
 * private directory, and the task, running as another user, can neither signal nor trace it.
 */
#define _GNU_SOURCE
#include "sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "../region/gpushare_board.h"

enum { MAX_GROUPS = 64 };

/* A decimal id from 1 to 2^32-2 (0 would be root, -1 is "no change" to the kernel). */
static int parse_id(const char *text, unsigned long *out) {
    if (text == NULL || text[0] < '0' || text[0] > '9') return -1;
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(text, &end, 10);
    if (errno != 0 || end == text || (*end != '\0' && *end != ',') || v == 0 || v >= 0xffffffffUL) return -1;
    *out = v;
    return 0;
}

static int fail(const char *what, const char *detail, int err) {
    fprintf(stderr, "gpushare-exec: sandbox: %s%s%s: %s\n", what, detail ? " " : "", detail ? detail : "", strerror(err));
    errno = err;
    return -1;
}

/* mkdir that is content with a directory already there. */
static int ensure_dir(const char *path, mode_t mode) {
    if (mkdir(path, mode) == 0 || errno == EEXIST) return 0;
    return fail("cannot create", path, errno);
}

/* Creates the task's cgroup (and its tenant's level) and moves this process into it. Made
 * here rather than by the daemon: these mkdirs cost the daemon's event loop nothing. */
static int join_cgroup(const char *dir) {
    char path[PATH_MAX];
    const char *slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir || (size_t)(slash - dir) >= sizeof path) return fail("not a cgroup directory:", dir, EINVAL);
    memcpy(path, dir, (size_t)(slash - dir));
    path[slash - dir] = '\0';
    if (ensure_dir(path, 0755) != 0 || ensure_dir(dir, 0755) != 0) return -1;
    int n = snprintf(path, sizeof path, "%s/cgroup.procs", dir);
    if (n < 0 || (size_t)n >= sizeof path) return fail("cgroup path too long", dir, ENAMETOOLONG);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return fail("cannot open", path, errno);
    /* "0" moves the writing process itself; its children will be born inside. */
    ssize_t w = write(fd, "0", 1);
    int err = errno;
    if (close(fd) != 0 && w == 1) return fail("cannot join", path, errno);
    if (w != 1) return fail("cannot join", path, w < 0 ? err : EIO);
    return 0;
}

static int parse_groups(const char *text, gid_t *groups, size_t *count) {
    *count = 0;
    if (text == NULL || text[0] == '\0') return 0;
    for (const char *p = text;;) {
        unsigned long g;
        if (*count == MAX_GROUPS || parse_id(p, &g) != 0) return -1;
        groups[(*count)++] = (gid_t)g;
        p = strchr(p, ',');
        if (p == NULL) return 0;
        p++;
    }
}

/* Who the task runs as, from the daemon's variables. */
typedef struct {
    uid_t uid;
    gid_t gid;
    gid_t groups[MAX_GROUPS];
    size_t count;
} task_user;

static int parse_user(const char *uid_text, const char *gid_text, const char *groups_text, task_user *u) {
    unsigned long uid, gid;
    if (parse_id(uid_text, &uid) != 0 || strchr(uid_text, ',') != NULL) return fail("GPUSHARE_EXEC_UID is not a user id above 0:", uid_text, EINVAL);
    if (gid_text == NULL || parse_id(gid_text, &gid) != 0 || strchr(gid_text, ',') != NULL) return fail("GPUSHARE_EXEC_GID is not a group id above 0:", gid_text ? gid_text : "(unset)", EINVAL);
    if (parse_groups(groups_text, u->groups, &u->count) != 0) return fail("GPUSHARE_EXEC_GROUPS is not a list of group ids:", groups_text, EINVAL);
    u->uid = (uid_t)uid;
    u->gid = (gid_t)gid;
    return 0;
}

/* The task's own directory (its region, its HOME): created by root in the daemon's
 * root-owned task directory, then given to the task's user alone. */
static int make_own_dir(const char *dir, const task_user *u) {
    if (ensure_dir(dir, 0700) != 0) return -1;
    struct stat st;
    if (lstat(dir, &st) != 0) return fail("cannot stat", dir, errno);
    if (!S_ISDIR(st.st_mode)) return fail("not a directory:", dir, ENOTDIR);
    if (chown(dir, u->uid, u->gid) != 0) return fail("cannot chown", dir, errno);
    if (chmod(dir, 0700) != 0) return fail("cannot chmod", dir, errno);
    return 0;
}

static int drop_to(const task_user *u) {
    if (setgroups(u->count, u->groups) != 0) return fail("setgroups", NULL, errno);
    if (setresgid(u->gid, u->gid, u->gid) != 0) return fail("setresgid", NULL, errno);
    if (setresuid(u->uid, u->uid, u->uid) != 0) return fail("setresuid", NULL, errno);
    /* Belt and braces: a uid change that silently did not happen must not run the task as root. */
    if (getuid() != u->uid || geteuid() != u->uid || getegid() != u->gid) return fail("the user change did not take", NULL, EPERM);
    if (setresuid(0, 0, 0) == 0) return fail("root could be regained after the user change", NULL, EPERM);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1L, 0L, 0L, 0L) != 0) return fail("PR_SET_NO_NEW_PRIVS", NULL, errno);
    return 0;
}

/*
 * The task's user's compute boards (sandbox.h: GPUSHARE_EXEC_BOARDS), made here, as root and
 * before the user change, because their directory is root's: a task can then write its own
 * user's board and no other, and cannot make boards under other users' names. A board its user
 * shrank (which hurts only that user's processes: the others read it, never map it) is brought
 * back to size for the next task. A board that cannot be made is said on the task's stderr; the
 * task runs, its compute limited for itself alone (libgpushare says so too).
 */
static void make_boards(char *list, uid_t uid, gid_t gid, int give) {
    for (char *path = list, *next; path != NULL && path[0] != '\0'; path = next) {
        next = strchr(path, ':');
        if (next != NULL) *next++ = '\0';
        int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
        struct stat st;
        const char *step = fd < 0 ? "open" : fstat(fd, &st) != 0 ? "stat" : NULL;
        if (step == NULL && !S_ISREG(st.st_mode)) {
            step = "use";
            errno = EINVAL; /* not a plain file */
        }
        if (step == NULL && give && (st.st_uid != uid || st.st_gid != gid) && fchown(fd, uid, gid) != 0) step = "chown";
        if (step == NULL && (st.st_mode & 07777) != 0644 && fchmod(fd, 0644) != 0) step = "chmod";
        if (step == NULL && st.st_size < (off_t)GS_BOARD_FILE_SIZE && ftruncate(fd, GS_BOARD_FILE_SIZE) != 0) step = "size";
        if (step != NULL)
            fprintf(stderr, "gpushare-exec: cannot %s the compute board %s (%s): compute is limited for this task alone\n",
                    step, path, strerror(errno));
        if (fd >= 0) close(fd);
    }
}

/* The PATH left when none of the submitter's entries can be searched (sudo's secure_path). */
static const char SECURE_PATH[] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/*
 * Drops the PATH entries the new user cannot search (the submitter's /root/.local/bin, say):
 * execvp would otherwise report a missing command as EACCES ("permission denied") instead of
 * ENOENT, and so would every shell the task starts. Empty and relative entries are kept; a
 * PATH with nothing left becomes SECURE_PATH.
 */
static int prune_path(void) {
    const char *path = getenv("PATH");
    if (path == NULL) return 0;
    size_t len = strlen(path);
    char *copy = malloc(len + 1), *kept = malloc(len + 1);
    if (copy == NULL || kept == NULL) {
        free(copy);
        free(kept);
        return fail("PATH", "is too long to copy", ENOMEM);
    }
    memcpy(copy, path, len + 1);
    size_t used = 0, entries = 0;
    for (char *entry = copy, *next; entry != NULL; entry = next) {
        next = strchr(entry, ':');
        if (next != NULL) *next++ = '\0';
        if (entry[0] == '/' && access(entry, X_OK) != 0) continue;
        size_t n = strlen(entry);
        if (entries++ > 0) kept[used++] = ':';
        memcpy(kept + used, entry, n);
        used += n;
    }
    kept[used] = '\0';
    int rc = setenv("PATH", entries > 0 ? kept : SECURE_PATH, 1) == 0 ? 0 : fail("setenv", "PATH", errno);
    free(copy);
    free(kept);
    return rc;
}

int sandbox_enter(void) {
    /* Copied before unsetenv, which may free them; the command never sees these variables. */
    char cgroup[PATH_MAX], uid[32], gid[32], groups[MAX_GROUPS * 12], own[PATH_MAX];
    const char *vars[] = {"GPUSHARE_EXEC_CGROUP", "GPUSHARE_EXEC_UID", "GPUSHARE_EXEC_GID", "GPUSHARE_EXEC_GROUPS", "GPUSHARE_EXEC_OWN_DIR"};
    char *bufs[] = {cgroup, uid, gid, groups, own};
    const size_t sizes[] = {sizeof cgroup, sizeof uid, sizeof gid, sizeof groups, sizeof own};
    enum { NVARS = sizeof vars / sizeof vars[0] };
    int set[NVARS];
    for (size_t i = 0; i < NVARS; i++) {
        const char *v = getenv(vars[i]);
        set[i] = v != NULL;
        bufs[i][0] = '\0';
        if (v != NULL) {
            size_t n = strlen(v);
            if (n >= sizes[i]) return fail(vars[i], "is too long", E2BIG);
            memcpy(bufs[i], v, n + 1);
        }
        if (unsetenv(vars[i]) != 0) return fail("unsetenv", vars[i], errno);
    }
    /* The boards' list may be long (one path per GPU): copied whole, like the others. */
    const char *boards_var = getenv("GPUSHARE_EXEC_BOARDS");
    char *boards = boards_var != NULL ? strdup(boards_var) : NULL;
    if (boards_var != NULL && (boards == NULL || unsetenv("GPUSHARE_EXEC_BOARDS") != 0)) {
        free(boards);
        return fail("GPUSHARE_EXEC_BOARDS", "cannot be copied", errno != 0 ? errno : ENOMEM);
    }
    if (set[0] && cgroup[0] != '\0' && join_cgroup(cgroup) != 0) {
        free(boards);
        return -1;
    }
    if (!set[1]) {
        make_boards(boards, getuid(), getgid(), 0);
        free(boards);
        return 0;
    }
    task_user user;
    if (parse_user(uid, set[2] ? gid : NULL, groups, &user) != 0) {
        free(boards);
        return -1;
    }
    make_boards(boards, user.uid, user.gid, 1);
    free(boards);
    if (set[4] && own[0] != '\0' && make_own_dir(own, &user) != 0) return -1;
    if (drop_to(&user) != 0 || prune_path() != 0) return -1;
    /* The daemon put us in the submitter's directory as root: say so plainly if the task's
     * user cannot use it, rather than let the command fail later in some confusing way. */
    if (access(".", X_OK) != 0) {
        int err = errno;
        char cwd[PATH_MAX];
        return fail("the task's user cannot enter its working directory", getcwd(cwd, sizeof cwd) ? cwd : "(unknown)", err);
    }
    return 0;
}

/*
 * Emptying the task's own directory when its command has ended (sandbox_clean_own_dir). Bounded,
 * so that a HOME full of caches never holds up the wrapper's exit (and so the task's recorded
 * end): what is left over is the daemon's to remove, with an `rm -rf` as the user, as before.
 * The top-level `region` is kept: the daemon samples it once more when it hears of the end
 * (supervisor.ts), and removes it and the directory itself (sandbox.ts removeOwnDir).
 */
enum { CLEAN_MAX_ENTRIES = 4096, CLEAN_MAX_DEPTH = 32 };

/* Removes everything in the directory `fd` (taken over and closed) without following a link:
 * every step is relative to a descriptor opened with O_NOFOLLOW, so a directory swapped for a
 * link mid-walk is unlinked as a link, never entered. 0 when it is empty (but for a kept region). */
static int empty_dir_at(int fd, int depth, size_t *budget) {
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) continue;
        if (depth == 0 && strcmp(name, "region") == 0) continue;
        if (*budget == 0) {
            rc = -1;
            break;
        }
        (*budget)--;
        if (unlinkat(dirfd(d), name, 0) == 0) continue;
        /* Linux says EISDIR for a directory (POSIX allows EPERM). */
        if ((errno != EISDIR && errno != EPERM) || depth + 1 >= CLEAN_MAX_DEPTH) {
            rc = -1;
            continue;
        }
        int sub = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sub < 0 || empty_dir_at(sub, depth + 1, budget) != 0 || unlinkat(dirfd(d), name, AT_REMOVEDIR) != 0) rc = -1;
    }
    closedir(d);
    return rc;
}

int sandbox_clean_own_dir(void) {
    const char *own = getenv("GPUSHARE_EXEC_OWN_DIR");
    const char *uid_text = getenv("GPUSHARE_EXEC_UID");
    if (own == NULL || own[0] == '\0' || uid_text == NULL) return 0;
    task_user user;
    if (parse_user(uid_text, getenv("GPUSHARE_EXEC_GID"), NULL, &user) != 0) return -1;
    /* Opened as root: the directory's path is root's all the way (sandbox.taskDir, 0711). */
    int fd = open(own, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 0 : -1;
    /* The walk has the task's user's rights and no more: its file-system ids (a change from 0
     * also drops the capabilities that bypass permissions) and no supplementary groups, as the
     * `rm` the daemon would run as that user has. Real, effective and saved ids stay root, so
     * what the task left running can neither signal nor trace this process meanwhile. */
    if (setgroups(0, NULL) != 0) {
        close(fd);
        return -1;
    }
    setfsgid(user.gid);
    setfsuid(user.uid);
    /* An invalid id changes nothing and returns the current one: the switch is checked. */
    int rc = -1;
    if ((uid_t)setfsuid((uid_t)-1) == user.uid && (gid_t)setfsgid((gid_t)-1) == user.gid) {
        size_t budget = CLEAN_MAX_ENTRIES;
        rc = empty_dir_at(fd, 0, &budget);
    } else {
        close(fd);
    }
    setfsuid(0);
    setfsgid(0);
    return rc;
}
