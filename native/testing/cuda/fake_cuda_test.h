/*
 * fake_cuda_test.h: a minimal harness for the fake driver's C tests. CHECK records a
 * failure with its location and goes on (so one run reports every broken expectation);
 * fct_finish prints "PASS name (n checks)" or "FAIL name (k of n checks failed)" and gives
 * the exit code.
 */
#ifndef GS_FAKE_CUDA_TEST_H
#define GS_FAKE_CUDA_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gs_cuda.h"

#define MIB (1024ULL * 1024ULL)
#define GIB (1024ULL * MIB)

bool fct_check(bool ok, const char *file, int line, const char *what);
bool fct_check_rc(CUresult got, CUresult want, const char *file, int line, const char *what);
bool fct_check_u64(unsigned long long got, unsigned long long want, const char *file, int line, const char *what);
int fct_finish(const char *name);

/* Sets GPUSHARE_FAKE_CUDA (and CUDA_VISIBLE_DEVICES when not NULL) before cuInit. */
void fct_configure(const char *json, const char *visible);
/* Free bytes of the current context's device. */
unsigned long long fct_free(void);
uint64_t fct_now_ns(void);
/* Points the fake's busy files (GPUSHARE_FAKE_CUDA_BUSY_DIR) at FAKE_CUDA_TEST_WORK, else /tmp,
 * and copies that directory into dir for the test to find them; false when setenv fails. */
bool fct_busy_dir(char *dir, size_t size);
/* Stream time between two recorded events, in ms (a failed check and -1 when refused). */
double fct_elapsed_ms(CUevent a, CUevent b);
/* Device dev's busy time and kernel count from this process's busy file in dir, checked to be
 * this process's; false, with a failed check, when the file cannot be read. */
bool fct_busy_read(const char *dir, int dev, uint64_t *busy_ns, uint64_t *kernels);

#define CHECK(cond) fct_check((cond), __FILE__, __LINE__, #cond)
#define CHECK_RC(call, want) fct_check_rc((call), (want), __FILE__, __LINE__, #call)
#define CHECK_OK(call) fct_check_rc((call), CUDA_SUCCESS, __FILE__, __LINE__, #call)
#define CHECK_EQ(got, want) fct_check_u64((unsigned long long)(got), (unsigned long long)(want), __FILE__, __LINE__, #got " == " #want)

#endif /* GS_FAKE_CUDA_TEST_H */
