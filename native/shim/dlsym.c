/*
 * dlsym.c: our exported dlsym. Frameworks dlopen libcuda and look functions up by name
 * (PyTorch does every lookup this way; nvidia-smi and pynvml do the same with
 * libnvidia-ml), so a cu* or nvml* name we interpose, looked up on a real handle, gets our
 * hook; everything else goes to libc's dlsym.
 *
 * Built -O2 -foptimize-sibling-calls and without sanitizers, even in the sanitized twin:
 * the pass-through must be a tail call (a jump), because glibc resolves RTLD_NEXT relative
 * to the caller's return address. A normal call would make every dlsym(RTLD_NEXT, ...) in
 * the process (ASan's own interceptors included) search after libgpushare instead of after
 * the library that asked. Nothing here allocates or locks on that path.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdatomic.h>

#include "dispatch.h"
#include "gs_common.h"
#include "guard.h"

typedef void *(*dlsym_fn)(void *, const char *);

static _Atomic(dlsym_fn) real_dlsym_fn;

static dlsym_fn real_dlsym_get(void)
{
    dlsym_fn f = atomic_load_explicit(&real_dlsym_fn, memory_order_acquire);
    if (f == NULL) {
        /* glibc >= 2.34 has dlsym in libc at GLIBC_2.34; older ones in libdl at 2.2.5. */
        f = (dlsym_fn)dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
        if (f == NULL)
            f = (dlsym_fn)dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
        atomic_store_explicit(&real_dlsym_fn, f, memory_order_release);
    }
    return f;
}

void *gs_real_dlsym(void *handle, const char *name)
{
    return real_dlsym_get()(handle, name);
}

GS_EXPORT void *dlsym(void *restrict handle, const char *restrict name)
{
    /* glibc declares name nonnull; a program may still pass NULL, so hide it from the
     * optimizer rather than let the check be deleted. */
    const char *n = name;
    __asm__("" : "+r"(n));
    if (n != NULL && ((n[0] == 'c' && n[1] == 'u') || (n[0] == 'n' && n[1] == 'v' && n[2] == 'm' && n[3] == 'l')) &&
        handle != RTLD_DEFAULT && handle != RTLD_NEXT && gs_depth == 0) {
        void *hook = gs_dlsym_hook(handle, name);
        if (hook != NULL)
            return hook;
    }
    return real_dlsym_get()(handle, name); /* tail call: see the top of the file */
}
