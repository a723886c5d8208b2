/*
 * fake-train: a stand-in for a training job on the fake driver, for the daemon's suspend,
 * resume and preemption tests. It fills MIB MiB of device memory with a pattern derived
 * from SEED, then runs STEPS steps of STEP_MS milliseconds (each one CUDA call on a scratch
 * buffer, then a sleep), printing "step N" as it goes, and at the end reads the memory back:
 * "result ok sum=<checksum>" when every byte survived, "result CORRUPT at <offset>" (exit 1)
 * otherwise. It prints the UUID of its device 0 at start and end, so a restore onto another
 * GPU shows. Linked against the fake libcuda.so.1 beside it (rpath $ORIGIN).
 *
 *   fake-train STEPS STEP_MS MIB [SEED]
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gs_cuda.h"

static void die(const char *what, CUresult r)
{
    fprintf(stderr, "fake-train: %s failed: CUresult %d\n", what, (int)r);
    exit(2);
}

#define TRY(call)                      \
    do {                               \
        CUresult r_ = (call);          \
        if (r_ != CUDA_SUCCESS)        \
            die(#call, r_);            \
    } while (0)

static void print_uuid(const char *when)
{
    CUuuid u;
    TRY(cuDeviceGetUuid(&u, 0));
    printf("%s device GPU-", when);
    for (int i = 0; i < 16; i++) {
        printf("%02x", (unsigned char)u.bytes[i]);
        if (i == 3 || i == 5 || i == 7 || i == 9)
            putchar('-');
    }
    putchar('\n');
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: fake-train STEPS STEP_MS MIB [SEED]\n");
        return 2;
    }
    long steps = atol(argv[1]), step_ms = atol(argv[2]);
    size_t bytes = (size_t)atol(argv[3]) << 20;
    unsigned int seed = argc > 4 ? (unsigned int)atol(argv[4]) : 1;
    if (steps < 0 || step_ms < 0 || bytes == 0) {
        fprintf(stderr, "fake-train: STEPS and STEP_MS must be >= 0, MIB > 0\n");
        return 2;
    }
    CUcontext ctx;
    CUdeviceptr buf, scratch;
    TRY(cuInit(0));
    TRY(cuCtxCreate_v2(&ctx, 0, 0));
    TRY(cuMemAlloc_v2(&buf, bytes));
    TRY(cuMemAlloc_v2(&scratch, 4096));
    unsigned char *host = malloc(bytes);
    if (!host)
        return 2;
    for (size_t i = 0; i < bytes; i++)
        host[i] = (unsigned char)((i * 2654435761u + seed) >> 13);
    TRY(cuMemcpyHtoD_v2(buf, host, bytes));
    print_uuid("start");
    printf("ready %zu bytes\n", bytes);
    fflush(stdout);
    for (long s = 1; s <= steps; s++) {
        TRY(cuMemsetD8_v2(scratch, (unsigned char)s, 4096));
        TRY(cuCtxSynchronize());
        struct timespec ts = {step_ms / 1000, (step_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        printf("step %ld\n", s);
        fflush(stdout);
    }
    unsigned char *back = malloc(bytes);
    if (!back)
        return 2;
    TRY(cuMemcpyDtoH_v2(back, buf, bytes));
    print_uuid("end");
    unsigned long long sum = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < bytes; i++) {
        if (back[i] != host[i]) {
            printf("result CORRUPT at %zu\n", i);
            return 1;
        }
        sum = (sum ^ back[i]) * 1099511628211ULL;
    }
    printf("result ok sum=%llx\n", sum);
    TRY(cuMemFree_v2(scratch));
    TRY(cuMemFree_v2(buf));
    TRY(cuCtxDestroy_v2(ctx));
    free(host);
    free(back);
    return 0;
}
