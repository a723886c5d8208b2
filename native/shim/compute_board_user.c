/*
 * compute_board_user.c: boards per user (GPUSHARE_COMPUTE_BOARD=per-user; COMPUTE.md "Boards
 * per user"; compute_board.c has the one shared board). The daemon gives each user of a GPU its
 * own board, <dir>/gpushare-compute-<UUID>.u<uid>, owned by that user in a directory only root
 * writes, and each task a grant (gpushare_board.h "Grants"): its share, priority and policy in a
 * file only root writes. The layout is the grants', in grant order; a user's board gives only
 * whether a grant of that user wants the GPU (slot g's demand for grant g), so what a user writes
 * there can never raise its share or priority, nor stand for another user's grant. A process
 * maps its own user's board (the only one it may write) and the grants (root's: never
 * truncated), and reads the others' boards with pread, never through a mapping: their owners may
 * truncate them, which would kill a mapping's reader with SIGBUS, while a short read only leaves
 * their grants out of the layout.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "compute_state.h"
#include "log.h"
#include "state.h"

/* Other users' boards read per GPU; more are left out (the same ones in every process: by uid). */
#define PEERS_MAX 64

/* Boards per user: the GPU's grants, ours, and the other users' boards, each open read-only. */
struct gs_board_peers {
    pthread_mutex_t lock; /* one thread of the process rescans or reads at a time */
    const gs_grants *grants; /* mapped read-only (root's file: never shrunk under us) */
    int grant;               /* ours: the slot of our board we write our demand in */
    uint64_t checked_period; /* when the grants' owners were last looked for (once a period) */
    uint64_t dead_owner[GS_GRANTS_ENTRIES]; /* a grant's owner word found gone then; 0: none */
    int dirfd;            /* the boards' directory (its mtime says when a board was added) */
    char prefix[96];      /* "gpushare-compute-<UUID>.u" */
    uint32_t uid;         /* ours: our own board is mapped, not read here */
    struct timespec mtime; /* the directory's at the last scan */
    bool scanned;
    int n;
    struct {
        uint32_t uid;
        int fd;
    } peer[PEERS_MAX]; /* by uid */
};

static_assert(GS_GRANTS_ENTRIES <= GS_WINDOWS_MAX, "the grants fit one layout");

/* Our grant's index on this GPU, from GS_GRANTS_ENV ("<UUID>=<g>,..."); -1: none given. */
static int grant_index(const char *uuid)
{
    const char *v = getenv(GS_GRANTS_ENV);
    size_t ulen = strlen(uuid);
    for (const char *at = v; at != NULL && *at != '\0'; at = strchr(at, ',') ? strchr(at, ',') + 1 : NULL) {
        if (strncmp(at, uuid, ulen) != 0 || at[ulen] != '=' || at[ulen + 1] < '0' || at[ulen + 1] > '9')
            continue;
        char *end;
        unsigned long g = strtoul(at + ulen + 1, &end, 10);
        if ((*end == '\0' || *end == ',') && g < GS_GRANTS_ENTRIES)
            return (int)g;
    }
    return -1;
}

/* The GPU's grants, mapped read-only, when they are the boards directory's owner's (root's) and
 * nobody else may write them; NULL with why. */
static const gs_grants *grants_open(int dirfd, const char *uuid, const char **why)
{
    char name[300];
    (void)snprintf(name, sizeof name, GS_BOARD_FILE_PREFIX "%s" GS_GRANTS_FILE_SUFFIX, uuid);
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat sb, ds;
    *why = NULL;
    if (fd < 0)
        *why = "no grants file";
    else if (fstat(fd, &sb) != 0 || fstat(dirfd, &ds) != 0 || !S_ISREG(sb.st_mode) || sb.st_uid != ds.st_uid ||
             (sb.st_mode & 022) != 0)
        *why = "the grants file is not the directory owner's alone";
    else if ((size_t)sb.st_size < sizeof(gs_grants))
        *why = "the grants file is short";
    void *m = *why == NULL ? mmap(NULL, sizeof(gs_grants), PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
    if (fd >= 0)
        (void)close(fd);
    if (*why == NULL && m == MAP_FAILED)
        *why = "the grants file cannot be mapped";
    if (*why != NULL)
        return NULL;
    const gs_grants *g = m;
    if (atomic_load(&g->magic) != GS_GRANTS_MAGIC || atomic_load(&g->version) != GS_GRANTS_VERSION) {
        (void)munmap(m, sizeof *g);
        *why = "the grants file is not of this version";
        return NULL;
    }
    return g;
}

/* Our user's board (boards per user): made by gpushare-exec for us, never created here (the
 * directory is root's); it must be ours and whole, and our task must hold a grant on the GPU
 * (made by gpushare-exec as root, GS_GRANTS_ENV says which). Fills *peers with the grants and
 * the other users' boards. */
gs_board *gs_board_user_open(const char *uuid, struct gs_board_peers **peers)
{
    const char *dir = gs_board_dir();
    char path[4200];
    uint32_t uid = (uint32_t)geteuid();
    (void)snprintf(path, sizeof path, "%s/" GS_BOARD_FILE_PREFIX "%s.u%u", dir, uuid, uid);
    int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    struct stat sb;
    const char *why = NULL;
    if (fd < 0)
        why = strerror(errno);
    else if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_uid != uid)
        why = "not a file of this user";
    else if ((size_t)sb.st_size < sizeof(gs_board))
        why = "shorter than a board";
    if (why != NULL) {
        if (fd >= 0)
            (void)close(fd);
        gs_log(GS_LOG_WARN, "cannot use %s (%s): compute is limited for this process alone, not shared with others on "
                            "the GPU", path, why);
        return NULL;
    }
    struct gs_board_peers *p = calloc(1, sizeof *p);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (p == NULL || dfd < 0) {
        free(p);
        if (dfd >= 0)
            (void)close(dfd);
        (void)close(fd);
        gs_log(GS_LOG_WARN, "cannot read %s: compute is limited for this process alone", dir);
        return NULL;
    }
    (void)pthread_mutex_init(&p->lock, NULL);
    p->dirfd = dfd;
    p->uid = uid;
    p->grant = grant_index(uuid);
    (void)snprintf(p->prefix, sizeof p->prefix, GS_BOARD_FILE_PREFIX "%s.u", uuid);
    p->grants = grants_open(dfd, uuid, &why);
    if (why == NULL && p->grant < 0)
        why = "no grant for this GPU in " GS_GRANTS_ENV;
    if (why == NULL && (atomic_load(&p->grants->grant[p->grant].live) != 1 ||
                        atomic_load(&p->grants->grant[p->grant].uid) != uid))
        why = "the grant " GS_GRANTS_ENV " names is not this user's";
    gs_board *b = why == NULL ? gs_board_map(fd, path) : NULL;
    if (b == NULL) {
        if (why != NULL) {
            (void)close(fd);
            gs_log(GS_LOG_WARN, "cannot use %s (%s): compute is limited for this process alone, not shared with "
                                "others on the GPU", path, why);
        }
        if (p->grants != NULL)
            (void)munmap((void *)p->grants, sizeof *p->grants);
        (void)close(dfd);
        (void)pthread_mutex_destroy(&p->lock);
        free(p);
        return NULL;
    }
    *peers = p;
    return b;
}

/* The uid a board's file name gives after the prefix ("1001"), or -1 when it is not one. */
static int64_t name_uid(const char *rest)
{
    if (rest[0] < '0' || rest[0] > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(rest, &end, 10);
    return errno != 0 || *end != '\0' || v > UINT32_MAX ? -1 : (int64_t)v;
}

/* Re-reads which other users have a board, when the directory changed since the last time (only
 * gpushare-exec adds boards there). A board counts when it is a plain file of the user its name
 * says: a link, or another user's board linked under a new name, is not one. Under p->lock. */
static void peers_scan(struct gs_board_peers *p)
{
    struct stat ds;
    if (fstat(p->dirfd, &ds) != 0 ||
        (p->scanned && ds.st_mtim.tv_sec == p->mtime.tv_sec && ds.st_mtim.tv_nsec == p->mtime.tv_nsec))
        return;
    int dup_fd = dup(p->dirfd);
    DIR *dir = dup_fd < 0 ? NULL : fdopendir(dup_fd);
    if (dir == NULL) {
        if (dup_fd >= 0)
            (void)close(dup_fd);
        return; /* the boards known stay; tried again next time */
    }
    for (int i = 0; i < p->n; i++)
        (void)close(p->peer[i].fd);
    p->n = 0;
    rewinddir(dir);
    size_t plen = strlen(p->prefix);
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (strncmp(e->d_name, p->prefix, plen) != 0)
            continue;
        int64_t uid = name_uid(e->d_name + plen);
        if (uid < 0 || (uint32_t)uid == p->uid)
            continue;
        int fd = openat(p->dirfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        struct stat sb;
        if (fd < 0)
            continue;
        if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_uid != (uid_t)uid) {
            (void)close(fd);
            continue;
        }
        int at = p->n;
        if (at == PEERS_MAX) { /* keep the lowest uids, as every other process does */
            if ((uint32_t)uid > p->peer[at - 1].uid) {
                (void)close(fd);
                continue;
            }
            (void)close(p->peer[--at].fd);
            p->n--;
        }
        for (; at > 0 && p->peer[at - 1].uid > (uint32_t)uid; at--)
            p->peer[at] = p->peer[at - 1];
        p->peer[at].uid = (uint32_t)uid;
        p->peer[at].fd = fd;
        p->n++;
    }
    (void)closedir(dir);
    p->mtime = ds.st_mtim;
    p->scanned = true;
}

/* The board of `uid` among the other users' (p->peer, by uid); -1: none known. Under p->lock. */
static int peer_fd(const struct gs_board_peers *p, uint32_t uid)
{
    for (int i = 0; i < p->n; i++)
        if (p->peer[i].uid == uid)
            return p->peer[i].fd;
    return -1;
}

/* Whether slot g of uid's board wanted the GPU in the last IDLE_NS: ours mapped, another user's
 * read (a short read, or a board never written, wants nothing). Under p->lock. */
static bool grant_wanted(const cdev *d, const struct gs_board_peers *p, uint32_t uid, int g, uint64_t now)
{
    uint64_t demand = 0;
    if (uid == p->uid) {
        demand = atomic_load_explicit(&d->b->slot[g].demand_ns, memory_order_relaxed);
    } else {
        gs_board_slot s;
        int fd = peer_fd(p, uid);
        if (fd < 0 || pread(fd, &s, sizeof s, (off_t)(offsetof(gs_board, slot) + (size_t)g * sizeof s)) != (ssize_t)sizeof s)
            return false;
        demand = atomic_load_explicit(&s.demand_ns, memory_order_relaxed);
    }
    return demand + IDLE_NS >= now;
}

/* Once a period: which grants' wrappers are gone (killed with their tasks), left out of every
 * layout until their entries are taken again. Under p->lock. */
static void grants_check_owners(struct gs_board_peers *p, uint64_t now)
{
    uint64_t period = now / PERIOD_NS;
    if (period == p->checked_period)
        return;
    p->checked_period = period;
    for (int g = 0; g < (int)GS_GRANTS_ENTRIES; g++) {
        uint64_t o = atomic_load_explicit(&p->grants->grant[g].owner, memory_order_relaxed);
        p->dead_owner[g] = o != 0 && kill((pid_t)(o >> GS_BOARD_OWNER_PID_SHIFT), 0) != 0 && errno == ESRCH ? o : 0;
    }
}

/* Boards per user: the holders are the grants, in grant order; grant g is one while slot g of the
 * board of the user it names wanted the GPU (ours whatever it wants), with the grant's share,
 * priority and policy, never the board's. */
int gs_board_user_holders(const cdev *d, uint64_t now, gs_window_holder *h, int *mine)
{
    struct gs_board_peers *p = d->peers;
    int n = 0;
    *mine = -1;
    (void)pthread_mutex_lock(&p->lock);
    peers_scan(p);
    grants_check_owners(p, now);
    for (int g = 0; g < (int)GS_GRANTS_ENTRIES; g++) {
        const gs_grant *e = &p->grants->grant[g];
        uint64_t owner = atomic_load_explicit(&e->owner, memory_order_relaxed);
        if (owner == 0 || owner == p->dead_owner[g] || atomic_load(&e->live) != 1)
            continue;
        uint32_t uid = atomic_load_explicit(&e->uid, memory_order_relaxed);
        uint32_t share = atomic_load_explicit(&e->share_ppm, memory_order_relaxed);
        int32_t priority = atomic_load_explicit(&e->priority, memory_order_relaxed);
        uint32_t policy = atomic_load_explicit(&e->policy, memory_order_relaxed);
        if (share == 0 || share > PPM || priority < GS_PRIORITY_LOW || priority > GS_PRIORITY_HIGH ||
            (policy != GS_REGION_POLICY_HARD && policy != GS_REGION_POLICY_SHARE))
            continue;
        bool ours = g == p->grant && uid == p->uid;
        if (!ours && !grant_wanted(d, p, uid, g, now))
            continue;
        if (ours)
            *mine = n;
        h[n++] = (gs_window_holder){.share_ppm = share, .priority = priority, .shares = policy == GS_REGION_POLICY_SHARE};
    }
    (void)pthread_mutex_unlock(&p->lock);
    return n;
}

int gs_board_user_grant(const struct gs_board_peers *p)
{
    return p->grant;
}
