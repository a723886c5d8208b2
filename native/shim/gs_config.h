/*
 * gs_config.h: the slice a process is held to, read once from its environment.
 *
 * gpushare's own variables (GPUSHARE_*) and HAMi-core's (CUDA_DEVICE_MEMORY_LIMIT[_i],
 * CUDA_DEVICE_SM_LIMIT[_i], CUDA_DEVICE_MEMORY_SHARED_CACHE, CUDA_TASK_PRIORITY) are both
 * accepted, so libgpushare can replace HAMi-core in place; when both name the same thing,
 * GPUSHARE_* wins. A malformed value is reported (variable, value, what is accepted) and
 * ignored, falling back to the next source: the program keeps running rather than breaking
 * at load time over a typo.
 */
#ifndef GS_CONFIG_H
#define GS_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { GS_CONFIG_MAX_DEVICE_ENTRIES = 16, GS_CONFIG_UUID_LEN = 64, GS_CONFIG_PATH_LEN = 4096 };

typedef enum { GS_LIMIT_NONE = 0, GS_LIMIT_BYTES, GS_LIMIT_FRACTION } gs_limit_kind;

/** A memory limit: none, an absolute size, or a share of the device's physical memory. */
typedef struct {
    gs_limit_kind kind;
    uint64_t bytes;  /* GS_LIMIT_BYTES */
    double fraction; /* GS_LIMIT_FRACTION, in (0, 1] */
} gs_memory_limit;

/** Which device an entry names: a process-visible ordinal, or a GPU-/MIG- UUID. */
typedef struct {
    int ordinal; /* -1 when uuid is set */
    char uuid[GS_CONFIG_UUID_LEN];
} gs_device_key;

typedef struct {
    gs_device_key key;
    gs_memory_limit memory;
    int compute_percent; /* 0: no entry for compute */
} gs_device_entry;

typedef enum { GS_PRIORITY_LOW = 0, GS_PRIORITY_NORMAL = 1, GS_PRIORITY_HIGH = 2 } gs_priority;
typedef enum { GS_ISOLATION_TIME_SLICE = 0, GS_ISOLATION_SM_PARTITION } gs_isolation;
typedef enum { GS_LOG_ERROR = 0, GS_LOG_WARN, GS_LOG_INFO, GS_LOG_DEBUG } gs_log_level;
/* GPUSHARE_COMPUTE_POLICY: hard caps (default), or work-conserving sharing. */
typedef enum { GS_COMPUTE_HARD = 0, GS_COMPUTE_SHARE } gs_compute_policy;
/* GPUSHARE_COMPUTE_ACCOUNTING: what a hard limit's percent is of (native/shim/COMPUTE.md):
 * `throughput` (default): the program's unlimited throughput: busy time weighted by the SM clock
 * it ran at, and the process runs only in its own window even alone (its CPU gaps count too);
 * `gpu`: the GPU's clock-weighted time only (a program that uses less is not slowed);
 * `time`: the GPU's plain time. */
typedef enum { GS_ACCOUNT_THROUGHPUT = 0, GS_ACCOUNT_GPU, GS_ACCOUNT_TIME } gs_compute_accounting;

typedef struct {
    gs_memory_limit memory_all; /* for devices without their own entry */
    int compute_all_percent;    /* 0: no compute limit */
    gs_device_entry devices[GS_CONFIG_MAX_DEVICE_ENTRIES];
    int device_count;
    gs_priority priority;
    gs_isolation isolation;
    gs_log_level log_level;
    bool oversubscribe;
    bool scrub;
    /* GPUSHARE_OVERCOMMIT=1: the daemon promised this GPU beyond its memory (issue 22 item 3):
     * managed memory asked beyond what the card has free is refused */
    bool overcommit;
    char region_path[GS_CONFIG_PATH_LEN]; /* empty: private accounting */
    char swap_dir[GS_CONFIG_PATH_LEN];    /* GPUSHARE_SWAP: the control socket's directory; empty: no swap */
    gs_compute_policy compute_policy;
    gs_compute_accounting compute_accounting;
    /* GPUSHARE_COMPUTE_CLOCK: the SM clock (MHz) the work holds when it runs unlimited; 0 = learned */
    unsigned compute_clock_mhz;
    /* GPUSHARE_COMPUTE_BOARD=per-user: each user's processes write only their own user's board
     * (the daemon's tasks; native/shim/COMPUTE.md "Boards per user"); default: one shared board */
    bool compute_board_per_user;
    bool priority_set; /* GPUSHARE_PRIORITY or CUDA_TASK_PRIORITY was given (and understood) */
    /* GPUSHARE_SM_OFFSET (sm-partition mode): where the partition starts, in SMs of the
     * driver's split order; -1 = unset (the first SMs). By ordinal, else the whole value. */
    int sm_offset_all;
    int sm_offset[GS_CONFIG_MAX_DEVICE_ENTRIES];
} gs_config;

/** Looks a variable up; NULL when unset. Tests pass a table, the library passes getenv. */
typedef const char *(*gs_getenv_fn)(void *ctx, const char *name);
/** Receives one problem: the variable, and a sentence saying what was wrong and what is accepted. */
typedef void (*gs_config_report_fn)(void *ctx, const char *variable, const char *message);

/**
 * Fills `out` from the environment. Returns the number of problems reported (0 when every
 * variable that is set was understood); `out` is always usable.
 */
int gs_config_load(gs_config *out, gs_getenv_fn getenv_fn, void *env_ctx, gs_config_report_fn report, void *report_ctx);

/** The memory limit for a device seen as `ordinal` with `uuid` (may be NULL), before resolving fractions. */
gs_memory_limit gs_config_memory_limit(const gs_config *config, int ordinal, const char *uuid);
/** Whether two UUID strings name one device: GPU-/MIG- prefix and hex case aside. */
bool gs_uuid_same(const char *a, const char *b);
/** The compute limit in percent (0 = none) for a device. */
int gs_config_compute_limit(const gs_config *config, int ordinal, const char *uuid);
/** GPUSHARE_SM_OFFSET for a visible ordinal, or -1 (not set). */
int gs_config_sm_offset(const gs_config *config, int ordinal);
/** A limit in bytes on a device of `total_bytes` (UINT64_MAX when there is none): min(limit, physical). */
uint64_t gs_memory_limit_resolve(gs_memory_limit limit, uint64_t total_bytes);

/* Parsers, exposed for tests. Each returns 0 on success, or -1 with `why` filled. */
int gs_parse_bytes(const char *text, uint64_t *bytes, char *why, size_t why_len);
int gs_parse_hami_bytes(const char *text, uint64_t *bytes, char *why, size_t why_len);
int gs_parse_percent(const char *text, int *percent, char *why, size_t why_len);

#endif
