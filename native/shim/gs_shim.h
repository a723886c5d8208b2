/*
 * gs_shim.h: what libgpushare's modules share (internal; nothing here is exported).
 *
 *   dispatch.c  the real driver functions (gs_real), the name table and the reverse map,
 *               cuGetProcAddress; dlsym.c: our exported dlsym
 *   state.c     config at load time, the region (opened at the first hook that needs it),
 *               per-device limits as the process sees its devices
 *   track.c     the allocation map: what each pointer/handle took, so frees give it back
 *   memory.c    allocation and free policies (plain, pitch, managed, VMM, arrays)
 *   pool.c      stream-ordered allocations: pool growth
 *   context.c   context memory, measured
 *   info.c      cuMemGetInfo / cuDeviceTotalMem report the slice
 *   graph.c     graph memory nodes: the graph pool's reserve, counted after it changes
 *   vmm.c       VMM mappings: memory released while mapped lives until its last unmap
 *   scrub.c     GPUSHARE_SCRUB: zero memory before it is freed
 *   log.c       leveled stderr lines, the rate-limited out-of-memory line
 *   nvml.c      NVML (nvml_hooks.def): nvmlDeviceGetMemoryInfo(_v2) report the slice
 *   partition.c GPUSHARE_ISOLATION=sm-partition: contexts are green contexts on a set of SMs
 */
#ifndef GS_SHIM_H
#define GS_SHIM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gs_config.h"
#include "gs_cuda.h"
#include "gs_nvml.h"
#include "gs_region.h"

#define GS_EXPORT __attribute__((visibility("default")))
#define GS_TLS __attribute__((tls_model("initial-exec"))) _Thread_local

/* ---- dispatch.c --------------------------------------------------------------------- */
/* The type of each driver function of the table: gs_fn_cuMemAlloc_v2 is cuMemAlloc_v2's. */
#define GS_HOOK(name, params, args, how, policy) typedef CUresult (*gs_fn_##name) params;
#define GS_CALL(name, params, args) typedef CUresult (*gs_fn_##name) params;
#include "hooks.def"

/* The driver's own functions, resolved once from the libcuda.so.1 the process uses. */
typedef struct gs_real_fns {
#define GS_HOOK(name, params, args, how, policy) gs_fn_##name name;
#define GS_CALL(name, params, args) gs_fn_##name name;
#include "hooks.def"
} gs_real_fns;

/* The table once resolved (NULL before): every hook reads it, so the resolved case is one
 * load inline rather than a call into libc's pthread_once (a cold code line after the
 * driver's previous call). Written once, by the resolving thread, with release. */
extern _Atomic(const gs_real_fns *) gs_real_resolved;
/* Resolves on first use (thread-safe). */
const gs_real_fns *gs_real_resolve(void);
/* The driver's functions, resolved on first use (thread-safe); NULL members: libcuda lacks
 * that symbol. */
static inline const gs_real_fns *gs_real(void)
{
    const gs_real_fns *r = atomic_load_explicit(&gs_real_resolved, memory_order_acquire);
    return __builtin_expect(r != NULL, 1) ? r : gs_real_resolve();
}
/* Our hook for an exported driver name, or NULL (binary search of the name table). */
void *gs_hook_by_name(const char *name);
/* Our hook for a real driver function pointer, or NULL (binary search of the reverse map). */
void *gs_hook_by_real(const void *real);
/* Whether p is one of our hooks. */
bool gs_is_hook(const void *p);
/* Whether code at p belongs to the driver library (dladdr). */
bool gs_in_driver(const void *p);
/* The real dlsym of libc (never ours). */
void *gs_real_dlsym(void *handle, const char *name);

/* ---- nvml.c ------------------------------------------------------------------------- */
/* NVML's own functions (nvml_hooks.def), resolved once with dlopen("libnvidia-ml.so.1");
 * NULL when the process has no NVML (members are then NULL too, never called). */
#define GS_NVML_HOOK(name, params, args, how, policy) typedef nvmlReturn_t (*gs_nvml_fn_##name) params;
#define GS_NVML_CALL(name, params, args) typedef nvmlReturn_t (*gs_nvml_fn_##name) params;
#include "nvml_hooks.def"
typedef struct gs_nvml_fns {
#define GS_NVML_HOOK(name, params, args, how, policy) gs_nvml_fn_##name name;
#define GS_NVML_CALL(name, params, args) gs_nvml_fn_##name name;
#include "nvml_hooks.def"
} gs_nvml_fns;
const gs_nvml_fns *gs_nvml(void);
/* gs_nvml(), or when that is NULL a table whose hooked members fail with
 * NVML_ERROR_LIBRARY_NOT_FOUND (the hooks' view: never NULL). */
const gs_nvml_fns *gs_nvml_or_missing(void);
/* gs_nvml() after our own nvmlInit_v2 (once); NULL when NVML is missing or fails to init. */
const gs_nvml_fns *gs_nvml_inited(void);
/* Whether code at p belongs to libcuda or libnvidia-ml (dladdr): a definition we replace. */
bool gs_in_vendor_lib(const void *p);

/* ---- recursion guard ---------------------------------------------------------------- */
/* Depth of hook calls on this thread: a hook reached from inside another hook (the driver
 * calling its own exports, or our policy code) passes straight through. */
extern GS_TLS int gs_depth;
static inline bool gs_nested(void) { return gs_depth > 0; }
static inline void gs_enter(void) { gs_depth++; }
static inline void gs_leave(void) { gs_depth--; }

/* ---- log.c -------------------------------------------------------------------------- */
void gs_log(gs_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One line per second at most: what was asked and why it does not fit. */
void gs_log_oom(int dev, uint64_t asked, const gs_region_over_limit *over);
/* "64 MiB", "1.50 GiB", "17 B". */
const char *gs_human_bytes(uint64_t bytes, char *buf, size_t len);

/* ---- state.c ------------------------------------------------------------------------ */
extern gs_config gs_cfg; /* read once at load time, never written after */
/* Opens the region if it is not open yet (needs cuInit done); false when it cannot be
 * opened now, in which case hooks pass through without accounting. */
bool gs_ready(void);
/* gs_ready(), or when CUDA was never initialised, the devices as NVML sees them (for
 * NVML-only processes such as nvidia-smi: CUDA is not started behind their back). */
bool gs_ready_nvml(void);
/* Limit in bytes on a process-visible ordinal (0 = unlimited), after gs_ready(). */
uint64_t gs_limit(int dev);
/* "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" from the driver's UUID bytes. */
void gs_uuid_string(const CUuuid *u, char *out, size_t len);
/* The process-visible ordinal whose device has this UUID ("GPU-..." or "MIG-...", any
 * case), or -1 (not visible to this process, or before gs_ready()). */
int gs_ordinal_of_uuid(const char *uuid);
/* The device of the calling thread's current context, or -1. */
int gs_current_device(void);
/* Whether dev may be accounted (0 <= dev < GS_REGION_MAX_DEVICES). */
bool gs_dev_ok(int dev);

/* Reserves `bytes` of `kind` on dev. Returns 0 when granted (commit or cancel r), 1 when
 * refused (the OOM line was printed unless quiet), -1 when accounting is off for dev (do
 * not commit). */
int gs_reserve_ex(int dev, gs_region_kind kind, uint64_t bytes, gs_region_reservation *r, bool quiet);
static inline int gs_reserve(int dev, gs_region_kind kind, uint64_t bytes, gs_region_reservation *r)
{
    return gs_reserve_ex(dev, kind, bytes, r, false);
}
void gs_commit(const gs_region_reservation *r);
/* How far a reclaimer goes on a device: SETTLE notices memory given back since it was counted
 * (reads only); TRIM also asks the driver to give back what it caches for the program. */
typedef enum gs_reclaim_depth { GS_RECLAIM_SETTLE, GS_RECLAIM_TRIM } gs_reclaim_depth;
typedef void (*gs_reclaimer)(int dev, gs_reclaim_depth depth);
/* Adds a reclaimer (from a module's constructor: before any hook runs). A refusal runs them
 * all with TRIM first (gs_reserve), the slice's view with SETTLE (gs_slice_view). */
void gs_reclaimer_register(gs_reclaimer fn);
/* Runs every registered reclaimer on dev. */
void gs_reclaim(int dev, gs_reclaim_depth depth);
void gs_cancel(const gs_region_reservation *r);
void gs_release(int dev, gs_region_kind kind, uint64_t bytes);

/* ---- track.c ------------------------------------------------------------------------ */
/* GS_SPACE_ASYNC: sizes of stream-ordered allocations, kept only for scrubbing (never
 * released: the pools' reserved memory is what is counted). */
/* GS_SPACE_VMM_DEFERRED: handles released while still mapped (vmm.c). */
typedef enum gs_space {
    GS_SPACE_PTR = 0, GS_SPACE_VMM, GS_SPACE_ARRAY, GS_SPACE_MIPMAP, GS_SPACE_CTX, GS_SPACE_ASYNC, GS_SPACE_VMM_DEFERRED
} gs_space;

typedef struct gs_track_entry {
    int dev;
    gs_region_kind kind;
    uint64_t bytes;
    CUcontext ctx; /* the context it belongs to (freed with it), NULL: none */
} gs_track_entry;

/* Remembers key -> entry; false when out of memory (the bytes are then never given back,
 * so callers release them at once). */
bool gs_track_put(gs_space space, uint64_t key, const gs_track_entry *e);
/* Forgets key, copying what it held into *out; false when unknown. */
bool gs_track_take(gs_space space, uint64_t key, gs_track_entry *out);
/* Forgets every entry of ctx (destroyed with it) and releases its bytes. */
void gs_track_drop_ctx(CUcontext ctx);

/* ---- info.c ------------------------------------------------------------------------- */
/* The slice of dev as the program should see it, given the driver's physical total:
 * total = min(limit, physical), used = the group's committed device bytes. false when dev
 * has no limit (report the driver's numbers unchanged). */
bool gs_slice_view(int dev, uint64_t physical_total, uint64_t *total, uint64_t *used);

/* ---- context.c ---------------------------------------------------------------------- */
/* The current context (NULL when none or on error). */
CUcontext gs_current_ctx(void);
/* What could be read of dev's memory before a context is made (to measure what it took). */
typedef struct gs_ctx_before {
    bool have_nvml, have_free;
    nvmlDevice_t nd;
    uint64_t nvml_used;
    size_t free;
} gs_ctx_before;
gs_ctx_before gs_ctx_measure_before(CUdevice dev);
/* Counts ctx (new, current) as context memory on dev; false when it passes the limit. */
bool gs_ctx_count(CUcontext ctx, CUdevice dev, const gs_ctx_before *b);

/* ---- partition.c (GPUSHARE_ISOLATION=sm-partition) --------------------------------- */
/* Each gs_partition_* hook returns false when the call is not ours (time-slice mode, or a
 * device without a compute limit: the caller goes on as usual), else true with *out set. */
bool gs_partition_mode(void);
bool gs_partition_primary_retain(CUcontext *pctx, CUdevice dev, CUresult *out);
bool gs_partition_primary_down(CUdevice dev, bool reset, CUresult *out);
bool gs_partition_primary_state(CUdevice dev, unsigned int *flags, int *active, CUresult *out);
bool gs_partition_ctx_create(CUcontext *pctx, CUdevice dev, CUresult *out);
bool gs_partition_ctx_destroy(CUcontext ctx, CUresult *out);
#include "partition_round.h"

/* ---- scrub.c (GPUSHARE_SCRUB=1; each a no-op when it is off) ------------------------- */
/* Remembers the size of a stream-ordered allocation. */
void gs_scrub_note_async(CUdeviceptr p, uint64_t bytes);
/* Before cuMemFree(_v2) of p: zero it and wait (known: its allocation map entry, or NULL). */
void gs_scrub_before_free(CUdeviceptr p, const gs_track_entry *known);
/* Before cuMemFreeAsync(_ptsz) of p on s: zero it on s (plain: its entry when p came
 * from cuMemAlloc, else NULL). */
void gs_scrub_before_free_async(CUdeviceptr p, CUstream s, bool ptsz, const gs_track_entry *plain);

#endif /* GS_SHIM_H */
