/*
 * fake_cuda_graph.c: graphs with kernel and memory nodes, and the device's graph memory.
 *
 * Model: a kernel node runs like a launch; a launch of the graph queues one op whose run
 * time is the sum of its kernels. A memory allocation node gets its address when it is
 * added (like the real driver); at launch it becomes a live allocation counted in the
 * device's graph memory ("used"), and graph memory is reserved from the device in
 * `vmmGranularity` steps as used grows. A free node (or cuMemFree/cuMemFreeAsync of the
 * pointer) ends the allocation; reserved memory stays until cuDeviceGraphMemTrim.
 * Accounting happens when cuGraphLaunch is called, not when the stream gets there.
 */
#include <stdlib.h>

#include "fake_cuda_state.h"

static CUresult add_node(CUgraphNode *ph, CUgraph g, const CUgraphNode *deps, size_t ndeps, fake_node_kind_t kind,
                         struct CUgraphNode_st **out)
{
    if (!ph || (ndeps && !deps))
        return CUDA_ERROR_INVALID_VALUE;
    if (!fake_list_has(&fake_state()->graphs, g) || g->destroyed)
        return CUDA_ERROR_INVALID_VALUE;
    struct CUgraphNode_st *n = calloc(1, sizeof *n);
    if (!n)
        return CUDA_ERROR_OUT_OF_MEMORY;
    n->kind = kind;
    if (g->last)
        g->last->next = n;
    else
        g->nodes = n;
    g->last = n;
    *ph = n;
    *out = n;
    return CUDA_SUCCESS;
}

FAKE_EXPORT CUresult cuGraphCreate(CUgraph *phGraph, unsigned int flags)
{
    CUresult r = fake_enter("cuGraphCreate");
    if (r == CUDA_SUCCESS && (!phGraph || flags != 0))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS) {
        struct CUgraph_st *g = calloc(1, sizeof *g);
        if (!g)
            return fake_leave(CUDA_ERROR_OUT_OF_MEMORY);
        fake_list_add(&fake_state()->graphs, g);
        *phGraph = g;
    }
    return fake_leave(r);
}

static void graph_free(struct CUgraph_st *g)
{
    for (struct CUgraphNode_st *n = g->nodes, *next; n; n = next) {
        next = n->next;
        free(n);
    }
    fake_list_remove(&fake_state()->graphs, g);
    free(g);
}

FAKE_EXPORT CUresult cuGraphDestroy(CUgraph hGraph)
{
    CUresult r = fake_enter("cuGraphDestroy");
    if (r == CUDA_SUCCESS && (!fake_list_has(&fake_state()->graphs, hGraph) || hGraph->destroyed))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS) {
        hGraph->destroyed = true;
        if (hGraph->execs == 0)
            graph_free(hGraph); /* else its executable graphs still run its nodes */
    }
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuGraphAddKernelNode_v2(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                             size_t numDependencies, const CUDA_KERNEL_NODE_PARAMS *p)
{
    struct CUctx_st *ctx;
    struct CUgraphNode_st *n;
    CUresult r = fake_enter("cuGraphAddKernelNode_v2");
    if (r == CUDA_SUCCESS && (!p || !fake_function_valid(p->func) || !p->gridDimX || !p->gridDimY || !p->gridDimZ))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS)
        r = p->ctx ? (fake_ctx_valid(p->ctx) ? CUDA_SUCCESS : CUDA_ERROR_INVALID_CONTEXT) : fake_need_ctx(&ctx);
    if (r == CUDA_SUCCESS && p->ctx)
        ctx = p->ctx;
    if (r == CUDA_SUCCESS)
        r = add_node(phGraphNode, hGraph, dependencies, numDependencies, FAKE_NODE_KERNEL, &n);
    if (r == CUDA_SUCCESS)
        n->duration_ns = fake_kernel_ns(p->func, ctx, (unsigned long long)p->gridDimX * p->gridDimY * p->gridDimZ,
                                        p->kernelParams, p->extra);
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuGraphAddMemAllocNode(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                            size_t numDependencies, CUDA_MEM_ALLOC_NODE_PARAMS *p)
{
    struct CUgraphNode_st *n;
    CUresult r = fake_enter("cuGraphAddMemAllocNode");
    if (r == CUDA_SUCCESS && (!p || p->bytesize == 0 || p->poolProps.allocType != CU_MEM_ALLOCATION_TYPE_PINNED ||
                              p->poolProps.location.type != CU_MEM_LOCATION_TYPE_DEVICE))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && !fake_device_valid(p->poolProps.location.id))
        r = CUDA_ERROR_INVALID_DEVICE;
    if (r != CUDA_SUCCESS)
        return fake_leave(r);
    fake_graph_alloc_t *ga = calloc(1, sizeof *ga);
    if (ga)
        ga->base = fake_map_space(p->bytesize, &ga->mapped);
    if (!ga || !ga->base) {
        free(ga);
        return fake_leave(CUDA_ERROR_OUT_OF_MEMORY);
    }
    r = add_node(phGraphNode, hGraph, dependencies, numDependencies, FAKE_NODE_MEM_ALLOC, &n);
    if (r != CUDA_SUCCESS) {
        fake_unmap_space(ga->base, ga->mapped);
        free(ga);
        return fake_leave(r);
    }
    ga->device = p->poolProps.location.id;
    ga->size = p->bytesize;
    fake_list_add(&fake_state()->graph_allocs, ga);
    n->alloc = ga;
    p->dptr = (CUdeviceptr)ga->base;
    return fake_leave(CUDA_SUCCESS);
}

FAKE_EXPORT CUresult cuGraphAddMemFreeNode(CUgraphNode *phGraphNode, CUgraph hGraph, const CUgraphNode *dependencies,
                                           size_t numDependencies, CUdeviceptr dptr)
{
    struct CUgraphNode_st *n;
    fake_graph_alloc_t *found = NULL;
    CUresult r = fake_enter("cuGraphAddMemFreeNode");
    FAKE_FOREACH(fake_graph_alloc_t, ga, &fake_state()->graph_allocs)
    if (ga->base == dptr)
        found = ga;
    if (r == CUDA_SUCCESS && !found)
        r = CUDA_ERROR_INVALID_VALUE; /* only graph allocations can be freed by a graph */
    if (r == CUDA_SUCCESS)
        r = add_node(phGraphNode, hGraph, dependencies, numDependencies, FAKE_NODE_MEM_FREE, &n);
    if (r == CUDA_SUCCESS)
        n->alloc = found;
    return fake_leave(r);
}

static CUresult instantiate(const char *fn, CUgraphExec *phGraphExec, CUgraph hGraph, unsigned long long flags)
{
    CUresult r = fake_enter(fn);
    if (r == CUDA_SUCCESS && (!phGraphExec || flags > 0xf || !fake_list_has(&fake_state()->graphs, hGraph) ||
                              hGraph->destroyed))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS) {
        struct CUgraphExec_st *e = calloc(1, sizeof *e);
        if (!e)
            return fake_leave(CUDA_ERROR_OUT_OF_MEMORY);
        e->graph = hGraph;
        hGraph->execs++;
        fake_list_add(&fake_state()->execs, e);
        *phGraphExec = e;
    }
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuGraphInstantiateWithFlags(CUgraphExec *phGraphExec, CUgraph hGraph, unsigned long long flags)
{
    return instantiate("cuGraphInstantiateWithFlags", phGraphExec, hGraph, flags);
}

static CUresult instantiate_with_params(const char *fn, CUgraphExec *e, CUgraph g, CUDA_GRAPH_INSTANTIATE_PARAMS *p)
{
    if (!p)
        return CUDA_ERROR_INVALID_VALUE;
    /* the upload stream is not modelled: the graph is ready at once */
    CUresult r = instantiate(fn, e, g, p->flags & ~(cuuint64_t)CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD);
    p->hErrNode_out = NULL;
    p->result_out = r == CUDA_SUCCESS ? CUDA_GRAPH_INSTANTIATE_SUCCESS : CUDA_GRAPH_INSTANTIATE_ERROR;
    return r;
}

FAKE_EXPORT CUresult cuGraphInstantiateWithParams(CUgraphExec *phGraphExec, CUgraph hGraph,
                                                  CUDA_GRAPH_INSTANTIATE_PARAMS *instantiateParams)
{
    return instantiate_with_params("cuGraphInstantiateWithParams", phGraphExec, hGraph, instantiateParams);
}

FAKE_EXPORT CUresult cuGraphInstantiateWithParams_ptsz(CUgraphExec *phGraphExec, CUgraph hGraph,
                                                       CUDA_GRAPH_INSTANTIATE_PARAMS *instantiateParams)
{
    return instantiate_with_params("cuGraphInstantiateWithParams_ptsz", phGraphExec, hGraph, instantiateParams);
}

FAKE_EXPORT CUresult cuGraphExecDestroy(CUgraphExec hGraphExec)
{
    CUresult r = fake_enter("cuGraphExecDestroy");
    if (r == CUDA_SUCCESS && !fake_list_has(&fake_state()->execs, hGraphExec))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS) {
        struct CUgraph_st *g = hGraphExec->graph;
        fake_list_remove(&fake_state()->execs, hGraphExec);
        free(hGraphExec);
        if (--g->execs == 0 && g->destroyed)
            graph_free(g);
    }
    return fake_leave(r);
}

/* Makes a graph allocation live: counts it and grows the device's graph reserve. */
static CUresult graph_alloc_start(fake_graph_alloc_t *ga)
{
    fake_device_t *d = &fake_state()->devices[ga->device];
    if (ga->live)
        return CUDA_ERROR_INVALID_VALUE; /* still allocated from an earlier launch */
    unsigned long long want = fake_round_up(d->graph_used + ga->size, fake_state()->config.vmm_granularity);
    if (want > d->graph_reserved) {
        CUresult r = fake_charge(ga->device, want - d->graph_reserved);
        if (r != CUDA_SUCCESS)
            return r;
        d->graph_reserved = want;
        if (want > d->graph_reserved_high)
            d->graph_reserved_high = want;
    }
    ga->live = fake_alloc_add(FAKE_ALLOC_GRAPH, ga->base, ga->size, ga->mapped, 0, ga->device, NULL);
    if (!ga->live)
        return CUDA_ERROR_OUT_OF_MEMORY;
    ga->live->graph_alloc = ga;
    d->graph_used += ga->size;
    if (d->graph_used > d->graph_used_high)
        d->graph_used_high = d->graph_used;
    return CUDA_SUCCESS;
}

static CUresult graph_launch(const char *fn, CUgraphExec e, CUstream h)
{
    fake_stream_t *s = NULL;
    CUresult r = fake_enter(fn);
    if (r == CUDA_SUCCESS && !fake_list_has(&fake_state()->execs, e))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS)
        r = fake_stream_resolve(h, &s);
    if (r != CUDA_SUCCESS)
        return fake_leave(r);
    uint64_t ns = 0;
    unsigned int kernels = 0;
    for (struct CUgraphNode_st *n = e->graph->nodes; n && r == CUDA_SUCCESS; n = n->next) {
        if (n->kind == FAKE_NODE_KERNEL) {
            ns += n->duration_ns;
            kernels++;
        } else if (n->kind == FAKE_NODE_MEM_ALLOC) {
            r = graph_alloc_start(n->alloc);
        } else if (n->alloc->live) {
            fake_alloc_release(n->alloc->live);
        }
    }
    if (r == CUDA_SUCCESS && kernels) {
        fake_op_t *op = fake_op_new(FAKE_OP_KERNEL);
        if (!op)
            return fake_leave(CUDA_ERROR_OUT_OF_MEMORY);
        op->duration_ns = ns;
        op->kernels = kernels;
        fake_stream_push(s, op);
    }
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuGraphLaunch(CUgraphExec hGraphExec, CUstream hStream)
{
    return graph_launch("cuGraphLaunch", hGraphExec, hStream);
}

FAKE_EXPORT CUresult cuGraphLaunch_ptsz(CUgraphExec hGraphExec, CUstream hStream)
{
    return graph_launch("cuGraphLaunch_ptsz", hGraphExec, hStream);
}

FAKE_EXPORT CUresult cuDeviceGraphMemTrim(CUdevice device)
{
    CUresult r = fake_enter("cuDeviceGraphMemTrim");
    if (r == CUDA_SUCCESS && !fake_device_valid(device))
        r = CUDA_ERROR_INVALID_DEVICE;
    if (r == CUDA_SUCCESS) {
        fake_device_t *d = &fake_state()->devices[device];
        unsigned long long keep = fake_round_up(d->graph_used, fake_state()->config.vmm_granularity);
        if (keep < d->graph_reserved) {
            fake_uncharge(device, d->graph_reserved - keep);
            d->graph_reserved = keep;
        }
    }
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuDeviceGetGraphMemAttribute(CUdevice device, CUgraphMem_attribute attr, void *value)
{
    CUresult r = fake_enter("cuDeviceGetGraphMemAttribute");
    if (r == CUDA_SUCCESS && !value)
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS && !fake_device_valid(device))
        r = CUDA_ERROR_INVALID_DEVICE;
    if (r != CUDA_SUCCESS)
        return fake_leave(r);
    fake_busy_count_graph_query();
    const fake_device_t *d = &fake_state()->devices[device];
    cuuint64_t *out = value;
    switch (attr) {
    case CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT: *out = d->graph_used; break;
    case CU_GRAPH_MEM_ATTR_USED_MEM_HIGH: *out = d->graph_used_high; break;
    case CU_GRAPH_MEM_ATTR_RESERVED_MEM_CURRENT: *out = d->graph_reserved; break;
    case CU_GRAPH_MEM_ATTR_RESERVED_MEM_HIGH: *out = d->graph_reserved_high; break;
    default: r = CUDA_ERROR_INVALID_VALUE; break;
    }
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuDeviceSetGraphMemAttribute(CUdevice device, CUgraphMem_attribute attr, void *value)
{
    CUresult r = fake_enter("cuDeviceSetGraphMemAttribute");
    if (r == CUDA_SUCCESS && (!value || *(const cuuint64_t *)value != 0))
        r = CUDA_ERROR_INVALID_VALUE; /* only high-water marks, only reset to 0 */
    if (r == CUDA_SUCCESS && !fake_device_valid(device))
        r = CUDA_ERROR_INVALID_DEVICE;
    if (r != CUDA_SUCCESS)
        return fake_leave(r);
    fake_device_t *d = &fake_state()->devices[device];
    if (attr == CU_GRAPH_MEM_ATTR_USED_MEM_HIGH)
        d->graph_used_high = d->graph_used;
    else if (attr == CU_GRAPH_MEM_ATTR_RESERVED_MEM_HIGH)
        d->graph_reserved_high = d->graph_reserved;
    else
        r = CUDA_ERROR_INVALID_VALUE;
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuGraphGetNodes(CUgraph hGraph, CUgraphNode *nodes, size_t *numNodes)
{
    CUresult r = fake_enter("cuGraphGetNodes");
    if (r == CUDA_SUCCESS && (!numNodes || !fake_list_has(&fake_state()->graphs, hGraph) || hGraph->destroyed))
        r = CUDA_ERROR_INVALID_VALUE;
    if (r != CUDA_SUCCESS)
        return fake_leave(r);
    /* As the driver: NULL nodes asks for the count; else up to *numNodes are written and
     * *numNodes becomes how many were (the rest of the array is zeroed). */
    size_t n = 0, cap = *numNodes;
    for (struct CUgraphNode_st *x = hGraph->nodes; x; x = x->next, n++)
        if (nodes && n < cap)
            nodes[n] = x;
    if (nodes) {
        for (size_t i = n; i < cap; i++)
            nodes[i] = NULL;
        *numNodes = n < cap ? n : cap;
    } else {
        *numNodes = n;
    }
    return fake_leave(CUDA_SUCCESS);
}

FAKE_EXPORT CUresult cuGraphNodeGetType(CUgraphNode hNode, CUgraphNodeType *type)
{
    CUresult r = fake_enter("cuGraphNodeGetType");
    if (r == CUDA_SUCCESS && !type)
        r = CUDA_ERROR_INVALID_VALUE;
    bool found = false;
    if (r == CUDA_SUCCESS)
        FAKE_FOREACH(struct CUgraph_st, g, &fake_state()->graphs)
        for (struct CUgraphNode_st *x = g->nodes; x && !found; x = x->next)
            found = x == hNode;
    if (r == CUDA_SUCCESS && !found)
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS)
        *type = hNode->kind == FAKE_NODE_KERNEL      ? CU_GRAPH_NODE_TYPE_KERNEL
                : hNode->kind == FAKE_NODE_MEM_ALLOC ? CU_GRAPH_NODE_TYPE_MEM_ALLOC
                                                     : CU_GRAPH_NODE_TYPE_MEM_FREE;
    return fake_leave(r);
}
