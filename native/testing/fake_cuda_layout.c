/*
 * fake_cuda_layout.c: prints the layout of the CUDA types gpushare declares, one line per
 * fact ("sizeof T n", "field T.f offset size", "enum NAME value"). check-cuda-headers
 * builds it twice, against NVIDIA's cuda.h and against gs_cuda_types.h, and diffs the
 * output: equal output means our declarations are ABI-compatible with NVIDIA's.
 * The entries come from a file the script generates (see fake_cuda_check_headers.sh).
 */
#include <stddef.h>
#include <stdio.h>

#ifdef GS_LAYOUT_USE_CUDA_H
/* Declares the old-ABI types too (CUdeviceptr_v1, CUDA_ARRAY_DESCRIPTOR_v1). */
#define __CUDA_API_VERSION_INTERNAL 1
#include <cuda.h>
#else
#include "gs_cuda_types.h"
#endif

#define S(t) (void)printf("sizeof %s %zu\n", #t, sizeof(t));
#define F(t, f) (void)printf("field %s.%s %zu %zu\n", #t, #f, offsetof(t, f), sizeof(((t *)0)->f));
#define E(n) (void)printf("enum %s %lld\n", #n, (long long)(n));

int main(void)
{
#include "fake_cuda_layout_entries.h"
    return 0;
}
