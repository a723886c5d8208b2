/*
 * test_fake_cuda_sharedmem.c: shared-memory mode ("sharedMemory", FAKE_CUDA.md): the processes
 * of a busy directory share one card's memory. A child holds 40 MiB of a 64 MiB card: the
 * parent sees 24 MiB free and cannot allocate 32; once the child frees, it can; a child that
 * ends holding its memory stops counting.
 */
#include <sys/wait.h>
#include <unistd.h>

#include "fake_cuda_test.h"

#define MiB (1024ull * 1024ull)

/* The child: commands on `down` (a: allocate 40 MiB, f: free it, x: exit as it is), one byte
 * back on `up` after each ('k', or 'e' on a failure). */
static void child(int up, int down)
{
    CUcontext ctx;
    CUdeviceptr p = 0;
    char c = 0;
    if (cuInit(0) != CUDA_SUCCESS || cuCtxCreate_v4(&ctx, NULL, 0, 0) != CUDA_SUCCESS)
        _exit(3);
    while (read(down, &c, 1) == 1 && c != 'x') {
        CUresult r = c == 'a' ? cuMemAlloc_v2(&p, 40 * MiB) : cuMemFree_v2(p);
        if (write(up, r == CUDA_SUCCESS ? "k" : "e", 1) != 1)
            _exit(4);
    }
    _exit(0); /* maybe holding its 40 MiB: the kernel takes them, the card's file must not count them */
}

/* Sends the child one command; whether it answered k. */
static bool tell(int up, int down, const char *cmd)
{
    char c = 0;
    return write(down, cmd, 1) == 1 && read(up, &c, 1) == 1 && c == 'k';
}

/* A 64 MiB card shared through the busy directory (its file: <dir>/<uuid>.mem). */
static const char CARD[] = "{\"contextBytes\": 0, \"sharedMemory\": true, \"devices\": [{\"uuid\": "
                           "\"GPU-5ead3e30-0000-4000-8000-000000000000\", \"totalMemory\": 67108864}]}";

int main(void)
{
    char busy[256];
    int u[2], d[2];
    if (!fct_busy_dir(busy, sizeof busy) || pipe(u) != 0 || pipe(d) != 0)
        return 2;
    fct_configure(CARD, NULL);
    /* the child first: the parent's driver threads would not survive a fork */
    pid_t kid = fork();
    if (kid == 0) {
        close(u[0]);
        close(d[1]);
        child(u[1], d[0]);
    }
    close(u[1]);
    close(d[0]);
    CHECK(tell(u[0], d[1], "a"));
    CHECK_OK(cuInit(0));
    CUcontext ctx;
    CHECK_OK(cuCtxCreate_v4(&ctx, NULL, 0, 0));
    CHECK_EQ(fct_free(), 24 * MiB);
    CUdeviceptr p;
    CHECK_RC(cuMemAlloc_v2(&p, 32 * MiB), CUDA_ERROR_OUT_OF_MEMORY);

    /* the other frees: the room is there */
    CHECK(tell(u[0], d[1], "f"));
    CHECK_EQ(fct_free(), 64 * MiB);
    CHECK_OK(cuMemAlloc_v2(&p, 32 * MiB));
    CHECK_EQ(fct_free(), 32 * MiB);
    /* and the other cannot take 40 now */
    CHECK(!tell(u[0], d[1], "a"));
    CHECK_OK(cuMemFree_v2(p));

    /* a process that ends holding memory stops counting */
    CHECK(tell(u[0], d[1], "a"));
    CHECK_EQ(fct_free(), 24 * MiB);
    CHECK(write(d[1], "x", 1) == 1);
    int st = 0;
    CHECK(waitpid(kid, &st, 0) == kid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_EQ(fct_free(), 64 * MiB);
    CHECK_OK(cuCtxDestroy_v2(ctx));
    return fct_finish("fake_cuda_sharedmem");
}
