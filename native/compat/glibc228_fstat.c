/*
 * glibc228_fstat.c: fstat for glibc >= 2.28 (compat/ship.mk links it with -Wl,--wrap=fstat).
 *
 * glibc 2.33 made fstat a real export (GLIBC_2.33). Before, <sys/stat.h> turned every fstat
 * into __fxstat(_STAT_VER, ...), which every glibc since 2.2.5 still exports; this is that
 * call, written out. _STAT_VER is 1 on x86-64 (the kernel's struct stat, which is glibc's) and
 * 0 on arm64 (the generic struct stat, the kernel's too).
 */
#include <sys/stat.h>

#if defined(__x86_64__) || defined(__aarch64__)
/* No prototype in newer headers: declared here and bound to the old version. */
int gs_glibc228_fxstat(int ver, int fd, struct stat *st);
#if defined(__x86_64__)
__asm__(".symver gs_glibc228_fxstat,__fxstat@GLIBC_2.2.5");
enum { GS_STAT_VER_KERNEL = 1 };
#else
__asm__(".symver gs_glibc228_fxstat,__fxstat@GLIBC_2.17");
enum { GS_STAT_VER_KERNEL = 0 };
#endif

__attribute__((visibility("hidden"))) int __wrap_fstat(int fd, struct stat *st);

int __wrap_fstat(int fd, struct stat *st)
{
    return gs_glibc228_fxstat(GS_STAT_VER_KERNEL, fd, st);
}
#endif
