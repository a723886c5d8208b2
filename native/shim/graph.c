/*
 * graph.c: CUDA graph memory nodes. A graph's allocations come from a per-device graph
 * memory pool the driver grows when a graph with memory nodes is launched (or uploaded at
 * instantiation) and shrinks only at cuDeviceGraphMemTrim; nothing in the launch says how
 * much it will take. So the pool's reserve (CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT) is read
 * after each instantiate, launch and trim and the device's GRAPH usage set to it.
 *
 * Why no refusal at launch: the growth is only known once the launch is enqueued, and a
 * launch cannot be taken back (returning an error for enqueued work would lie about what
 * runs). Growth is therefore counted even past the limit (gs_region_add), and what follows
 * sees it: allocations are refused (after one trim of unused graph memory, see
 * gs_graph_trim) and the slice reports free 0 until the graph memory is freed and trimmed.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "gs_shim.h"

static struct {
    pthread_mutex_t lock;
    uint64_t counted[GS_REGION_MAX_DEVICES]; /* GRAPH bytes counted per device */
    _Atomic uint32_t devices;                 /* devices that had memory nodes (bit per ordinal) */
} G = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Settles dev's GRAPH usage with the driver's graph pool reserve. */
static void settle(int dev)
{
    const gs_real_fns *R = gs_real();
    cuuint64_t now = 0;
    if (!gs_dev_ok(dev) || R->cuDeviceGetGraphMemAttribute((CUdevice)dev, CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT, &now) !=
                               CUDA_SUCCESS)
        return;
    pthread_mutex_lock(&G.lock);
    uint64_t was = G.counted[dev];
    if (now > was && gs_region_add((uint32_t)dev, GS_REGION_KIND_GRAPH, now - was) == GS_REGION_OK)
        G.counted[dev] = now;
    else if (now < was) {
        gs_release(dev, GS_REGION_KIND_GRAPH, was - now);
        G.counted[dev] = now;
    }
    pthread_mutex_unlock(&G.lock);
    if (now > was) {
        uint64_t limit = gs_limit(dev);
        gs_region_usage u = {0};
        char a[48], b[48];
        if (limit != 0 && gs_region_usage_group((uint32_t)dev, &u) == GS_REGION_OK && u.device_bytes > limit)
            gs_log(GS_LOG_WARN, "device %d: CUDA graph memory grew to %s; the slice is %s over its limit until it is freed",
                   dev, gs_human_bytes(now, a, sizeof a), gs_human_bytes(u.device_bytes - limit, b, sizeof b));
    }
}

/* Settles the current device and every device that had memory nodes added by hand. */
static void settle_launch(void)
{
    int cur = gs_current_device();
    if (cur >= 0)
        settle(cur);
    uint32_t m = atomic_load_explicit(&G.devices, memory_order_relaxed);
    for (int d = 0; m != 0; d++, m >>= 1)
        if ((m & 1u) && d != cur)
            settle(d);
}

bool gs_graph_trim(int dev)
{
    const gs_real_fns *R = gs_real();
    if (dev < 0 || dev >= (int)GS_REGION_MAX_DEVICES)
        return false;
    pthread_mutex_lock(&G.lock);
    bool any = G.counted[dev] > 0;
    pthread_mutex_unlock(&G.lock);
    if (!any || R->cuDeviceGraphMemTrim((CUdevice)dev) != CUDA_SUCCESS)
        return false;
    settle(dev);
    return true;
}

GS_EXPORT CUresult cuGraphAddMemAllocNode(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                          size_t numDependencies, CUDA_MEM_ALLOC_NODE_PARAMS *nodeParams)
{
    CUresult r = gs_real()->cuGraphAddMemAllocNode(phGraphNode, hGraph, dependencies, numDependencies, nodeParams);
    if (r == CUDA_SUCCESS && nodeParams != NULL && nodeParams->poolProps.location.type == CU_MEM_LOCATION_TYPE_DEVICE &&
        nodeParams->poolProps.location.id >= 0 && nodeParams->poolProps.location.id < 32)
        atomic_fetch_or(&G.devices, 1u << nodeParams->poolProps.location.id);
    return r;
}

GS_EXPORT CUresult cuGraphInstantiateWithFlags(CUgraphExec *phGraphExec, CUgraph hGraph, unsigned long long flags)
{
    const gs_real_fns *R = gs_real();
    if (gs_nested())
        return R->cuGraphInstantiateWithFlags(phGraphExec, hGraph, flags);
    gs_enter();
    CUresult r = R->cuGraphInstantiateWithFlags(phGraphExec, hGraph, flags);
    if (r == CUDA_SUCCESS)
        settle_launch();
    gs_leave();
    return r;
}

GS_EXPORT CUresult cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream)
{
    const gs_real_fns *R = gs_real();
    if (gs_nested())
        return R->cuGraphLaunch(hGraphExec, hStream);
    gs_enter();
    CUresult r = R->cuGraphLaunch(hGraphExec, hStream);
    if (r == CUDA_SUCCESS)
        settle_launch();
    gs_leave();
    return r;
}

GS_EXPORT CUresult cuGraphLaunch_ptsz(CUgraphExec hGraphExec, CUstream hStream)
{
    const gs_real_fns *R = gs_real();
    if (gs_nested())
        return R->cuGraphLaunch_ptsz(hGraphExec, hStream);
    gs_enter();
    CUresult r = R->cuGraphLaunch_ptsz(hGraphExec, hStream);
    if (r == CUDA_SUCCESS)
        settle_launch();
    gs_leave();
    return r;
}

GS_EXPORT CUresult cuDeviceGraphMemTrim(CUdevice device)
{
    const gs_real_fns *R = gs_real();
    if (gs_nested())
        return R->cuDeviceGraphMemTrim(device);
    gs_enter();
    CUresult r = R->cuDeviceGraphMemTrim(device);
    if (r == CUDA_SUCCESS)
        settle((int)device);
    gs_leave();
    return r;
}
