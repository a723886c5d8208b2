/*
 * launch.c: every kernel launch path goes through the compute governor (compute.c):
 * cuLaunchKernel, cuLaunchKernelEx, cuLaunchCooperativeKernel and their _ptsz forms, and
 * cuLaunchCooperativeKernelMultiDevice (gated on the calling thread's device; the launch
 * is one call for all its devices). cuGraphLaunch(_ptsz) is in graph.c, which calls the
 * governor as well. Each hook: the gate may sleep before the launch, then the driver's
 * launch, then the gate counts it (and may record a marker event after it).
 */
#include "gs_compute.h"

#define GOVERNED(call, stream, ptsz)                                                                                   \
    do {                                                                                                               \
        const gs_real_fns *R = gs_real();                                                                              \
        if (gs_nested())                                                                                               \
            return R->call;                                                                                            \
        gs_gate g;                                                                                                     \
        gs_enter();                                                                                                    \
        gs_compute_enter(&g, (stream), (ptsz));                                                                        \
        CUresult r = R->call;                                                                                          \
        gs_compute_leave(&g, (stream), r);                                                                             \
        gs_leave();                                                                                                    \
        return r;                                                                                                      \
    } while (0)

GS_EXPORT CUresult cuLaunchKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY, unsigned int gridDimZ,
                                  unsigned int blockDimX, unsigned int blockDimY, unsigned int blockDimZ,
                                  unsigned int sharedMemBytes, CUstream hStream, void **kernelParams, void **extra)
{
    GOVERNED(cuLaunchKernel(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes, hStream,
                            kernelParams, extra),
             hStream, false);
}

GS_EXPORT CUresult cuLaunchKernel_ptsz(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                       unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
                                       unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
                                       void **kernelParams, void **extra)
{
    GOVERNED(cuLaunchKernel_ptsz(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ, sharedMemBytes,
                                 hStream, kernelParams, extra),
             hStream, true);
}

GS_EXPORT CUresult cuLaunchKernelEx(const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra)
{
    GOVERNED(cuLaunchKernelEx(config, f, kernelParams, extra), config != NULL ? config->hStream : NULL, false);
}

GS_EXPORT CUresult cuLaunchKernelEx_ptsz(const CUlaunchConfig *config, CUfunction f, void **kernelParams, void **extra)
{
    GOVERNED(cuLaunchKernelEx_ptsz(config, f, kernelParams, extra), config != NULL ? config->hStream : NULL, true);
}

GS_EXPORT CUresult cuLaunchCooperativeKernel(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                             unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
                                             unsigned int blockDimZ, unsigned int sharedMemBytes, CUstream hStream,
                                             void **kernelParams)
{
    GOVERNED(cuLaunchCooperativeKernel(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ,
                                       sharedMemBytes, hStream, kernelParams),
             hStream, false);
}

GS_EXPORT CUresult cuLaunchCooperativeKernel_ptsz(CUfunction f, unsigned int gridDimX, unsigned int gridDimY,
                                                  unsigned int gridDimZ, unsigned int blockDimX, unsigned int blockDimY,
                                                  unsigned int blockDimZ, unsigned int sharedMemBytes,
                                                  CUstream hStream, void **kernelParams)
{
    GOVERNED(cuLaunchCooperativeKernel_ptsz(f, gridDimX, gridDimY, gridDimZ, blockDimX, blockDimY, blockDimZ,
                                            sharedMemBytes, hStream, kernelParams),
             hStream, true);
}

GS_EXPORT CUresult cuLaunchCooperativeKernelMultiDevice(CUDA_LAUNCH_PARAMS *launchParamsList, unsigned int numDevices,
                                                        unsigned int flags)
{
    GOVERNED(cuLaunchCooperativeKernelMultiDevice(launchParamsList, numDevices, flags),
             launchParamsList != NULL && numDevices > 0 ? launchParamsList[0].hStream : NULL, false);
}
