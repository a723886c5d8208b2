/*
 * gpushare_board.h: THE definition of the compute board's binary layout (libgpushare's
 * time-slice governor, native/shim/COMPUTE.md). One file per GPU,
 * <GPUSHARE_COMPUTE_DIR>/gpushare-compute-<UUID> (default directory /dev/shm), shared by every
 * governed process on that GPU whatever group or slice it belongs to: each claims a slot and
 * writes its share, priority, policy and the last time it wanted the GPU; from the slots every
 * process lays out the same windows of the period (native/shim/compute_windows.h). With boards
 * per user, what each task is entitled to comes from root's grants instead ("Grants" below).
 *
 * Anything that reads or writes a board (libgpushare through compute_board.c, the TypeScript
 * layout in src/gpu/region/board-layout.ts, tests) follows this file. The TypeScript side is
 * checked against it by a test (build/native/region/board_layout prints every size and offset).
 *
 * Rules for changing it, as for the region (gpushare_region.h):
 *   - Adding a field: take it from a `reserved` word, keep every size and offset below (the
 *     static_asserts hold you to that); processes that do not know the field keep working.
 *     No version bump.
 *   - Moving, resizing or re-meaning a field: bump GS_BOARD_VERSION. A process that finds a
 *     board of another magic or version governs its GPU alone (it says so once) rather than
 *     guess.
 *
 * Little-endian, fixed width. Every word another process writes is a lock-free C11 atomic
 * (asserted), so a process killed at any instant leaves each word before or after an update:
 * nothing on the board is locked, and a dead owner's slot is simply taken over. Each slot is
 * one 64-byte cache line, so processes do not slow each other down (false sharing).
 *
 * Times are CLOCK_MONOTONIC nanoseconds: the same clock in every process of the host (the
 * board is never shared across hosts or reboots: /dev/shm does not outlive either).
 */
#ifndef GPUSHARE_BOARD_H
#define GPUSHARE_BOARD_H

#include <assert.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* "CGSBOARD" read as a little-endian u64: the bytes 43 47 53 42 4f 41 52 44 on disk. */
#define GS_BOARD_MAGIC UINT64_C(0x4452414f42534743)
#define GS_BOARD_VERSION 1u
/* Governed processes per GPU; a process finding every slot taken governs itself alone. */
#define GS_BOARD_SLOTS 64u
#define GS_BOARD_CACHE_LINE 64u
#define GS_BOARD_HEADER_SIZE 64u
#define GS_BOARD_SLOT_SIZE 64u
#define GS_BOARD_FILE_SIZE (GS_BOARD_HEADER_SIZE + GS_BOARD_SLOTS * GS_BOARD_SLOT_SIZE)
/* The board of the GPU with UUID u is the file GS_BOARD_FILE_PREFIX u ("GPU-..." or "MIG-..."). */
#define GS_BOARD_FILE_PREFIX "gpushare-compute-"

/*
 * Slot owner word: pid << GS_BOARD_OWNER_PID_SHIFT | a nonce (low 32 bits, odd, so an owner is
 * never 0), one compare-and-swap to claim or free. The nonce tells two claims of one pid apart
 * (a process that re-claims after its slot was taken). 0 = free. A slot whose pid is gone, or
 * whose heartbeat is older than 30 s, may be taken by a compare-and-swap from the old owner.
 */
#define GS_BOARD_OWNER_PID_SHIFT 32u

/* One governed process on the GPU (one cache line). Written by its owner only, except the
 * owner word (claimed and freed by compare-and-swap). */
typedef struct gs_board_slot {
    _Atomic uint64_t owner;        /* 0 = free, else see "Slot owner word" */
    _Atomic uint64_t demand_ns;    /* it wanted the GPU (or had work queued) until then; a slot whose
                                    * demand is more than 50 ms past is left out of the layouts */
    _Atomic uint64_t heartbeat_ns; /* the last time the owner wrote the slot */
    _Atomic uint32_t share_ppm;    /* its share of the GPU, parts per million (1000000 = all of it);
                                    * 0: never laid out */
    _Atomic int32_t priority;      /* gs_priority: 0 low, 1 normal, 2 high (higher is laid out first) */
    _Atomic uint32_t policy;       /* GS_REGION_POLICY_HARD (1) or GS_REGION_POLICY_SHARE (2) */
    uint32_t reserved0;
    uint64_t reserved[3];
} gs_board_slot;

/* The header (one cache line), then the slots. The creator (any process: racing creators write
 * the same values) writes version and slots first and publishes the magic last. */
typedef struct gs_board {
    _Atomic uint64_t magic;   /* GS_BOARD_MAGIC once the header is written */
    _Atomic uint32_t version; /* GS_BOARD_VERSION */
    uint32_t slots;           /* GS_BOARD_SLOTS (informational: readers use the constant) */
    uint64_t reserved[6];
    gs_board_slot slot[GS_BOARD_SLOTS];
} gs_board;

/*
 * Grants (boards per user, COMPUTE.md "Boards per user"): what each task is entitled to on a
 * GPU, written by root only. One file per GPU beside the users' boards,
 * <dir>/gpushare-compute-<UUID>.grants, owned by the boards directory's owner (root), 0644:
 * gpushare-exec, as root and before the task's command exists, takes an entry for the task
 * (share, priority, policy, the task's uid, as the daemon asked: GPUSHARE_EXEC_GRANT) and frees
 * it when the command ends; the task learns its entry's index g from GPUSHARE_COMPUTE_GRANTS and
 * writes only its demand, in slot g of its own user's board. Every process lays out the period
 * from the grants, in grant order: grant g is a holder while slot g of the board of the uid the
 * grant names wanted the GPU in the last 50 ms. A user's board keeps nothing a layout trusts but
 * that demand: a share, priority or policy written there is never read in this mode, and a
 * user's slots can only ever stand for that user's own grants.
 *
 * An entry is taken by a compare-and-swap of its owner word (the wrapper: pid << 32 | an odd
 * nonce, as a board slot's), free when 0, or when that pid is gone (a wrapper killed with its
 * task). Its fields change only while `live` is 0: the taker writes them, then live = 1; a
 * release sets live = 0, then frees the owner.
 */
#define GS_GRANTS_MAGIC UINT64_C(0x544e415247534743) /* "CGSGRANT" as a little-endian u64 */
#define GS_GRANTS_VERSION 1u
/* Entry g stands for slot g of its user's board: as many entries as a board has slots. */
#define GS_GRANTS_ENTRIES GS_BOARD_SLOTS
#define GS_GRANTS_HEADER_SIZE 64u
#define GS_GRANT_SIZE 64u
#define GS_GRANTS_FILE_SIZE (GS_GRANTS_HEADER_SIZE + GS_GRANTS_ENTRIES * GS_GRANT_SIZE)
/* The grants of the GPU with UUID u: GS_BOARD_FILE_PREFIX u GS_GRANTS_FILE_SUFFIX. */
#define GS_GRANTS_FILE_SUFFIX ".grants"
/* The variable that gives a task its entries: "<UUID>=<g>[,<UUID>=<g>...]" (UUID as in the file names). */
#define GS_GRANTS_ENV "GPUSHARE_COMPUTE_GRANTS"

/* One task's entitlement on the GPU (one cache line). */
typedef struct gs_grant {
    _Atomic uint64_t owner;     /* 0 = free, else the wrapper that took it (see above) */
    _Atomic uint32_t live;      /* 1: the fields below are whole and in force; 0: not a grant */
    _Atomic uint32_t uid;       /* the task's user: only that user's board speaks for it */
    _Atomic uint32_t share_ppm; /* as a board slot's share_ppm (1..1000000) */
    _Atomic int32_t priority;   /* as a board slot's priority */
    _Atomic uint32_t policy;    /* as a board slot's policy */
    uint32_t reserved0;
    uint64_t reserved[4];
} gs_grant;

typedef struct gs_grants {
    _Atomic uint64_t magic;   /* GS_GRANTS_MAGIC once the header is written (last) */
    _Atomic uint32_t version; /* GS_GRANTS_VERSION */
    uint32_t entries;         /* GS_GRANTS_ENTRIES (informational) */
    uint64_t reserved[6];
    gs_grant grant[GS_GRANTS_ENTRIES];
} gs_grants;

/*
 * A board's or grants file's header, as its first mapper writes it: whoever finds no magic
 * writes the version and the count, then publishes the magic (racing creators write the same
 * values). Returns whether the header is then `magic` at `version`: a file of another kind or
 * version is used by nobody (its reader says so).
 */
static inline int gs_board_header_ready(_Atomic uint64_t *magic, _Atomic uint32_t *version, uint32_t *count,
                                        uint64_t want_magic, uint32_t want_version, uint32_t n)
{
    if (atomic_load(magic) == 0) {
        atomic_store(version, want_version);
        *count = n;
        uint64_t zero = 0;
        (void)atomic_compare_exchange_strong(magic, &zero, want_magic);
    }
    return atomic_load(magic) == want_magic && atomic_load(version) == want_version;
}

/* ---- the layout is fixed: these hold it there ------------------------------------------ */
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the board layout is little-endian");
static_assert(ATOMIC_LLONG_LOCK_FREE == 2 && ATOMIC_INT_LOCK_FREE == 2,
              "board atomics are lock-free: a lock inside shared memory could be held by a dead process");
static_assert(sizeof(_Atomic uint64_t) == 8 && _Alignof(_Atomic uint64_t) == 8, "atomic u64 is a plain u64");
static_assert(sizeof(_Atomic uint32_t) == 4 && sizeof(_Atomic int32_t) == 4, "atomic u32 is a plain u32");
static_assert(sizeof(gs_board_slot) == GS_BOARD_SLOT_SIZE && GS_BOARD_SLOT_SIZE == GS_BOARD_CACHE_LINE,
              "a board slot is one cache line");
static_assert(offsetof(gs_board_slot, share_ppm) == 24 && offsetof(gs_board_slot, policy) == 32,
              "the slot's 32-bit words follow its three 64-bit ones");
static_assert(offsetof(gs_board, slot) == GS_BOARD_HEADER_SIZE, "slots start on line 1");
static_assert(sizeof(gs_board) == GS_BOARD_FILE_SIZE, "board size");
static_assert(sizeof(gs_grant) == GS_GRANT_SIZE && offsetof(gs_grant, policy) == 24, "a grant is one cache line");
static_assert(offsetof(gs_grants, grant) == GS_GRANTS_HEADER_SIZE && sizeof(gs_grants) == GS_GRANTS_FILE_SIZE,
              "grants size");

#endif /* GPUSHARE_BOARD_H */
