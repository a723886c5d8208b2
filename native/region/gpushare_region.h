/*
 * gpushare_region.h: THE definition of the shared region's binary layout (DESIGN.md,
 * "Shared region"). One file per group of processes that share a slice; every process of
 * the group maps it and counts its device memory in its own slot; the limit is shared.
 *
 * Anything that reads or writes a region (libgpushare through region.c, the TypeScript
 * reader in src/gpu/region/, tests) follows this file. The TypeScript reader is checked
 * against it by a test (build/native/region/region_layout prints every size and offset).
 *
 * Rules for changing it:
 *   - Adding a field: take it from a `reserved` array, keep every size and offset below
 *     (the static_asserts hold you to that), and readers that do not know the field keep
 *     working. No version bump.
 *   - Moving, resizing or re-meaning a field: bump GS_REGION_VERSION. A process refuses a
 *     region of another version rather than guess.
 *
 * All integers are little-endian, fixed width; shared mutable words are C11 atomics that
 * are lock-free (asserted below), so a process killed at any instant leaves every word
 * either before or after an update, never half-written. Slots and hot header words sit on
 * their own 64-byte cache lines so processes do not slow each other down (false sharing).
 * The protocol that uses these words is in region.c and README.md.
 */
#ifndef GPUSHARE_REGION_H
#define GPUSHARE_REGION_H

#include <assert.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* "GSREGION" read as a little-endian u64: the bytes 47 53 52 45 47 49 4f 4e on disk. */
#define GS_REGION_MAGIC UINT64_C(0x4e4f494745525347)
#define GS_REGION_VERSION 1u

#define GS_REGION_MAX_DEVICES 16u
#define GS_REGION_MAX_SLOTS 1024u
/* Concurrent reservations one process may have in flight (one per allocating thread). */
#define GS_REGION_LANES 8u
/* Kinds of memory counted per device; the last one is reserved for a later kind. */
#define GS_REGION_KINDS 8u
#define GS_REGION_CACHE_LINE 64u

#define GS_REGION_HEADER_SIZE 4096u
#define GS_REGION_SLOT_SIZE 2560u
#define GS_REGION_FILE_SIZE (GS_REGION_HEADER_SIZE + GS_REGION_MAX_SLOTS * GS_REGION_SLOT_SIZE)

/* What a byte is counted as. Device-resident kinds count against the device's limit;
 * GS_REGION_KIND_HOST (managed memory kept on the host when oversubscribing) is counted
 * separately and never against the limit. */
typedef enum gs_region_kind {
    GS_REGION_KIND_CONTEXT = 0, /* context / primary context overhead, as measured */
    GS_REGION_KIND_ALLOC = 1,   /* cuMemAlloc*, pitch, managed on device */
    GS_REGION_KIND_VMM = 2,     /* cuMemCreate physical allocations */
    GS_REGION_KIND_ARRAY = 3,   /* cuArray*, mipmapped arrays */
    GS_REGION_KIND_POOL = 4,    /* memory reserved by stream-ordered pools */
    GS_REGION_KIND_HOST = 5,    /* host-backed managed memory (oversubscription) */
    GS_REGION_KIND_GRAPH = 6,   /* memory reserved for CUDA graph memory nodes (added without a
                                 * version bump: it takes a reserved kind; regions created before
                                 * it do not limit it, readers that do not know it ignore it) */
    GS_REGION_KIND_COUNT_USED = 7
} gs_region_kind;

/* Kinds that count against mem_limit (bit i = kind i); written to the header by the creator. */
#define GS_REGION_LIMITED_KINDS 0x5fu

/*
 * Slot owner word: who owns a slot, in one atomic word so that claiming, reclaiming and
 * taking over a reclaim are each a single compare-and-swap.
 *   bits 63..62  state (GS_REGION_SLOT_*)
 *   bits 61..40  pid (Linux pids are < 2^22, PID_MAX_LIMIT)
 *   bits 39..0   process start time, low 40 bits (/proc/<pid>/stat field 22, clock ticks
 *                since boot: 2^40 ticks at 100 Hz is 348 years), so a reused pid is never
 *                mistaken for the process that owned the slot.
 * A free slot's owner word is 0. In state RECLAIMING the pid and start time are the
 * reclaimer's, so a reclaimer that dies mid-reclaim is itself detected and taken over.
 */
#define GS_REGION_SLOT_FREE 0u
#define GS_REGION_SLOT_ACTIVE 1u
#define GS_REGION_SLOT_RECLAIMING 2u
#define GS_REGION_OWNER_STATE_SHIFT 62u
#define GS_REGION_OWNER_PID_SHIFT 40u
#define GS_REGION_OWNER_PID_MASK UINT64_C(0x3fffff)
#define GS_REGION_OWNER_START_MASK UINT64_C(0xffffffffff)

/*
 * Lane meta word: one reservation in flight.
 *   bits 63..16  ticket (from header.ticket; unique per reservation, so a lane that was
 *                freed and reused is never mistaken for the one a reader saw)
 *   bits 11..8   kind, bits 7..4 device, bits 3..0 state (GS_REGION_LANE_*)
 * A free lane's meta is 0. Readers count DECIDING and GRANTED lanes; bytes is valid while
 * meta reads the same before and after reading it.
 */
#define GS_REGION_LANE_FREE 0u
#define GS_REGION_LANE_WRITING 1u  /* claimed by a thread of the owner, not yet published */
#define GS_REGION_LANE_DECIDING 2u /* published, checking the limit */
#define GS_REGION_LANE_GRANTED 3u  /* within the limit; the allocation is being made */
#define GS_REGION_LANE_WAITING 4u  /* stepped aside for an older reservation; not counted */
#define GS_REGION_LANE_TICKET_SHIFT 16u
#define GS_REGION_LANE_KIND_SHIFT 8u
#define GS_REGION_LANE_DEV_SHIFT 4u

/* Achieved compute share as fixed point: GS_REGION_SHARE_ONE is 100% of the device. */
#define GS_REGION_SHARE_ONE 65536u

typedef struct gs_region_lane {
    _Atomic uint64_t meta;
    _Atomic uint64_t bytes;
} gs_region_lane;

/* One process's counters for one device (two cache lines). */
typedef struct gs_region_slot_dev {
    _Atomic uint64_t bytes[GS_REGION_KINDS]; /* committed bytes by gs_region_kind */
    /* The compute limiter's (libgpushare compute_measure.c); written by the owner only. */
    _Atomic uint64_t kernels_launched; /* launches that went through (a graph launch counts 1) */
    _Atomic uint64_t busy_ns;          /* GPU time its work took, measured with CUDA events */
    _Atomic uint64_t throttle_ns;      /* time its launches were held back (limit or priority) */
    _Atomic uint32_t achieved_share;   /* recent share (about the last second), GS_REGION_SHARE_ONE = 100% */
    /* Added without a version bump (they took reserved words; 0 in older regions): */
    _Atomic uint32_t target_share;     /* the compute limit, GS_REGION_SHARE_ONE = 100%; 0 = not governed */
    _Atomic int32_t priority;          /* gs_priority: 0 low, 1 normal, 2 high */
    _Atomic uint32_t policy;           /* GS_REGION_POLICY_* */
    uint64_t reserved[3];
} gs_region_slot_dev;

/* gs_region_slot_dev.policy: how the compute limit is kept. */
#define GS_REGION_POLICY_NONE 0u  /* not governed on this device */
#define GS_REGION_POLICY_HARD 1u  /* never more than the target, even on an idle GPU */
#define GS_REGION_POLICY_SHARE 2u /* at least the target; idle capacity others do not want may be used */

/* One process (40 cache lines). Only the owner writes it, except a reclaimer of a dead owner. */
typedef struct gs_region_slot {
    /* line 0: identity */
    _Atomic uint64_t owner;          /* see "Slot owner word" */
    _Atomic uint32_t pid;            /* copies of the owner word's fields, full width, for */
    uint32_t reserved0;              /* readers; written after the claim, zeroed on reclaim */
    _Atomic uint64_t start_time;     /* clock ticks since boot */
    _Atomic uint64_t attached_at_ms; /* UTC epoch milliseconds */
    uint64_t reserved1[4];
    /* lines 1-2: reservations in flight */
    gs_region_lane lanes[GS_REGION_LANES];
    /* lines 3-4: committed bytes per device of the limited kinds (what the limit check sums;
     * kept beside the per-kind counters so a check reads one word per slot) */
    _Atomic uint64_t dev_total[GS_REGION_MAX_DEVICES];
    /* lines 5-36 */
    gs_region_slot_dev dev[GS_REGION_MAX_DEVICES];
    /* lines 37-38 */
    uint64_t reserved2[16];
    /* line 39: SM partitions (GPUSHARE_ISOLATION=sm-partition): SMs of the green context this
     * process runs in per device, 0 = none (the whole device, or time-slice mode) */
    _Atomic uint32_t sm_partition[GS_REGION_MAX_DEVICES];
} gs_region_slot;

/* The header (one page). Everything above `ticket` is written by the creator before it
 * publishes the magic and is never changed after, except the limits (atomic so that a later
 * version can resize a slice in place). */
typedef struct gs_region_header {
    /* line 0: identity */
    _Atomic uint64_t magic; /* published last by the creator (release) */
    uint32_t version;
    uint32_t header_size;
    uint32_t slot_size;
    uint32_t max_slots;
    uint32_t max_devices;
    uint32_t kinds;
    uint64_t file_size;
    uint32_t device_count; /* devices the creator declared limits for (informational) */
    uint32_t lanes_per_slot;
    uint64_t created_at_ms; /* UTC epoch milliseconds */
    uint32_t creator_pid;
    uint32_t limited_kinds; /* GS_REGION_LIMITED_KINDS */
    /* lines 1-2: memory limit per device in bytes, 0 = unlimited */
    _Atomic uint64_t mem_limit[GS_REGION_MAX_DEVICES];
    /* line 3: compute limit per device in percent (0 = unlimited), for the compute limiter */
    _Atomic uint32_t core_limit_pct[GS_REGION_MAX_DEVICES];
    /* line 4: scheduling priority per device (higher runs first), for the compute limiter */
    _Atomic int32_t priority[GS_REGION_MAX_DEVICES];
    /* line 5: reservation tickets; orders racing reservations (the older one wins) */
    _Atomic uint64_t ticket;
    uint64_t reserved5[7];
    /* line 6: bumped whenever committed bytes go down (release, detach, reclaim), so a
     * limit check can tell that its scan might have mixed before and after */
    _Atomic uint64_t release_epoch;
    uint64_t reserved6[7];
    /* line 7: slots [0, slots_hwm) have ever been claimed; scans stop there */
    _Atomic uint32_t slots_hwm;
    uint32_t reserved7[15];
    uint64_t reserved[448];
} gs_region_header;

typedef struct gs_region_file {
    gs_region_header header;
    gs_region_slot slots[GS_REGION_MAX_SLOTS];
} gs_region_file;

/* ---- the layout is fixed: these hold it there ------------------------------------------ */
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the region layout is little-endian");
static_assert(ATOMIC_LLONG_LOCK_FREE == 2 && ATOMIC_LONG_LOCK_FREE == 2 && ATOMIC_INT_LOCK_FREE == 2,
              "region atomics must be lock-free: a lock inside shared memory could be held by a dead process");
static_assert(sizeof(_Atomic uint64_t) == 8 && _Alignof(_Atomic uint64_t) == 8, "atomic u64 is a plain u64");
static_assert(sizeof(_Atomic uint32_t) == 4 && sizeof(_Atomic int32_t) == 4, "atomic u32 is a plain u32");
static_assert(GS_REGION_KIND_COUNT_USED <= GS_REGION_KINDS, "kinds fit");
static_assert(GS_REGION_MAX_DEVICES <= 16 && GS_REGION_KINDS <= 16, "device and kind fit in 4 bits of a lane");
static_assert(sizeof(gs_region_lane) == 16, "lane");
static_assert(sizeof(gs_region_slot_dev) == 128, "slot_dev is two cache lines");
static_assert(offsetof(gs_region_slot_dev, target_share) == 92 && offsetof(gs_region_slot_dev, policy) == 100,
              "compute fields took the old reserved words in place");
static_assert(offsetof(gs_region_slot, lanes) == 64, "lanes start on line 1");
static_assert(offsetof(gs_region_slot, dev_total) == 192, "dev_total starts on line 3");
static_assert(offsetof(gs_region_slot, dev) == 320, "dev starts on line 5");
static_assert(offsetof(gs_region_slot, sm_partition) == 2496, "sm_partition on the slot's last line");
static_assert(sizeof(gs_region_slot) == GS_REGION_SLOT_SIZE, "slot size");
static_assert(GS_REGION_SLOT_SIZE % GS_REGION_CACHE_LINE == 0, "slots are cache-line aligned");
static_assert(offsetof(gs_region_header, mem_limit) == 64, "limits on line 1");
static_assert(offsetof(gs_region_header, core_limit_pct) == 192, "core limits on line 3");
static_assert(offsetof(gs_region_header, priority) == 256, "priorities on line 4");
static_assert(offsetof(gs_region_header, ticket) == 320, "ticket on its own line");
static_assert(offsetof(gs_region_header, release_epoch) == 384, "release epoch on its own line");
static_assert(offsetof(gs_region_header, slots_hwm) == 448, "hwm on its own line");
static_assert(sizeof(gs_region_header) == GS_REGION_HEADER_SIZE, "header size");
static_assert(offsetof(gs_region_file, slots) == GS_REGION_HEADER_SIZE, "slots follow the header");
static_assert(sizeof(gs_region_file) == GS_REGION_FILE_SIZE, "file size");

#endif /* GPUSHARE_REGION_H */
