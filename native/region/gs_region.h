/*
 * gs_region.h: the shared-accounting API libgpushare calls (layout: gpushare_region.h).
 *
 * One region per process (libgpushare has one slice), so the API works on a module-wide
 * region rather than a handle. Typical use, around each device allocation:
 *
 *     gs_region_reservation r;
 *     gs_region_over_limit over;
 *     int rc = gs_region_reserve(dev, GS_REGION_KIND_ALLOC, bytes, &r, &over);
 *     if (rc == GS_REGION_OVER_LIMIT) return CUDA_ERROR_OUT_OF_MEMORY;  // report `over`
 *     CUresult cr = real_cuMemAlloc(&p, bytes);
 *     if (cr == CUDA_SUCCESS) gs_region_commit(&r); else gs_region_cancel(&r);
 *     ...
 *     real_cuMemFree(p); gs_region_release(dev, GS_REGION_KIND_ALLOC, bytes);
 *
 * Thread-safe: any number of threads may reserve, commit, cancel and release at once.
 * open/close must not race with accounting calls of other threads. After fork() the child
 * keeps the region mapped but not the parent's slot: its first accounting call claims its
 * own slot (a reservation made before the fork is stale in the child).
 */
#ifndef GS_REGION_API_H
#define GS_REGION_API_H

#include <stddef.h>
#include <stdint.h>

#include "gpushare_region.h"

/* Return codes: 0 and positive are outcomes, negative are errors. */
#define GS_REGION_OK 0
#define GS_REGION_OVER_LIMIT 1     /* reserve: the bytes would pass the limit (see over) */
#define GS_REGION_LIMITS_DIFFER 2  /* open: attached, but the region's limits (the creator's) differ from ours */
#define GS_REGION_EINVAL (-1)      /* bad argument: device, kind, NULL pointer */
#define GS_REGION_ENOTOPEN (-2)    /* no region is open */
#define GS_REGION_ESYS (-3)        /* a system call failed (message says which, with errno) */
#define GS_REGION_EFORMAT (-4)     /* the file is not a gpushare region, or of another layout version */
#define GS_REGION_EINIT (-5)       /* the file exists but was never initialised (its creator died?) */
#define GS_REGION_EFULL (-6)       /* every slot is held by a live process */
#define GS_REGION_EBUSY (-7)       /* every lane of this process stayed busy (too many threads reserving) */
#define GS_REGION_EUNDERFLOW (-8)  /* release of more bytes than this process holds of that kind: nothing changed */
#define GS_REGION_ESTALE (-9)      /* reservation already finished, or made before fork() */
#define GS_REGION_EOPEN (-10)      /* a region is already open */

typedef struct gs_region_options {
    const char *path;   /* region file; NULL or "" = private region (anonymous memory) */
    int has_limits;     /* 0: adopt whatever the region holds (creating: unlimited) */
    uint32_t device_count;
    uint64_t mem_limit[GS_REGION_MAX_DEVICES];      /* bytes, 0 = unlimited */
    uint32_t core_limit_pct[GS_REGION_MAX_DEVICES]; /* 0 = unlimited */
    int32_t priority[GS_REGION_MAX_DEVICES];
    uint32_t mode;              /* permissions of a created file; 0 = 0600 */
    uint64_t pending_wait_ns;   /* longest wait on in-flight reservations at the limit; 0 = 100 ms */
    uint64_t init_wait_ns;      /* longest wait for another creator to publish the magic; 0 = 1 s */
} gs_region_options;

/* A granted reservation: pass it to commit or cancel exactly once. */
typedef struct gs_region_reservation {
    uint32_t dev;
    uint32_t kind;
    uint64_t bytes;
    int32_t slot;
    int32_t lane; /* -1: nothing to check (unlimited device or a kind that is not limited) */
    uint64_t meta;
} gs_region_reservation;

/* Why a reservation was refused: the numbers for the one-line error message. */
typedef struct gs_region_over_limit {
    uint32_t dev;
    uint32_t kind;
    uint64_t requested;
    uint64_t limit;
    uint64_t used;      /* committed bytes of the whole group on dev (limited kinds) */
    uint64_t in_flight; /* other processes' reservations not yet committed or cancelled */
    uint64_t self;      /* this process's share of `used` */
    int timed_out;      /* 1: refused because in-flight reservations did not settle in time */
} gs_region_over_limit;

typedef struct gs_region_usage {
    uint64_t bytes[GS_REGION_KINDS]; /* committed, by gs_region_kind */
    uint64_t device_bytes;           /* committed bytes of the limited kinds: what the limit sees */
    uint64_t in_flight;              /* granted or deciding reservations not yet committed */
    uint64_t limit;                  /* the device's limit, 0 = unlimited */
    uint32_t processes;              /* live slots summed (1 for usage_self) */
} gs_region_usage;

/* Maps (creating it if needed) and attaches: claims a slot. err gets a one-line reason. */
int gs_region_open(const gs_region_options *options, char *err, size_t errlen);
/* Detaches (this process's usage leaves the group) and unmaps. */
int gs_region_close(void);

/* Reserves bytes on dev; GS_REGION_OVER_LIMIT fills *over (which may be NULL). */
int gs_region_reserve(uint32_t dev, gs_region_kind kind, uint64_t bytes, gs_region_reservation *r,
                      gs_region_over_limit *over);
/* The allocation succeeded: the reserved bytes become this process's usage. */
int gs_region_commit(const gs_region_reservation *r);
/* The allocation failed: the reserved bytes are given back. */
int gs_region_cancel(const gs_region_reservation *r);
/* Memory the driver has already given (it cannot be refused: a graph launch grew its
 * pool): counted at once, even past the limit, so later reservations see it. */
int gs_region_add(uint32_t dev, gs_region_kind kind, uint64_t bytes);
/* Memory was freed: bytes of kind on dev leave this process's usage. */
int gs_region_release(uint32_t dev, gs_region_kind kind, uint64_t bytes);

/* This process's usage on dev. */
int gs_region_usage_self(uint32_t dev, gs_region_usage *u);
/* The whole group's usage on dev (all live slots). */
int gs_region_usage_group(uint32_t dev, gs_region_usage *u);
/* The limit in force on dev (0 = unlimited), or 0 when no region is open. */
uint64_t gs_region_limit(uint32_t dev);

/* Compute-limiter counters of this process on dev (libgpushare compute_measure.c). */
int gs_region_compute_add(uint32_t dev, uint64_t kernels, uint64_t busy_ns, uint64_t throttle_ns);
int gs_region_compute_set_share(uint32_t dev, uint32_t share);
/* What this process is held to on dev: target share (GS_REGION_SHARE_ONE = 100%, 0 = not
 * governed), priority (gs_priority) and GS_REGION_POLICY_*. */
int gs_region_compute_set_policy(uint32_t dev, uint32_t target_share, int32_t priority, uint32_t policy);
/* Publishes the SMs of this process's partition on dev (0: none). */
int gs_region_partition_set(uint32_t dev, uint32_t sms);

/* Frees the slots of dead processes (pid gone, or reused: start time differs); returns how
 * many were reclaimed, or a negative error. Also runs at attach and before any refusal. */
int gs_region_reclaim(void);
/* This process's slot index, or -1 when not attached. */
int gs_region_slot_index(void);

/* A short constant description of a return code. */
const char *gs_region_strerror(int rc);

#endif /* GS_REGION_API_H */
