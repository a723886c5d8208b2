/*
 * hooks.h: the policies of the hook table (hooks.def, nvml_hooks.def), declared from its
 * rows. A file that defines a policy includes this, so a definition whose parameters drift
 * from its row does not compile; hooks.c generates the exported hooks that call them.
 */
#ifndef GS_HOOKS_H
#define GS_HOOKS_H

#include <stdbool.h>

#include "gs_common.h"

/* (a, b) -> a, b: a row's parameter or argument list without its parentheses. */
#define GS_UNPAREN(...) __VA_ARGS__

#define GS_POLICY_guard(name, params, policy) CUresult policy(gs_fn_##name real, GS_UNPAREN params);
#define GS_POLICY_always(name, params, policy) GS_POLICY_guard(name, params, policy)
#define GS_POLICY_stream(name, params, policy) CUresult policy(gs_fn_##name real, bool ptsz, GS_UNPAREN params);
#define GS_POLICY_gate(name, params, stream) /* an expression, not a function */
#define GS_POLICY_held(name, params, wait) /* swap.h's wait, then the driver's function */
#define GS_HOOK(name, params, args, how, policy) GS_POLICY_##how(name, params, policy)
#include "hooks.def"

#define GS_NVML_POLICY_guard(name, params, policy) nvmlReturn_t policy(gs_nvml_fn_##name real, GS_UNPAREN params);
#define GS_NVML_HOOK(name, params, args, how, policy) GS_NVML_POLICY_##how(name, params, policy)
#include "nvml_hooks.def"

#endif /* GS_HOOKS_H */
