/*
 * hooks.c: every exported hook, generated from its row of the hook table (hooks.def,
 * nvml_hooks.def; the kinds are explained there). Each one: a call made from inside a hook
 * on this thread (the driver calling its own exports, or our policy code) goes straight to
 * the driver; any other runs the row's policy inside the recursion guard. The policies are
 * written by hand in the file of their concern (hooks.h declares them from the rows); the
 * launch gate's hooks are whole here, so the launch path stays one call into the gate
 * (gs_compute_enter) and the inline rest, as fast as a hand-written hook.
 */
#include <stdbool.h>

#include "gs_compute.h"
#include "hooks.h"
#include "launch.h"

#define GS_WRAP_guard(name, params, args, policy, ptsz)                                                                \
    GS_EXPORT CUresult name params                                                                                     \
    {                                                                                                                  \
        const gs_real_fns *R_ = gs_real();                                                                             \
        if (gs_nested())                                                                                               \
            return R_->name args;                                                                                      \
        gs_enter();                                                                                                    \
        CUresult r_ = policy(R_->name, GS_UNPAREN args);                                                               \
        gs_leave();                                                                                                    \
        return r_;                                                                                                     \
    }

#define GS_WRAP_stream(name, params, args, policy, ptsz)                                                               \
    GS_EXPORT CUresult name params                                                                                     \
    {                                                                                                                  \
        const gs_real_fns *R_ = gs_real();                                                                             \
        if (gs_nested())                                                                                               \
            return R_->name args;                                                                                      \
        gs_enter();                                                                                                    \
        CUresult r_ = policy(R_->name, ptsz, GS_UNPAREN args);                                                         \
        gs_leave();                                                                                                    \
        return r_;                                                                                                     \
    }

#define GS_WRAP_always(name, params, args, policy, ptsz)                                                               \
    GS_EXPORT CUresult name params                                                                                     \
    {                                                                                                                  \
        return policy(gs_real()->name, GS_UNPAREN args);                                                               \
    }

/* The gate may sleep in gs_compute_enter; only a launch that succeeded is counted (leave). */
#define GS_WRAP_gate(name, params, args, stream, ptsz)                                                                 \
    GS_EXPORT CUresult name params                                                                                     \
    {                                                                                                                  \
        const gs_real_fns *R_ = gs_real();                                                                             \
        if (gs_nested())                                                                                               \
            return R_->name args;                                                                                      \
        gs_enter();                                                                                                    \
        CUstream s_ = stream;                                                                                          \
        gs_gate g_;                                                                                                    \
        gs_compute_enter(&g_, s_, ptsz);                                                                               \
        CUresult r_ = R_->name args;                                                                                   \
        gs_compute_leave(&g_, s_, r_);                                                                                 \
        gs_leave();                                                                                                    \
        return r_;                                                                                                     \
    }

#define GS_WRAP_own(name, params, args, policy, ptsz)

#define GS_HOOK(name, params, args, how, policy) GS_WRAP_##how(name, params, args, policy, false)
#define GS_HOOK_PTSZ(name, params, args, how, policy) GS_WRAP_##how(name, params, args, policy, true)
#include "hooks.def"

#define GS_NVML_WRAP_guard(name, params, args, policy)                                                                 \
    GS_EXPORT nvmlReturn_t name params                                                                                 \
    {                                                                                                                  \
        const gs_nvml_fns *N_ = gs_nvml();                                                                             \
        if (N_ == NULL)                                                                                                \
            return NVML_ERROR_LIBRARY_NOT_FOUND; /* unreachable: nobody can call NVML without it */                   \
        if (gs_nested())                                                                                               \
            return N_->name args;                                                                                      \
        gs_enter();                                                                                                    \
        nvmlReturn_t r_ = policy(N_->name, GS_UNPAREN args);                                                           \
        gs_leave();                                                                                                    \
        return r_;                                                                                                     \
    }
#define GS_NVML_WRAP_own(name, params, args, policy)

#define GS_NVML_HOOK(name, params, args, how, policy) GS_NVML_WRAP_##how(name, params, args, policy)
#include "nvml_hooks.def"
