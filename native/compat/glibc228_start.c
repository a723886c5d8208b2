/*
 * glibc228_start.c: program start for executables that must run on glibc >= 2.28
 * (gpushare-smprobe; compat/ship.mk links it with -Wl,--wrap=__libc_start_main).
 *
 * glibc 2.34's start files call __libc_start_main@GLIBC_2.34 with no init function: the new
 * libc finds the program's constructors itself. Older ones only run what init runs, and the
 * start files used to pass __libc_csu_init (from libc_nonshared.a, gone in 2.34). So we call
 * the old version and pass our own init, which does what __libc_csu_init did for a dynamic
 * executable: _init, then .init_array (the loader runs .preinit_array). Every glibc since 2.34
 * still honours a non-null init ("legacy program") and then runs nothing else itself, so the
 * constructors run exactly once on both. fini stays null: the loader runs .fini_array.
 */
#include <stddef.h>

#if defined(__x86_64__) || defined(__aarch64__)
typedef int (*gs_main_fn)(int, char **, char **);
typedef void (*gs_init_fn)(int, char **, char **);

/* Provided by the linker (.init_array bounds) and crti.o (_init) in every executable. */
extern gs_init_fn __init_array_start[] __attribute__((visibility("hidden")));
extern gs_init_fn __init_array_end[] __attribute__((visibility("hidden")));
extern void _init(void);

int gs_glibc228_start_main(gs_main_fn main_fn, int argc, char **argv, gs_init_fn init, void (*fini)(void),
                           void (*rtld_fini)(void), void *stack_end);
#if defined(__x86_64__)
__asm__(".symver gs_glibc228_start_main,__libc_start_main@GLIBC_2.2.5");
#else
__asm__(".symver gs_glibc228_start_main,__libc_start_main@GLIBC_2.17");
#endif

static void gs_glibc228_init(int argc, char **argv, char **envp)
{
    _init();
    size_t n = (size_t)(__init_array_end - __init_array_start);
    for (size_t i = 0; i < n; i++)
        __init_array_start[i](argc, argv, envp);
}

__attribute__((visibility("hidden"))) int __wrap___libc_start_main(gs_main_fn main_fn, int argc, char **argv,
                                                                   gs_init_fn init, void (*fini)(void),
                                                                   void (*rtld_fini)(void), void *stack_end);

int __wrap___libc_start_main(gs_main_fn main_fn, int argc, char **argv, gs_init_fn init, void (*fini)(void),
                             void (*rtld_fini)(void), void *stack_end)
{
    /* Start files older than 2.34 pass their own init; keep it then. */
    return gs_glibc228_start_main(main_fn, argc, argv, init != NULL ? init : gs_glibc228_init, fini, rtld_fini,
                                  stack_end);
}
#endif
