/*
 * guard.h: the per-thread recursion guard. Every generated hook (hooks.c) counts itself in
 * gs_depth while its policy runs; a hook reached from inside another hook (the driver
 * calling its own exports, or our policy code) passes straight through, and our dlsym
 * (dlsym.c) answers such lookups as libc would. Policies never touch it.
 */
#ifndef GS_GUARD_H
#define GS_GUARD_H

#include <stdbool.h>

#include "gs_common.h"

/* Depth of hook calls on this thread (hooks.c). */
extern GS_TLS int gs_depth;
static inline bool gs_nested(void)
{
    return gs_depth > 0;
}
static inline void gs_enter(void)
{
    gs_depth++;
}
static inline void gs_leave(void)
{
    gs_depth--;
}

#endif /* GS_GUARD_H */
