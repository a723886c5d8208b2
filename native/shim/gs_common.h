/*
 * gs_common.h: what every part of libgpushare needs (internal; nothing here is exported but
 * what GS_EXPORT marks): the symbol attributes, and the real functions of the driver and of
 * NVML, one member per row of the hook table (hooks.def, nvml_hooks.def). Everything else
 * has the header of its module: state.h, track.h, log.h, scrub.h, context.h, partition.h,
 * info.h, dispatch.h, guard.h, hooks.h, launch.h, gs_compute.h (the compute gate; its files
 * share compute_state.h).
 *
 *   dispatch.c  gs_real: libcuda's functions, resolved once
 *   nvml.c      gs_nvml: libnvidia-ml's, resolved lazily (a process without NVML never needs it)
 *   dlsym.c     gs_real_dlsym: libc's dlsym, with which both are looked up
 */
#ifndef GS_COMMON_H
#define GS_COMMON_H

#include <stdatomic.h>
#include <stdbool.h>

#include "gs_cuda.h"
#include "gs_nvml.h"

/* A hook (or dlsym) the process must see; everything else is hidden (-fvisibility=hidden). */
#define GS_EXPORT __attribute__((visibility("default")))
/* Thread-local state read on hot paths: initial-exec, one %fs-relative load. */
#define GS_TLS __attribute__((tls_model("initial-exec"))) _Thread_local

/* ---- the driver (dispatch.c) -------------------------------------------------------- */
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
/* The driver's functions, resolved on first use (thread-safe). A symbol this libcuda lacks
 * is a stand-in that fails with CUDA_ERROR_NOT_FOUND. */
static inline const gs_real_fns *gs_real(void)
{
    const gs_real_fns *r = atomic_load_explicit(&gs_real_resolved, memory_order_acquire);
    return __builtin_expect(r != NULL, 1) ? r : gs_real_resolve();
}

/* ---- NVML (nvml.c) ------------------------------------------------------------------ */
#define GS_NVML_HOOK(name, params, args, how, policy) typedef nvmlReturn_t (*gs_nvml_fn_##name) params;
#define GS_NVML_CALL(name, params, args) typedef nvmlReturn_t (*gs_nvml_fn_##name) params;
#include "nvml_hooks.def"
typedef struct gs_nvml_fns {
#define GS_NVML_HOOK(name, params, args, how, policy) gs_nvml_fn_##name name;
#define GS_NVML_CALL(name, params, args) gs_nvml_fn_##name name;
#include "nvml_hooks.def"
} gs_nvml_fns;
/* NVML's own functions, resolved once with dlopen("libnvidia-ml.so.1"); NULL when the
 * process has no NVML or it lacks a function of the table. */
const gs_nvml_fns *gs_nvml(void);
/* gs_nvml(), or when that is NULL a table whose hooked members fail with
 * NVML_ERROR_LIBRARY_NOT_FOUND (the hooks' view: never NULL). */
const gs_nvml_fns *gs_nvml_or_missing(void);
/* gs_nvml() after our own nvmlInit_v2 (once); NULL when NVML is missing or fails to init. */
const gs_nvml_fns *gs_nvml_inited(void);

/* ---- dlsym.c ------------------------------------------------------------------------ */
/* The real dlsym of libc (never ours). */
void *gs_real_dlsym(void *handle, const char *name);

#endif /* GS_COMMON_H */
