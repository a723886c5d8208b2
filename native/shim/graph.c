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
 * reclaim) and the slice reports free 0 until the graph memory is freed and trimmed.
 *
 * Reading the reserve costs a driver call per launch (+5.9% on an H100 graph-launch
 * benchmark), and only graphs with memory nodes can change it. So at instantiation the
 * graph's nodes are looked at: an executable graph with no memory allocation node, child
 * graph or conditional node (the last two may hide one) goes into a set of graphs known
 * not to allocate, and its launches skip the read. Everything else is read as before: a
 * graph whose nodes cannot be listed counts as allocating; one instantiated through a path
 * we do not hook is unknown, and launches of unknown graphs read the pool at most once a
 * millisecond (growth is seen within 1 ms). cuGraphExecDestroy takes a handle out, so a reused
 * address is never mistaken for the graph that had it.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "gs_compute.h"
#include "hooks.h"
#include "log.h"
#include "state.h"

static struct {
    pthread_mutex_t lock;
    _Atomic uint64_t unknown_read_ns;         /* last read after a launch of an unknown graph */
    uint64_t counted[GS_REGION_MAX_DEVICES]; /* GRAPH bytes counted per device */
    _Atomic uint32_t devices;                 /* devices that had memory nodes (bit per ordinal) */
} G = {.lock = PTHREAD_MUTEX_INITIALIZER};

/*
 * The set of executable graphs known not to allocate: open addressing over a fixed table
 * of atomic words, lock-free (a launch looks up without a lock). 0 = never used, 1 = a
 * removed entry (a probe goes on past it, an insert may reuse it). Probes are bounded: an
 * insert that finds no room leaves the graph out of the set, which is only slower.
 */
enum { SAFE_SLOTS = 4096, SAFE_PROBES = 32, SAFE_EMPTY = 0, SAFE_GONE = 1 };
static _Atomic uintptr_t safe_set[SAFE_SLOTS];

static size_t safe_home(uintptr_t key)
{
    return (size_t)(((uint64_t)(key >> 4) * UINT64_C(0x9E3779B97F4A7C15)) >> 52) % SAFE_SLOTS;
}

/* What is known of an executable graph: the set holds its handle, tagged (bit 1) when it
 * may allocate. Handles are driver pointers, 8-byte aligned; others are never entered. */
enum { EXEC_UNKNOWN = 0, EXEC_SAFE, EXEC_ALLOCATES };
#define ALLOC_TAG ((uintptr_t)2)

static void safe_add(CUgraphExec e, bool allocates)
{
    uintptr_t key = (uintptr_t)e;
    if (key <= SAFE_GONE || (key & 7u) != 0)
        return;
    uintptr_t want = allocates ? key | ALLOC_TAG : key;
    for (size_t i = 0, h = safe_home(key); i < SAFE_PROBES; i++) {
        _Atomic uintptr_t *slot = &safe_set[(h + i) % SAFE_SLOTS];
        uintptr_t v = atomic_load_explicit(slot, memory_order_acquire);
        if ((v & ~ALLOC_TAG) == key) {
            atomic_store(slot, want);
            return;
        }
        if ((v == SAFE_EMPTY || v == SAFE_GONE) && atomic_compare_exchange_strong(slot, &v, want))
            return;
    }
}

static int exec_known(CUgraphExec e)
{
    uintptr_t key = (uintptr_t)e;
    if ((key & 7u) != 0)
        return EXEC_UNKNOWN;
    for (size_t i = 0, h = safe_home(key); i < SAFE_PROBES; i++) {
        uintptr_t v = atomic_load_explicit(&safe_set[(h + i) % SAFE_SLOTS], memory_order_acquire);
        if (v == SAFE_EMPTY)
            return EXEC_UNKNOWN;
        if (v != SAFE_GONE && (v & ~ALLOC_TAG) == key)
            return (v & ALLOC_TAG) ? EXEC_ALLOCATES : EXEC_SAFE;
    }
    return EXEC_UNKNOWN;
}

static void safe_remove(CUgraphExec e)
{
    uintptr_t key = (uintptr_t)e;
    for (size_t i = 0, h = safe_home(key); i < SAFE_PROBES; i++) {
        _Atomic uintptr_t *slot = &safe_set[(h + i) % SAFE_SLOTS];
        uintptr_t v = atomic_load_explicit(slot, memory_order_acquire);
        if (v == SAFE_EMPTY)
            return;
        if (v != SAFE_GONE && (v & ~ALLOC_TAG) == key) {
            (void)atomic_compare_exchange_strong(slot, &v, (uintptr_t)SAFE_GONE);
            return;
        }
    }
}

/* Whether an executable graph made from g may allocate graph memory: true when it has a
 * memory allocation node, a node that may contain one, or when its nodes cannot be listed. */
static bool may_allocate(CUgraph g)
{
    const gs_real_fns *R = gs_real();
    size_t n = 0;
    if (R->cuGraphGetNodes == NULL || R->cuGraphNodeGetType == NULL || R->cuGraphGetNodes(g, NULL, &n) != CUDA_SUCCESS)
        return true;
    if (n == 0)
        return false;
    CUgraphNode *nodes = calloc(n, sizeof *nodes);
    size_t got = n;
    bool may = nodes == NULL || R->cuGraphGetNodes(g, nodes, &got) != CUDA_SUCCESS;
    for (size_t i = 0; !may && i < got && i < n; i++) {
        CUgraphNodeType t;
        may = R->cuGraphNodeGetType(nodes[i], &t) != CUDA_SUCCESS || t == CU_GRAPH_NODE_TYPE_MEM_ALLOC ||
              t == CU_GRAPH_NODE_TYPE_GRAPH || t == CU_GRAPH_NODE_TYPE_CONDITIONAL;
    }
    free(nodes);
    return may;
}

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

/* Trims dev's unused graph memory and settles its count; false when there was none. */
static bool trim(int dev)
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

/* A reclaimer (state.c): before a refusal, unused graph memory (the driver's cache, not the
 * program's) is given back. Settling alone reads nothing here: the count follows the reserve
 * at every instantiate, launch and trim. */
static void reclaim(int dev, gs_reclaim_depth depth)
{
    if (depth == GS_RECLAIM_TRIM)
        (void)trim(dev);
}

__attribute__((constructor)) static void register_reclaimer(void)
{
    gs_reclaimer_register(reclaim);
}

CUresult gs_graph_add_mem_alloc_node(gs_fn_cuGraphAddMemAllocNode real, CUgraphNode *phGraphNode, CUgraph hGraph,
                                     const CUgraphNode *dependencies, size_t numDependencies,
                                     CUDA_MEM_ALLOC_NODE_PARAMS *nodeParams)
{
    CUresult r = real(phGraphNode, hGraph, dependencies, numDependencies, nodeParams);
    if (r == CUDA_SUCCESS && nodeParams != NULL && nodeParams->poolProps.location.type == CU_MEM_LOCATION_TYPE_DEVICE &&
        nodeParams->poolProps.location.id >= 0 && nodeParams->poolProps.location.id < 32)
        atomic_fetch_or(&G.devices, 1u << nodeParams->poolProps.location.id);
    return r;
}

/* Instantiation may upload the graph, growing the pool: settled when the graph can allocate. */
static CUresult instantiated(CUresult r, CUgraphExec *e, CUgraph g)
{
    if (r == CUDA_SUCCESS) {
        bool allocates = may_allocate(g);
        safe_add(*e, allocates);
        if (allocates)
            settle_launch();
    }
    return r;
}

CUresult gs_graph_instantiate_with_flags(gs_fn_cuGraphInstantiateWithFlags real, CUgraphExec *phGraphExec, CUgraph hGraph,
                                         unsigned long long flags)
{
    return instantiated(real(phGraphExec, hGraph, flags), phGraphExec, hGraph);
}

CUresult gs_graph_instantiate_with_params(gs_fn_cuGraphInstantiateWithParams real, CUgraphExec *phGraphExec,
                                          CUgraph hGraph, CUDA_GRAPH_INSTANTIATE_PARAMS *instantiateParams)
{
    return instantiated(real(phGraphExec, hGraph, instantiateParams), phGraphExec, hGraph);
}

CUresult gs_graph_exec_destroy(gs_fn_cuGraphExecDestroy real, CUgraphExec hGraphExec)
{
    /* out of the set first: once destroyed, its address may come back as another graph */
    safe_remove(hGraphExec);
    return real(hGraphExec);
}

/* A graph that may allocate: the pool is read after every launch. One instantiated where we
 * could not look at it (an entry point we do not hook): at most once a millisecond, so a
 * program launching such graphs at a high rate does not pay a driver call per launch. */
static void after_launch(CUgraphExec e)
{
    int known = exec_known(e);
    if (known == EXEC_SAFE)
        return;
    if (known == EXEC_UNKNOWN) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t now = (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
        uint64_t last = atomic_load_explicit(&G.unknown_read_ns, memory_order_relaxed);
        if (now - last < UINT64_C(1000000) || !atomic_compare_exchange_strong(&G.unknown_read_ns, &last, now))
            return;
    }
    settle_launch();
}

/* The compute gate first: a graph is a launch like any other. */
CUresult gs_graph_launch(gs_fn_cuGraphLaunch real, bool ptsz, CUgraphExec hGraphExec, CUstream hStream)
{
    gs_gate gate;
    gs_compute_enter(&gate, hStream, ptsz);
    CUresult r = real(hGraphExec, hStream);
    gs_compute_leave(&gate, hStream, r);
    if (r == CUDA_SUCCESS)
        after_launch(hGraphExec);
    return r;
}

CUresult gs_graph_mem_trim(gs_fn_cuDeviceGraphMemTrim real, CUdevice device)
{
    CUresult r = real(device);
    if (r == CUDA_SUCCESS)
        settle((int)device);
    return r;
}
