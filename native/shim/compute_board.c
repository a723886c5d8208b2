/*
 * compute_board.c: the compute board (layout: native/region/gpushare_board.h), where the
 * governed processes on a GPU meet: each claims a slot and writes its share, priority, policy
 * and until when it wants the GPU; every process reads the slots to lay out the period
 * (gs_board_holders, then compute_windows.c). Nothing here is locked across processes: a
 * process that dies stops refreshing its demand and drops out of every layout within IDLE_NS,
 * and its slot is taken over when its pid is gone (or after STALE_NS without a heartbeat).
 *
 * Boards per user (GPUSHARE_COMPUTE_BOARD=per-user) are compute_board_user.c's: there the
 * layout comes from root's grants, and a process only writes its demand in its grant's slot.
 */
#define _GNU_SOURCE
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

static_assert(GS_BOARD_SLOTS <= GS_WINDOWS_MAX, "a board's holders fit one layout");

/* Maps the board open on fd; NULL (said) when it cannot be used. Writes its header if new. */
gs_board *gs_board_map(int fd, const char *path)
{
    gs_board *b = NULL;
    void *p = mmap(NULL, sizeof *b, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    b = p == MAP_FAILED ? NULL : p;
    (void)close(fd);
    if (b == NULL) {
        gs_log(GS_LOG_WARN, "cannot map %s: compute is limited for this process alone", path);
        return NULL;
    }
    if (!gs_board_header_ready(&b->magic, &b->version, &b->slots, GS_BOARD_MAGIC, GS_BOARD_VERSION, GS_BOARD_SLOTS)) {
        gs_log(GS_LOG_WARN, "%s is not a gpushare compute board of version %u: compute is limited for this process "
                            "alone", path, GS_BOARD_VERSION);
        (void)munmap(b, sizeof *b);
        return NULL;
    }
    return b;
}

const char *gs_board_dir(void)
{
    const char *dir = getenv("GPUSHARE_COMPUTE_DIR");
    return dir && dir[0] ? dir : "/dev/shm";
}

/* The one board every user shares (the default): created by whoever comes first, 0666. */
static gs_board *board_open_shared(const char *uuid)
{
    char path[4200];
    (void)snprintf(path, sizeof path, "%s/" GS_BOARD_FILE_PREFIX "%s", gs_board_dir(), uuid);
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
    return gs_board_map(fd, path);
}

/* The board of the GPU with this UUID, mapped; NULL (said once) when it cannot be used. */
static gs_board *board_open(const char *uuid, struct gs_board_peers **peers)
{
    *peers = NULL;
    return gs_cfg.compute_board_per_user ? gs_board_user_open(uuid, peers) : board_open_shared(uuid);
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
    if (d->peers != NULL) {
        /* boards per user: our grant's slot, shared by every process of the task; nothing to claim */
        int g = gs_board_user_grant(d->peers);
        atomic_store(&d->b->slot[g].demand_ns, now);
        atomic_store(&d->b->slot[g].heartbeat_ns, now);
        atomic_store(&d->slot, g);
        return;
    }
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
    if (d->peers == NULL && (i < 0 || atomic_load_explicit(&d->b->slot[i].owner, memory_order_relaxed) != d->token)) {
        board_claim(d, now);
        i = atomic_load(&d->slot);
        if (i < 0)
            return;
    }
    atomic_store_explicit(&d->b->slot[i].demand_ns, until, memory_order_relaxed);
    atomic_store_explicit(&d->b->slot[i].heartbeat_ns, now, memory_order_relaxed);
}

/* A slot of the shared board as a holder of the layout, when it wanted the GPU in the last IDLE_NS
 * and says something a layout can use. */
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
    if (d->peers != NULL)
        return gs_board_user_holders(d, now, h, mine);
    /* The one shared board: its holders in slot order (we are always among them). */
    int n = 0;
    for (int i = 0; i < (int)GS_BOARD_SLOTS; i++) {
        if (atomic_load_explicit(&d->b->slot[i].owner, memory_order_relaxed) == 0)
            continue; /* our own slot too, when it was freed: we are then not laid out */
        if (i == me) {
            *mine = n;
            h[n++] = self;
        } else {
            n += slot_holder(&d->b->slot[i], now, &h[n]);
        }
    }
    return n;
}

void gs_board_leave(cdev *d)
{
    int i = atomic_load(&d->slot);
    /* a grant's slot is the task's, not ours: its other processes may still want the GPU */
    if (d->b != NULL && i >= 0 && d->peers == NULL) {
        uint64_t mine = d->token;
        (void)atomic_compare_exchange_strong(&d->b->slot[i].owner, &mine, 0);
    }
}
