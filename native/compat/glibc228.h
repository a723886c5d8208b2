/*
 * glibc228.h: force-included (-include) into every object of a binary gpushare ships
 * (libgpushare.so, gpushare-smprobe; compat/ship.mk), so that they load on glibc >= 2.28,
 * the oldest glibc Node 20 runs on (RHEL/UBI 8; Ubuntu 20.04 has 2.31).
 *
 * Why: glibc 2.34 moved libdl and libpthread into libc and gave the moved functions a new
 * default version, GLIBC_2.34. Built against a newer glibc, a plain `dlopen` or `pthread_once`
 * needs GLIBC_2.34, which older loaders refuse ("version `GLIBC_2.34' not found"). Every newer
 * glibc still exports the old version of each (it must, for binaries built before 2.34), so
 * the references below name the old version outright. On glibc < 2.34 these symbols live in
 * libdl.so.2 and libpthread.so.0, which is why ship.mk links those by name (newer glibcs
 * keep both as empty stubs); the loader matches a versioned symbol by name and version in
 * every library it loaded, not only in the one the reference names.
 *
 * Two more symbols need more than a version: fstat (glibc 2.33 made it a real export) and
 * __libc_start_main (2.34 changed its calling convention); ship.mk --wraps them
 * (glibc228_fstat.c, glibc228_start.c). scripts/check-glibc.sh fails the build if anything
 * still needs more than GLIBC_2.28, so a new call that needs a pin here is noticed.
 *
 * No #include, only assembler directives: this header comes before the file's own
 * _GNU_SOURCE, so it must not pull in <features.h>. A .symver for a symbol the object never
 * references emits nothing.
 */
#ifndef GS_GLIBC228_H
#define GS_GLIBC228_H

/* The first version of the target's glibc ABI, which every function below had before 2.34:
 * 2.2.5 on x86-64, 2.17 on arm64 (its first glibc). */
#if defined(__x86_64__)
#define GS_GLIBC228_PIN(name) __asm__(".symver " #name "," #name "@GLIBC_2.2.5")
#elif defined(__aarch64__)
#define GS_GLIBC228_PIN(name) __asm__(".symver " #name "," #name "@GLIBC_2.17")
#endif

#ifdef GS_GLIBC228_PIN

/* libdl (2.34 moved these into libc). dlsym is pinned only where we do not define our own:
 * libgpushare exports a dlsym (shim/dlsym.c) and finds libc's with dlvsym. */
GS_GLIBC228_PIN(dlopen);
GS_GLIBC228_PIN(dlclose);
GS_GLIBC228_PIN(dlerror);
GS_GLIBC228_PIN(dladdr);
GS_GLIBC228_PIN(dlvsym);
#ifndef GS_GLIBC228_OWN_DLSYM
GS_GLIBC228_PIN(dlsym);
#endif

/* libpthread (semaphores included): every function 2.34 moved into libc with a new version.
 * librt's (shm_open, timer_*, aio_*) are left out: nothing here calls them, and they would
 * need librt.so.1 linked too. */
GS_GLIBC228_PIN(pthread_attr_getguardsize);
GS_GLIBC228_PIN(pthread_attr_getstack);
GS_GLIBC228_PIN(pthread_attr_getstackaddr);
GS_GLIBC228_PIN(pthread_attr_getstacksize);
GS_GLIBC228_PIN(pthread_attr_setguardsize);
GS_GLIBC228_PIN(pthread_attr_setstack);
GS_GLIBC228_PIN(pthread_attr_setstackaddr);
GS_GLIBC228_PIN(pthread_attr_setstacksize);
GS_GLIBC228_PIN(pthread_barrier_destroy);
GS_GLIBC228_PIN(pthread_barrier_init);
GS_GLIBC228_PIN(pthread_barrier_wait);
GS_GLIBC228_PIN(pthread_barrierattr_destroy);
GS_GLIBC228_PIN(pthread_barrierattr_init);
GS_GLIBC228_PIN(pthread_barrierattr_setpshared);
GS_GLIBC228_PIN(pthread_cancel);
GS_GLIBC228_PIN(pthread_condattr_getpshared);
GS_GLIBC228_PIN(pthread_condattr_setpshared);
GS_GLIBC228_PIN(pthread_create);
GS_GLIBC228_PIN(pthread_detach);
GS_GLIBC228_PIN(pthread_getconcurrency);
GS_GLIBC228_PIN(pthread_getcpuclockid);
GS_GLIBC228_PIN(pthread_getspecific);
GS_GLIBC228_PIN(pthread_join);
GS_GLIBC228_PIN(pthread_key_create);
GS_GLIBC228_PIN(pthread_key_delete);
GS_GLIBC228_PIN(pthread_kill);
GS_GLIBC228_PIN(pthread_mutex_timedlock);
GS_GLIBC228_PIN(pthread_mutex_trylock);
GS_GLIBC228_PIN(pthread_mutexattr_destroy);
GS_GLIBC228_PIN(pthread_mutexattr_getpshared);
GS_GLIBC228_PIN(pthread_mutexattr_gettype);
GS_GLIBC228_PIN(pthread_mutexattr_init);
GS_GLIBC228_PIN(pthread_mutexattr_setpshared);
GS_GLIBC228_PIN(pthread_mutexattr_settype);
GS_GLIBC228_PIN(pthread_once);
GS_GLIBC228_PIN(pthread_rwlock_destroy);
GS_GLIBC228_PIN(pthread_rwlock_init);
GS_GLIBC228_PIN(pthread_rwlock_rdlock);
GS_GLIBC228_PIN(pthread_rwlock_timedrdlock);
GS_GLIBC228_PIN(pthread_rwlock_timedwrlock);
GS_GLIBC228_PIN(pthread_rwlock_tryrdlock);
GS_GLIBC228_PIN(pthread_rwlock_trywrlock);
GS_GLIBC228_PIN(pthread_rwlock_unlock);
GS_GLIBC228_PIN(pthread_rwlock_wrlock);
GS_GLIBC228_PIN(pthread_rwlockattr_destroy);
GS_GLIBC228_PIN(pthread_rwlockattr_getkind_np);
GS_GLIBC228_PIN(pthread_rwlockattr_getpshared);
GS_GLIBC228_PIN(pthread_rwlockattr_init);
GS_GLIBC228_PIN(pthread_rwlockattr_setkind_np);
GS_GLIBC228_PIN(pthread_rwlockattr_setpshared);
GS_GLIBC228_PIN(pthread_setconcurrency);
GS_GLIBC228_PIN(pthread_setspecific);
GS_GLIBC228_PIN(pthread_spin_destroy);
GS_GLIBC228_PIN(pthread_spin_init);
GS_GLIBC228_PIN(pthread_spin_lock);
GS_GLIBC228_PIN(pthread_spin_trylock);
GS_GLIBC228_PIN(pthread_spin_unlock);
GS_GLIBC228_PIN(pthread_testcancel);
GS_GLIBC228_PIN(sem_close);
GS_GLIBC228_PIN(sem_destroy);
GS_GLIBC228_PIN(sem_getvalue);
GS_GLIBC228_PIN(sem_init);
GS_GLIBC228_PIN(sem_open);
GS_GLIBC228_PIN(sem_post);
GS_GLIBC228_PIN(sem_timedwait);
GS_GLIBC228_PIN(sem_trywait);
GS_GLIBC228_PIN(sem_unlink);
GS_GLIBC228_PIN(sem_wait);

#undef GS_GLIBC228_PIN
#endif

#endif
