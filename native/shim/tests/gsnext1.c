/* gsnext1.c: asks dlsym(RTLD_NEXT) for gsnext_value from inside a shared library. With
 * libgsnext2 loaded after it, the answer must be libgsnext2's (2): proof that an
 * interposed dlsym kept the caller's return address (shim/dlsym.c). */
#define _GNU_SOURCE
#include <dlfcn.h>

int gsnext_value(void) { return 1; }

int gsnext_call_next(void)
{
    int (*f)(void) = (int (*)(void))dlsym(RTLD_NEXT, "gsnext_value");
    return f ? f() : -1;
}
