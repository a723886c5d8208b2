/*
 * runtime_check.h: what the runtime-style test programs (remote_cudart.c, remote_calls.c)
 * share: checks that count failures and print the line (prefixed with CHECK_PROGRAM, which the
 * includer defines), and entry points taken as the CUDA runtime takes them, through
 * cuGetProcAddress_v2 (get_proc, set by the program from dlsym); a fatbin to load.
 */
#ifndef GSR_RUNTIME_CHECK_H
#define GSR_RUNTIME_CHECK_H

#include "gs_cuda.h"

#include <stdio.h>
#include <string.h>

static int failures;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            printf(CHECK_PROGRAM ": FAIL line %d: %s\n", __LINE__, #cond);           \
            failures++;                                                              \
        }                                                                            \
    } while (0)
#define EXPECT(call, want)                                                                                         \
    do {                                                                                                           \
        int got_ = (int)(call);                                                                                    \
        if (got_ != (int)(want)) {                                                                                 \
            printf(CHECK_PROGRAM ": FAIL line %d: %s = %d, expected %d\n", __LINE__, #call, got_, (int)(want));     \
            failures++;                                                                                            \
        }                                                                                                          \
    } while (0)

typedef CUresult (*pfn_get_proc)(const char *, void **, int, cuuint64_t, CUdriverProcAddressQueryResult *);
static pfn_get_proc get_proc;

/* An entry point as the runtime gets one: a CUDA version, stream flags; NULL (a failure
 * counted) when it is not served. */
static void *proc(const char *name, int version, cuuint64_t flags) {
    void *fn = NULL;
    CUdriverProcAddressQueryResult st = CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    CUresult rc = get_proc(name, &fn, version, flags, &st);
    if (rc != CUDA_SUCCESS || st != CU_GET_PROC_ADDRESS_SUCCESS || !fn) {
        printf(CHECK_PROGRAM ": FAIL cuGetProcAddress(%s, %d, %llu) = %d status %d\n", name, version, (unsigned long long)flags, (int)rc,
               (int)st);
        failures++;
    }
    return fn;
}

/* A fatbin as nvcc embeds one: the wrapper cudart registers, pointing at the fatbin (header
 * {magic, version, header size, payload size}, then the payload). The fake loads any image. */
static unsigned char fatbin[16 + 64] __attribute__((aligned(8)));
static struct {
    unsigned int magic, version;
    const void *data;
    const void *filename;
} wrapper = {0x466243B1u, 1, fatbin, NULL};

static void make_fatbin(void) {
    unsigned int magic = 0xBA55ED50u;
    unsigned short version = 1, header = 16;
    unsigned long long payload = 64;
    memcpy(fatbin, &magic, 4);
    memcpy(fatbin + 4, &version, 2);
    memcpy(fatbin + 6, &header, 2);
    memcpy(fatbin + 8, &payload, 8);
    for (int i = 0; i < 64; i++) fatbin[16 + i] = (unsigned char)i;
}

#endif /* GSR_RUNTIME_CHECK_H */
