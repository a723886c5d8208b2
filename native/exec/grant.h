/*
 * grant: the task's compute grants (native/region/gpushare_board.h "Grants"), taken by the
 * wrapper, as root, before the command exists, and freed when it ends. The daemon asks for them
 * with two variables of the wrapper's environment:
 *
 *   GPUSHARE_EXEC_BOARDS  the task's user's boards, one per GPU (sandbox.h); each board's name,
 *                         gpushare-compute-<UUID>.u<uid>, says the GPU and the task's uid
 *   GPUSHARE_EXEC_GRANT   what the task is entitled to on each of them: "SHARE_PPM,PRIORITY,POLICY"
 *                         (1..1000000; 0 low, 1 normal, 2 high; 1 hard, 2 share)
 *
 * An entry is taken in each GPU's grants file (made if missing, 0644, the wrapper's own) and the
 * command gets their indexes in GPUSHARE_COMPUTE_GRANTS ("<UUID>=<g>,..."); one that cannot be
 * taken is said on stderr and the task runs, its compute limited for itself alone (libgpushare
 * says so too). Without GPUSHARE_EXEC_GRANT nothing is taken (a task without a time-slice limit's
 * governor, or a daemon of another version).
 */
#ifndef GPUSHARE_EXEC_GRANT_H
#define GPUSHARE_EXEC_GRANT_H

#include <stdint.h>

/* The most GPUs one task's grants cover. */
enum { GRANTS_MAX = 64 };

typedef struct grant_held {
    void *map;      /* the GPU's grants file (gs_grants), mapped */
    int index;      /* our entry */
    uint64_t token; /* our owner word in it */
} grant_held;

typedef struct grants_taken {
    int n;
    grant_held held[GRANTS_MAX];
} grants_taken;

/* Takes the grants the environment asks for (in the wrapper, before fork) and sets
 * GPUSHARE_COMPUTE_GRANTS for the command (removes any other). Never fails the task. */
void grants_take(grants_taken *t);

/* Frees them (the command ended) and unmaps the files. */
void grants_release(grants_taken *t);

#endif
