/*
 * region_test.h: the small harness the region tests share. A test program runs sections of
 * checks, prints each failure with file:line, and ends with one summary line; its exit
 * status is 0 only when every check passed.
 */
#ifndef GS_REGION_TEST_H
#define GS_REGION_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gs_region.h"

void rt_begin(const char *program);
void rt_section(const char *name);
void rt_check(bool ok, const char *expr, const char *file, int line);
void rt_check_eq(unsigned long long got, unsigned long long want, const char *expr, const char *file, int line);
/* Prints "<program>: N checks, M failed: PASS|FAIL" and returns the exit status. */
int rt_end(void);
/* How many checks failed so far (children of fork report it through their exit status). */
unsigned rt_failures(void);

#define CHECK(cond) rt_check((cond), #cond, __FILE__, __LINE__)
#define CHECK_EQ(got, want) rt_check_eq((unsigned long long)(got), (unsigned long long)(want), #got, __FILE__, __LINE__)

/* A fresh empty directory for this run (under $TMPDIR or /tmp), created once. */
const char *rt_tmpdir(void);
/* dir/name into buf. */
void rt_path(char *buf, size_t len, const char *name);
/* Options for a file region at path with limit bytes on device 0 (others unlimited). */
gs_region_options rt_options(const char *path, uint64_t limit0);
/* Opens, failing the check (and printing err) unless the result is `want`. */
int rt_open(const gs_region_options *o, int want, const char *file, int line);
#define OPEN(o, want) rt_open((o), (want), __FILE__, __LINE__)

/* Monotonic nanoseconds. */
uint64_t rt_now_ns(void);
/* Sleeps ns (EINTR restarts). */
void rt_sleep_ns(uint64_t ns);
/* Maps a region file directly (to fake slots, as another process would have left them). */
gs_region_file *rt_map(const char *path);
void rt_unmap(gs_region_file *f);
/* Start time (field 22 of /proc/self/stat) of this process. */
uint64_t rt_self_start(void);
/* xorshift: a reproducible random stream per seed. */
uint64_t rt_rand(uint64_t *state);

#endif
