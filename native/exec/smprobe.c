/*
 * gpushare-smprobe: how the CUDA driver splits each GPU into green-context SM groups, for the
 * node daemon's SM-partition placement (src/node/smgroups.ts). Prints one JSON object:
 *
 *   {"devices": [{"index": 0, "uuid": "GPU-...", "sms": 132, "min": 8, "step": 8, "groupable": 120}]}
 *
 * `groupable` is how many SMs the driver can put in groups of `min` (an H200's driver makes 15
 * groups of 8 of its 132 SMs: GPCs left with too few SMs by floor-sweeping give the rest to
 * the remainder). libgpushare builds a partition at GPUSHARE_SM_OFFSET from those groups
 * (native/shim/partition.c), so partitions side by side must fit in `groupable`, not in `sms`.
 * A device the driver cannot split (before Hopper, driver < 12.4) has "error" instead of the
 * numbers. No libcuda or no cuInit: {"error": "..."} and exit status 1.
 *
 * The driver is opened as the daemon's checkpoint code opens it: GPUSHARE_CUDA_PATH, else
 * the loader's libcuda.so.1. It creates no context (so no MPS client, no GPU memory).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "gs_cuda.h"

typedef struct driver {
    CUresult (*init)(unsigned int);
    CUresult (*count)(int *);
    CUresult (*get)(CUdevice *, int);
    CUresult (*uuid)(CUuuid *, CUdevice);
    CUresult (*resource)(CUdevice, CUdevResource *, CUdevResourceType);
    CUresult (*split)(CUdevResource *, unsigned int *, const CUdevResource *, CUdevResource *, unsigned int, unsigned int);
} driver;

/* One group of at least `want` SMs, as the driver rounds it; 0 when it cannot make one. */
static unsigned int group_size(const driver *D, const CUdevResource *all, unsigned int want)
{
    CUdevResource one, rest;
    unsigned int n = 1;
    return D->split(&one, &n, all, &rest, 0, want) == CUDA_SUCCESS && n == 1 ? one.sm.smCount : 0;
}

static void print_device(const driver *D, int index, const char *sep)
{
    CUdevice dev;
    CUuuid u;
    CUdevResource all;
    printf("%s{\"index\": %d", sep, index);
    CUresult r = D->get(&dev, index);
    if (r == CUDA_SUCCESS)
        r = D->uuid(&u, dev);
    if (r != CUDA_SUCCESS) {
        printf(", \"error\": \"cuDeviceGet/cuDeviceGetUuid failed with CUresult %d\"}", (int)r);
        return;
    }
    const unsigned char *b = (const unsigned char *)u.bytes;
    printf(", \"uuid\": \"GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x\"", b[0], b[1], b[2], b[3],
           b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    if (D->resource == NULL || D->split == NULL) {
        printf(", \"error\": \"the driver has no green contexts (cuDevSmResourceSplitByCount needs CUDA 12.4)\"}");
        return;
    }
    r = D->resource(dev, &all, CU_DEV_RESOURCE_TYPE_SM);
    if (r != CUDA_SUCCESS) {
        printf(", \"error\": \"cuDeviceGetDevResource failed with CUresult %d\"}", (int)r);
        return;
    }
    unsigned int min = group_size(D, &all, 1);
    if (min == 0) {
        printf(", \"sms\": %u, \"error\": \"cuDevSmResourceSplitByCount cannot make even the smallest SM group\"}",
               all.sm.smCount);
        return;
    }
    unsigned int two = group_size(D, &all, min + 1);
    unsigned int step = two > min ? two - min : min;
    unsigned int n = all.sm.smCount / min;
    CUdevResource *groups = calloc(n, sizeof *groups), rest;
    r = groups == NULL ? CUDA_ERROR_OUT_OF_MEMORY : D->split(groups, &n, &all, &rest, 0, min);
    free(groups);
    if (r != CUDA_SUCCESS) {
        printf(", \"sms\": %u, \"error\": \"cuDevSmResourceSplitByCount into groups of %u failed with CUresult %d\"}",
               all.sm.smCount, min, (int)r);
        return;
    }
    printf(", \"sms\": %u, \"min\": %u, \"step\": %u, \"groupable\": %u}", all.sm.smCount, min, step, n * min);
}

int main(void)
{
    const char *path = getenv("GPUSHARE_CUDA_PATH");
    void *lib = dlopen(path != NULL && path[0] != '\0' ? path : "libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        const char *why = dlerror();
        printf("{\"error\": \"cannot open the CUDA driver (%s)\"}\n", why != NULL ? "dlopen failed" : "unknown");
        return 1;
    }
    driver D;
    *(void **)&D.init = dlsym(lib, "cuInit");
    *(void **)&D.count = dlsym(lib, "cuDeviceGetCount");
    *(void **)&D.get = dlsym(lib, "cuDeviceGet");
    *(void **)&D.uuid = dlsym(lib, "cuDeviceGetUuid_v2");
    if (D.uuid == NULL)
        *(void **)&D.uuid = dlsym(lib, "cuDeviceGetUuid");
    *(void **)&D.resource = dlsym(lib, "cuDeviceGetDevResource");
    *(void **)&D.split = dlsym(lib, "cuDevSmResourceSplitByCount");
    int count = 0;
    CUresult r = CUDA_ERROR_NOT_FOUND;
    if (D.init != NULL && D.count != NULL && D.get != NULL && D.uuid != NULL && (r = D.init(0)) == CUDA_SUCCESS)
        r = D.count(&count);
    if (r != CUDA_SUCCESS) {
        printf("{\"error\": \"cuInit/cuDeviceGetCount failed with CUresult %d\"}\n", (int)r);
        return 1;
    }
    printf("{\"devices\": [");
    for (int i = 0; i < count; i++)
        print_device(&D, i, i == 0 ? "" : ", ");
    printf("]}\n");
    return 0;
}
