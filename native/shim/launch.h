/*
 * launch.h: the streams the launch hooks gate on. Every kernel launch path goes through the
 * compute gate (compute.c, COMPUTE.md): cuLaunchKernel, cuLaunchKernelEx,
 * cuLaunchCooperativeKernel and their _ptsz forms, and cuLaunchCooperativeKernelMultiDevice.
 * Their rows in hooks.def have policy `gate` and name the stream the launch goes to; hooks.c
 * generates each hook: the gate's enter (it may sleep), the driver's launch, the gate's leave
 * (it counts the launch and may record a marker event after it). cuGraphLaunch(_ptsz) is a
 * policy of graph.c, which calls the gate as well.
 */
#ifndef GS_LAUNCH_H
#define GS_LAUNCH_H

#include "gs_cuda.h"

/* cuLaunchKernelEx(_ptsz): the configuration's stream. */
static inline CUstream gs_launch_config_stream(const CUlaunchConfig *config)
{
    return config != NULL ? config->hStream : NULL;
}

/* cuLaunchCooperativeKernelMultiDevice: gated on the calling thread's device with its first
 * launch's stream (the launch is one call for all its devices). */
static inline CUstream gs_launch_multi_stream(const CUDA_LAUNCH_PARAMS *list, unsigned int count)
{
    return list != NULL && count > 0 ? list[0].hStream : NULL;
}

#endif /* GS_LAUNCH_H */
