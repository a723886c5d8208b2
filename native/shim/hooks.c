/*
 * hooks.c: every exported hook, generated from its row of the hook table (hooks.def,
 * nvml_hooks.def; the kinds are explained there). Each but `always`: a call made from inside
 * a hook on this thread (the driver calling its own exports, or our policy code) goes
 * straight to the driver; any other runs the row's policy inside the recursion guard. The
 * policies are written by hand in the file of their concern (hooks.h declares them from the
 * rows); the launch gate's hooks are whole here, so the launch path stays one call into the
 * gate (gs_compute_enter) and the inline rest: the same machine code as the hand-written
 * hooks had. Each macro below expands to a whole function definition, never to a statement
 * that returns from (or sleeps inside) code written around it.
 */
#include <stdbool.h>

#include "gs_compute.h"
#include "guard.h"
#include "hooks.h"
#include "launch.h"
#include "swap.h"

GS_TLS int gs_depth;

/* The exported function of a row: a call from inside a hook on this thread goes straight to
 * the library (R_: its table of real functions, `fns` of type `fns_type`); any other runs
 * `body`, which sets r_, inside the recursion guard. */
#define GS_GUARDED(ret, fns_type, fns, name, params, args, ...)                                                        \
    GS_EXPORT ret name params                                                                                          \
    {                                                                                                                  \
        fns_type *R_ = fns;                                                                                            \
        if (gs_nested())                                                                                               \
            return R_->name args;                                                                                      \
        gs_enter();                                                                                                    \
        ret r_;                                                                                                        \
        __VA_ARGS__                                                                                                    \
        gs_leave();                                                                                                    \
        return r_;                                                                                                     \
    }
#define GS_CUDA_GUARDED(name, params, args, ...) \
    GS_GUARDED(CUresult, const gs_real_fns, gs_real(), name, params, args, __VA_ARGS__)

#define GS_WRAP_guard(name, params, args, policy, ptsz) \
    GS_CUDA_GUARDED(name, params, args, r_ = policy(R_->name, GS_UNPAREN args);)
#define GS_WRAP_stream(name, params, args, policy, ptsz) \
    GS_CUDA_GUARDED(name, params, args, r_ = policy(R_->name, ptsz, GS_UNPAREN args);)
/* The gate may sleep in gs_compute_enter; only a launch that succeeded is counted (leave). */
#define GS_WRAP_gate(name, params, args, stream, ptsz)                                                                 \
    GS_CUDA_GUARDED(name, params, args, CUstream s_ = stream; gs_gate g_; gs_compute_enter(&g_, s_, ptsz);             \
                    r_ = R_->name args; gs_compute_leave(&g_, s_, r_);)
/* A slice swap may hold the program (swap.h): wait, then the driver's function. */
#define GS_WRAP_held(name, params, args, wait, ptsz) GS_CUDA_GUARDED(name, params, args, wait(); r_ = R_->name args;)
#define GS_WRAP_always(name, params, args, policy, ptsz)                                                               \
    GS_EXPORT CUresult name params                                                                                     \
    {                                                                                                                  \
        return policy(gs_real()->name, GS_UNPAREN args);                                                               \
    }

#define GS_HOOK(name, params, args, how, policy) GS_WRAP_##how(name, params, args, policy, false)
#define GS_HOOK_PTSZ(name, params, args, how, policy) GS_WRAP_##how(name, params, args, policy, true)
#include "hooks.def"

/* NVML: stand-ins that fail as a missing library does when NVML cannot be used (nvml.c). */
#define GS_NVML_WRAP_guard(name, params, args, policy) \
    GS_GUARDED(nvmlReturn_t, const gs_nvml_fns, gs_nvml_or_missing(), name, params, args, \
               r_ = policy(R_->name, GS_UNPAREN args);)

#define GS_NVML_HOOK(name, params, args, how, policy) GS_NVML_WRAP_##how(name, params, args, policy)
#include "nvml_hooks.def"
