/*
 * fake_cuda_launchlog.c: with GPUSHARE_FAKE_CUDA_LAUNCH_LOG=<file>, every accepted kernel
 * launch appends one line "<entry point> <kernel> blocks=<B> sms=<S> first=<F> green=<0|1>":
 * S is the SM count of the context the kernel runs in (a green context's partition, or the
 * whole device) and F its first SM, so tests can check where a program's kernels landed. O_APPEND, one
 * write(2) per line, so lines of concurrent launches never interleave.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fake_cuda_state.h"

void fake_launch_log(const char *fn, const struct CUfunc_st *f, const struct CUctx_st *ctx, unsigned long long blocks)
{
    const char *path = getenv("GPUSHARE_FAKE_CUDA_LAUNCH_LOG");
    if (path == NULL || *path == '\0')
        return;
    char line[256];
    int n = snprintf(line, sizeof line, "%s %s blocks=%llu sms=%u first=%u green=%d\n", fn, f->name, blocks,
                     ctx->sm_count, ctx->sm_first, ctx->green != NULL);
    if (n <= 0 || (size_t)n >= sizeof line)
        return;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    ssize_t w = write(fd, line, (size_t)n);
    (void)w; /* a test reading the log notices a missing line */
    close(fd);
}
