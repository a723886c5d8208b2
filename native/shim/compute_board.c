/*
 * compute_board.c: the compute board (layout: native/region/gpushare_board.h), where the
 * governed processes on a GPU meet: each claims a slot and writes its share, priority, policy
 * and until when it wants the GPU; every process reads the slots to lay out the period
 * (gs_board_holders, then compute_windows.c). Nothing here is locked across processes: a
 * process that dies stops refreshing its demand and drops out of every layout within IDLE_NS,
 * and its slot is taken over when its pid is gone (or after STALE_NS without a heartbeat).
 *
 * Boards per user (GPUSHARE_COMPUTE_BOARD=per-user; COMPUTE.md "Boards per user"): the daemon
 * gives each user of a GPU its own board, <dir>/gpushare-compute-<UUID>.u<uid>, owned by that
 * user in a directory only root writes. A process maps its own user's board (the only one it
 * may write) and reads the others' with pread, never through a mapping: their owners may
 * truncate them, which would kill a mapping's reader with SIGBUS, while a short read only
 * leaves that board out of the layout.
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

/* The other users' boards of one GPU (boards per user), each open read-only. */
struct gs_board_peers {
    pthread_mutex_t lock; /* one thread of the process rescans or reads at a time */
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

static_assert(GS_BOARD_SLOTS <= GS_WINDOWS_MAX, "a board's holders fit one layout");

/* Maps the board open on fd; NULL (said) when it cannot be used. Writes its header if new. */
static gs_board *board_map(int fd, const char *path)
{
    gs_board *b = NULL;
    void *p = mmap(NULL, sizeof *b, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    b = p == MAP_FAILED ? NULL : p;
    (void)close(fd);
    if (b == NULL) {
        gs_log(GS_LOG_WARN, "cannot map %s: compute is limited for this process alone", path);
        return NULL;
    }
    /* Racing creators write the same values; the magic goes last. */
    if (atomic_load(&b->magic) == 0) {
        atomic_store(&b->version, GS_BOARD_VERSION);
        b->slots = GS_BOARD_SLOTS;
        uint64_t zero = 0;
        (void)atomic_compare_exchange_strong(&b->magic, &zero, GS_BOARD_MAGIC);
    }
    if (atomic_load(&b->magic) != GS_BOARD_MAGIC || atomic_load(&b->version) != GS_BOARD_VERSION) {
        gs_log(GS_LOG_WARN, "%s is not a gpushare compute board of version %u: compute is limited for this process "
                            "alone", path, GS_BOARD_VERSION);
        (void)munmap(b, sizeof *b);
        return NULL;
    }
    return b;
}

static const char *board_dir(void)
{
    const char *dir = getenv("GPUSHARE_COMPUTE_DIR");
    return dir && dir[0] ? dir : "/dev/shm";
}

/* The one board every user shares (the default): created by whoever comes first, 0666. */
static gs_board *board_open_shared(const char *uuid)
{
    char path[4200];
    (void)snprintf(path, sizeof path, "%s/" GS_BOARD_FILE_PREFIX "%s", board_dir(), uuid);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
        gs_log(GS_LOG_WARN, "cannot open %s (%s): compute is limited for this process alone, not shared with others "
                            "on the GPU", path, strerror(errno));
        return NULL;
    }
    (void)fchmod(fd, 0666); /* processes of other users share the GPU too */
    struct stat sb;
    if (fstat(fd, &sb) != 0 || ((size_t)sb.st_size < sizeof(gs_board) && ftruncate(fd, sizeof(gs_board)) != 0)) {
        (void)close(fd);
        gs_log(GS_LOG_WARN, "cannot size %s: compute is limited for this process alone", path);
        return NULL;
    }
    return board_map(fd, path);
}

/* Our user's board (boards per user): made by gpushare-exec for us, never created here (the
 * directory is root's); it must be ours and whole. Fills *peers with the other users' boards. */
static gs_board *board_open_own(const char *uuid, struct gs_board_peers **peers)
{
    const char *dir = board_dir();
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
    (void)snprintf(p->prefix, sizeof p->prefix, GS_BOARD_FILE_PREFIX "%s.u", uuid);
    gs_board *b = board_map(fd, path);
    if (b == NULL) {
        (void)close(dfd);
        (void)pthread_mutex_destroy(&p->lock);
        free(p);
        return NULL;
    }
    *peers = p;
    return b;
}

/* The board of the GPU with this UUID, mapped; NULL (said once) when it cannot be used. */
static gs_board *board_open(const char *uuid, struct gs_board_peers **peers)
{
    *peers = NULL;
    return gs_cfg.compute_board_per_user ? board_open_own(uuid, peers) : board_open_shared(uuid);
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

static bool slot_takeable(const gs_board_slot *s, uint64_t owner, uint64_t now)
{
    if (owner == 0)
        return true;
    pid_t pid = (pid_t)(owner >> GS_BOARD_OWNER_PID_SHIFT);
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return true;
    uint64_t hb = atomic_load(&s->heartbeat_ns);
    return now > hb && now - hb > STALE_NS;
}

static void board_fill(cdev *d, gs_board_slot *s, uint64_t now)
{
    atomic_store(&s->share_ppm, d->share_ppm);
    atomic_store(&s->priority, d->priority);
    atomic_store(&s->policy, d->policy);
    atomic_store(&s->heartbeat_ns, now);
    atomic_store(&s->demand_ns, now);
}

/* Claims a slot for d (or keeps -1: then the process is laid out alone). */
static void board_claim(cdev *d, uint64_t now)
{
    if (d->b == NULL)
        return;
    for (int i = 0; i < (int)GS_BOARD_SLOTS; i++) {
        gs_board_slot *s = &d->b->slot[i];
        uint64_t o = atomic_load(&s->owner);
        if (slot_takeable(s, o, now) && atomic_compare_exchange_strong(&s->owner, &o, d->token)) {
            board_fill(d, s, now);
            atomic_store(&d->slot, i);
            return;
        }
    }
    atomic_store(&d->slot, -1);
    gs_log(GS_LOG_WARN, "the compute board is full (%u processes): this process is limited alone", GS_BOARD_SLOTS);
}

void gs_board_join(cdev *d, const char *uuid, uint64_t now)
{
    atomic_store(&d->slot, -1);
    if (uuid != NULL)
        d->b = board_open(uuid, &d->peers);
    board_claim(d, now);
}

void gs_board_demand(cdev *d, uint64_t now, uint64_t until)
{
    uint64_t last = atomic_load_explicit(&d->demand_at_ns, memory_order_relaxed);
    if (now - last < DEMAND_NS || !atomic_compare_exchange_strong(&d->demand_at_ns, &last, now))
        return;
    int i = atomic_load(&d->slot);
    if (d->b == NULL)
        return;
    if (i < 0 || atomic_load_explicit(&d->b->slot[i].owner, memory_order_relaxed) != d->token) {
        board_claim(d, now);
        i = atomic_load(&d->slot);
        if (i < 0)
            return;
    }
    atomic_store_explicit(&d->b->slot[i].demand_ns, until, memory_order_relaxed);
    atomic_store_explicit(&d->b->slot[i].heartbeat_ns, now, memory_order_relaxed);
}

/* A slot as a holder of the layout, when it wanted the GPU in the last IDLE_NS and says something
 * a layout can use (another user's board may hold anything). */
static bool slot_holder(const gs_board_slot *s, uint64_t now, gs_window_holder *out)
{
    if (atomic_load_explicit(&s->owner, memory_order_relaxed) == 0)
        return false;
    uint64_t demand = atomic_load_explicit(&s->demand_ns, memory_order_relaxed);
    uint32_t share = atomic_load_explicit(&s->share_ppm, memory_order_relaxed);
    int32_t priority = atomic_load_explicit(&s->priority, memory_order_relaxed);
    uint32_t policy = atomic_load_explicit(&s->policy, memory_order_relaxed);
    if (share == 0 || share > PPM || demand + IDLE_NS < now || priority < GS_PRIORITY_LOW || priority > GS_PRIORITY_HIGH)
        return false;
    *out = (gs_window_holder){.share_ppm = share, .priority = priority, .shares = policy == GS_REGION_POLICY_SHARE};
    return true;
}

/* Adds the holders of the board open on fd (another user's: read, never mapped) to h[n..cap). */
static int peer_holders(int fd, uint64_t now, gs_window_holder *h, int n, int cap)
{
    gs_board b;
    if (pread(fd, &b, sizeof b, 0) != (ssize_t)sizeof b || atomic_load_explicit(&b.magic, memory_order_relaxed) != GS_BOARD_MAGIC ||
        atomic_load_explicit(&b.version, memory_order_relaxed) != GS_BOARD_VERSION)
        return n; /* truncated, not yet written, or not a board: left out */
    for (int i = 0; i < (int)GS_BOARD_SLOTS && n < cap; i++)
        n += slot_holder(&b.slot[i], now, &h[n]);
    return n;
}

int gs_board_holders(const cdev *d, uint64_t now, gs_window_holder *h, int *mine)
{
    const gs_window_holder self = {.share_ppm = d->share_ppm, .priority = d->priority,
                                   .shares = d->policy == GS_REGION_POLICY_SHARE};
    int me = atomic_load(&d->slot);
    *mine = -1;
    if (d->b == NULL || me < 0) {
        *mine = 0;
        h[0] = self;
        return 1;
    }
    /* Our board's holders (we are always among them), then, with boards per user, the others'
     * around them in the order of their uids, the same order in every process. */
    gs_window_holder own[GS_BOARD_SLOTS];
    int k = 0, own_mine = -1;
    for (int i = 0; i < (int)GS_BOARD_SLOTS; i++) {
        if (atomic_load_explicit(&d->b->slot[i].owner, memory_order_relaxed) == 0)
            continue; /* our own slot too, when it was freed: we are then not laid out */
        if (i == me) {
            own_mine = k;
            own[k++] = self;
        } else {
            k += slot_holder(&d->b->slot[i], now, &own[k]);
        }
    }
    struct gs_board_peers *p = d->peers;
    int n = 0, cap = (int)GS_BOARD_SLOTS - k, at = 0;
    if (p != NULL) {
        (void)pthread_mutex_lock(&p->lock);
        peers_scan(p);
        for (; at < p->n && p->peer[at].uid < p->uid; at++)
            n = peer_holders(p->peer[at].fd, now, h, n, cap);
    }
    memcpy(&h[n], own, (size_t)k * sizeof *own);
    *mine = own_mine < 0 ? -1 : n + own_mine;
    n += k;
    if (p != NULL) {
        for (; at < p->n; at++)
            n = peer_holders(p->peer[at].fd, now, h, n, (int)GS_BOARD_SLOTS);
        (void)pthread_mutex_unlock(&p->lock);
    }
    return n;
}

void gs_board_leave(cdev *d)
{
    int i = atomic_load(&d->slot);
    if (d->b != NULL && i >= 0) {
        uint64_t mine = d->token;
        (void)atomic_compare_exchange_strong(&d->b->slot[i].owner, &mine, 0);
    }
}
