/*
 * fake_cuda_state.h: the fake CUDA driver's object model and its one piece of mutable
 * state (fake_cuda_state_t), shared by the fake_cuda_*.c modules.
 *
 * Locking: one mutex guards everything (this is a test double: simple beats fast).
 * Entry points run `fake_enter()`, which takes it and applies the common gates, and
 * `fake_leave()` to release it. Stream workers take the same mutex only around queue and
 * accounting updates; they sleep (the "kernel") without it. `fake.changed` is broadcast
 * whenever queued work completes, for synchronize calls and cross-stream event waits.
 *
 * Handles are pointers to these structs. Every live object sits on a list of its kind, so
 * a stale or foreign handle is recognized (the fake answers CUDA_ERROR_INVALID_HANDLE or
 * CUDA_ERROR_INVALID_CONTEXT) instead of being dereferenced.
 */
#ifndef GS_FAKE_CUDA_STATE_H
#define GS_FAKE_CUDA_STATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fake_cuda_config.h"
#include "gs_cuda.h"

/* Marks a CUDA entry point: built with -fvisibility=hidden, only these are exported (and
 * fake_cuda.map keeps anything but cu* out). */
#define FAKE_EXPORT __attribute__((visibility("default")))

/* ---- intrusive lists: every object starts with a link ------------------------------- */
typedef struct fake_link {
    struct fake_link *prev, *next;
} fake_link_t;

typedef struct fake_list {
    fake_link_t *head;
    size_t count;
} fake_list_t;

void fake_list_add(fake_list_t *l, void *obj);
void fake_list_remove(fake_list_t *l, void *obj);
bool fake_list_has(const fake_list_t *l, const void *obj);
#define FAKE_FOREACH(type, var, list) \
    for (type *var = (type *)(list)->head, *var##_next = var ? (type *)((fake_link_t *)var)->next : NULL; var; \
         var = var##_next, var##_next = var ? (type *)((fake_link_t *)var)->next : NULL)

/* ---- objects ------------------------------------------------------------------------ */
typedef struct CUstream_st fake_stream_t;

struct CUctx_st {
    fake_link_t link;
    int device;                 /* visible ordinal */
    bool primary;               /* the device's primary context */
    bool active;                /* primary: retained at least once since the last reset */
    unsigned int primary_refs;
    unsigned int flags;
    unsigned int sm_count;      /* SMs its kernels may use: the device's, or a green context's */
    unsigned int sm_first;      /* the first of them (SM indexes as the driver's split orders them) */
    struct CUgreenCtx_st *green; /* set when this is a green context's CUcontext view */
    fake_stream_t *default_stream;
};

typedef enum fake_op_kind {
    FAKE_OP_KERNEL,
    FAKE_OP_EVENT_RECORD,
    FAKE_OP_WAIT_EVENT,
    FAKE_OP_FREE
} fake_op_kind_t;

typedef struct fake_op {
    struct fake_op *next;
    fake_op_kind_t kind;
    uint64_t enqueued_ns;       /* the work cannot start before it was submitted */
    uint64_t duration_ns;       /* FAKE_OP_KERNEL */
    unsigned int kernels;       /* FAKE_OP_KERNEL: launches this op stands for (graphs: >1) */
    struct CUevent_st *event;   /* EVENT_RECORD / WAIT_EVENT */
    uint64_t event_seq;
    struct fake_alloc *alloc;   /* FAKE_OP_FREE */
} fake_op_t;

struct CUstream_st {
    fake_link_t link;
    struct CUctx_st *ctx;
    unsigned int flags;
    int priority;
    bool is_default;
    bool closing;               /* destroyed by the program: the worker drains, then exits */
    pthread_t worker;
    pthread_cond_t work;        /* signalled when an op is queued or closing is set */
    fake_op_t *head, *tail;
    unsigned int pending;       /* queued + running ops */
    uint64_t timeline_ns;       /* when the last op finished on the fake GPU's clock */
};

struct CUevent_st {
    fake_link_t link;
    unsigned int flags;
    uint64_t recorded;          /* sequence of the last record */
    uint64_t completed;         /* sequence of the last record the stream reached */
    uint64_t time_ns;           /* completion time of `completed` */
};

typedef enum fake_alloc_kind {
    FAKE_ALLOC_PLAIN,
    FAKE_ALLOC_PITCH,
    FAKE_ALLOC_MANAGED,
    FAKE_ALLOC_POOL,
    FAKE_ALLOC_GRAPH,
    FAKE_ALLOC_HOST
} fake_alloc_kind_t;

/* One pointer handed out by an allocation call. */
typedef struct fake_alloc {
    fake_link_t link;
    fake_alloc_kind_t kind;
    uintptr_t base;
    size_t size;                /* bytes the program may touch */
    size_t mapped;              /* bytes of host address space behind base */
    unsigned long long charged; /* device bytes it costs (0 for host, pool and graph kinds) */
    int device;
    struct CUctx_st *ctx;       /* freed with its context (NULL: pool/graph/host) */
    struct CUmemPoolHandle_st *pool;
    struct fake_graph_alloc *graph_alloc;
    bool free_queued;           /* cuMemFreeAsync accepted; the stream frees it */
    bool prefer_host;           /* managed: cuMemAdvise(SET_PREFERRED_LOCATION, host) */
} fake_alloc_t;

struct CUmemPoolHandle_st {
    fake_link_t link;
    int device;
    bool is_default;
    bool destroyed;             /* released once its last allocation is freed */
    unsigned long long reserved, reserved_high;
    unsigned long long used, used_high;
    unsigned long long release_threshold;
    int reuse[3];               /* the three REUSE_* attributes, stored and returned */
};

typedef struct fake_vmm_handle {
    fake_link_t link;
    int device;
    size_t size;
    int fd;                     /* memfd backing, so several mappings share the bytes */
    unsigned int maps;
    bool released;
    bool shareable;             /* created asking for CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR */
    bool imported;              /* cuMemImportFromShareableHandle: the exporter's memory, not charged here */
} fake_vmm_handle_t;

typedef struct fake_va {
    fake_link_t link;
    uintptr_t base;
    size_t size;
} fake_va_t;

typedef struct fake_mapping {
    fake_link_t link;
    uintptr_t base;
    size_t size;
    fake_vmm_handle_t *handle;
} fake_mapping_t;

struct CUarray_st {
    fake_link_t link;
    int device;
    struct CUctx_st *ctx;
    unsigned long long charged;
};

struct CUmipmappedArray_st {
    fake_link_t link;
    int device;
    struct CUctx_st *ctx;
    unsigned long long charged;
};

struct CUfunc_st {
    struct CUfunc_st *next;     /* owned by its module */
    char name[64];
    bool duration_from_param;   /* "sleep": the first kernel parameter is the duration */
    uint64_t duration_us;
    int max_dynamic_shared;     /* cuFuncSetAttribute (fake_cuda_function.c); 0: the default */
    int carveout;
    bool carveout_set;
    int cluster_dim[3];         /* REQUIRED_CLUSTER_WIDTH/HEIGHT/DEPTH set; 0: none */
    int non_portable_cluster;   /* NON_PORTABLE_CLUSTER_SIZE_ALLOWED */
    int cluster_policy;         /* CLUSTER_SCHEDULING_POLICY_PREFERENCE */
};

struct CUmod_st {
    fake_link_t link;
    struct CUfunc_st *functions;
    bool library;               /* made by cuLibraryLoadData (fake_cuda_library.c) */
    bool no_binary;             /* an image starting "nobinary": no code for this GPU */
};

/* The module's function of that name, made on first ask (fake_cuda_launch.c); lock held. */
CUresult fake_module_function(struct CUmod_st *m, const char *name, struct CUfunc_st **out);
/* A module or library gone, with its functions (fake_cuda_launch.c); lock held. */
void fake_module_free(struct CUmod_st *m);

/* A graph memory allocation node's allocation; lives beyond the graph, like the real one. */
typedef struct fake_graph_alloc {
    fake_link_t link;
    int device;
    size_t size;
    fake_alloc_t *live;         /* the pointer while allocated, else NULL */
    uintptr_t base;             /* fixed at node creation */
    size_t mapped;
} fake_graph_alloc_t;

typedef enum fake_node_kind {
    FAKE_NODE_KERNEL,
    FAKE_NODE_MEM_ALLOC,
    FAKE_NODE_MEM_FREE
} fake_node_kind_t;

struct CUgraphNode_st {
    struct CUgraphNode_st *next; /* owned by its graph, in insertion order */
    fake_node_kind_t kind;
    uint64_t duration_ns;        /* kernel */
    fake_graph_alloc_t *alloc;   /* mem alloc / mem free */
    uintptr_t free_ptr;          /* mem free of a pointer not from this graph */
};

struct CUgraph_st {
    fake_link_t link;
    struct CUgraphNode_st *nodes, *last;
    unsigned int execs;         /* live executable graphs made from it */
    bool destroyed;             /* cuGraphDestroy ran; freed with its last exec */
};

struct CUgraphExec_st {
    fake_link_t link;
    struct CUgraph_st *graph;   /* runs the graph's nodes (the fake copies nothing) */
};

struct CUgreenCtx_st {
    fake_link_t link;
    struct CUctx_st ctx;        /* what cuCtxFromGreenCtx returns */
};

struct CUdevResourceDesc_st {
    fake_link_t link;
    unsigned int sm_count;
    unsigned int sm_first;      /* lowest SM index of its resources (fake_cuda_green.c) */
};

/* Per visible device. */
typedef struct fake_device {
    fake_cuda_device_config_t cfg;
    unsigned int physical;      /* index in the configuration, before CUDA_VISIBLE_DEVICES */
    unsigned long long used;    /* every byte charged: contexts, allocations, pools, ... */
    struct CUctx_st primary;    /* the primary context, stable address */
    struct CUmemPoolHandle_st *default_pool, *current_pool;
    unsigned long long graph_used, graph_used_high, graph_reserved, graph_reserved_high;
    uint64_t busy_until_ns;     /* union of kernel intervals, for busy time */
    uint64_t busy_ns;
    uint64_t kernels;
} fake_device_t;

typedef struct fake_cuda_state {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    bool initialized;
    fake_cuda_config_t config;
    unsigned int device_count;
    fake_device_t devices[FAKE_CUDA_MAX_DEVICES];
    CUprocessState checkpoint_state;
    unsigned long long checkpointed[FAKE_CUDA_MAX_DEVICES];
    fake_list_t contexts, streams, events, allocs, pools, vmm_handles, vas, mappings, arrays, mipmaps,
        modules, graphs, execs, greens, descs, graph_allocs;
    fake_list_t dying_streams; /* destroyed by the program, still draining */
    uint64_t event_seq;
} fake_cuda_state_t;

/* The state; only under the lock (fake_enter / fake_lock). Never NULL. */
fake_cuda_state_t *fake_state(void);
void fake_lock(void);
void fake_unlock(void);

/* Entry point prologue: takes the lock; then CUDA_ERROR_NOT_INITIALIZED before cuInit,
 * else a code forced for `fn` by the configuration's "errors", else CUDA_SUCCESS. On a
 * non-success result the lock is still held: always pair with fake_leave. */
CUresult fake_enter(const char *fn);
/* Releases the lock and returns r, so entry points end with `return fake_leave(r);`. */
CUresult fake_leave(CUresult r);

/* The calling thread's current context (NULL when none); under the lock. */
struct CUctx_st *fake_current_ctx(void);
/* Current context or CUDA_ERROR_INVALID_CONTEXT. */
CUresult fake_need_ctx(struct CUctx_st **out);
bool fake_ctx_valid(const struct CUctx_st *ctx);
/* Valid visible ordinal? */
bool fake_device_valid(CUdevice dev);
/* "GPU-8c1f0a2b-..." (the "GPU-" optional) -> the 16 bytes cuDeviceGetUuid reports: one parser,
 * so the checkpoint's restore pairs match the UUIDs the program was shown. */
void fake_uuid_bytes(const char *text, unsigned char out[16]);

/* Device memory: take `bytes` from a device's free memory, or CUDA_ERROR_OUT_OF_MEMORY. */
CUresult fake_charge(int device, unsigned long long bytes);
void fake_uncharge(int device, unsigned long long bytes);
unsigned long long fake_free_bytes(int device);
unsigned long long fake_round_up(unsigned long long v, unsigned long long to);

/* Host address space for device pointers: read/write, MAP_NORESERVE (an 80 GiB fake
 * device costs RAM only for the pages a test touches). 0 on failure. */
uintptr_t fake_map_space(size_t size, size_t *mapped);
/* The same below 2 GiB, for the 32-bit pointers of the pre-3.2 ABI. */
uintptr_t fake_map_space_low(size_t size, size_t *mapped);
void fake_unmap_space(uintptr_t base, size_t mapped);

/* Registers a new allocation record. */
fake_alloc_t *fake_alloc_add(fake_alloc_kind_t kind, uintptr_t base, size_t size, size_t mapped,
                             unsigned long long charged, int device, struct CUctx_st *ctx);
fake_alloc_t *fake_alloc_find(uintptr_t base);
/* Gives back what the record holds (device bytes, pool use, address space) and drops it. */
void fake_alloc_release(fake_alloc_t *a);
/* Is [ptr, ptr+len) inside one allocation or VMM mapping? */
bool fake_range_valid(uintptr_t ptr, size_t len);

/* Streams: resolves a stream argument (NULL/legacy/per-thread -> the current context's
 * default stream, created on first use). */
CUresult fake_stream_resolve(CUstream h, fake_stream_t **out);
/* Queues an op (takes ownership); under the lock. */
void fake_stream_push(fake_stream_t *s, fake_op_t *op);
fake_op_t *fake_op_new(fake_op_kind_t kind);
/* Waits for all work queued on s; under the lock (the wait releases it). */
void fake_stream_wait_idle(fake_stream_t *s);
/* Destroys every stream of ctx after draining it; under the lock. */
void fake_streams_close_ctx(struct CUctx_st *ctx);
/* Pools: release memory above the release threshold (a synchronization point). */
void fake_pools_on_sync(int device);
/* Pools: an allocation of `bytes` from pool was freed. */
void fake_pool_give_back(struct CUmemPoolHandle_st *pool, unsigned long long bytes);
/* Pools: a device's default pool, made by cuInit. */
struct CUmemPoolHandle_st *fake_pool_new(int device, bool is_default);
/* Tears down everything a context owns (streams, allocations, arrays). */
void fake_ctx_teardown(struct CUctx_st *ctx);
/* Creates a stream and its worker; under the lock. NULL when out of memory/threads. */
fake_stream_t *fake_stream_new(struct CUctx_st *ctx, unsigned int flags, int priority, bool is_default);
/* Synchronizes every stream of ctx, then runs the pools' release (cuCtxSynchronize). */
void fake_ctx_sync(struct CUctx_st *ctx);
/* A kernel's run time on ctx: per wave, waves = ceil(blocks / the context's SMs). */
uint64_t fake_kernel_ns(const struct CUfunc_st *f, const struct CUctx_st *ctx, unsigned long long blocks,
                        void **params, void **extra);
bool fake_function_valid(const struct CUfunc_st *f);

/* GPUSHARE_FAKE_CUDA_LAUNCH_LOG: one line per accepted launch, with its context's SMs. */
void fake_launch_log(const char *fn, const struct CUfunc_st *f, const struct CUctx_st *ctx, unsigned long long blocks);

/* Busy-time accounting for a finished kernel interval [start, end) on a device. */
void fake_busy_record(int device, uint64_t start_ns, uint64_t end_ns, unsigned int kernels);
void fake_busy_open(void);
/* Shared memory mode (fake_cuda_sharedmem.c): the card files, from cuInit; what the other live
 * processes hold on a device (0 when not shared); this process's count published. */
void fake_shared_memory_open(void);
unsigned long long fake_shared_memory_others(int device);
void fake_shared_memory_note(int device, unsigned long long used);
/* Shared GPU mode: the start of [start, start + duration) claimed on the device for a
 * kernel that could start at earliest_ns (earliest_ns itself when the device is not shared). */
uint64_t fake_shared_gpu_claim(int device, uint64_t earliest_ns, uint64_t duration_ns);
/* Counts a cuDeviceGetGraphMemAttribute call in the busy file. */
void fake_busy_count_graph_query(void);
/* Checkpoint by other processes (fake_cuda_checkpoint.h): file and agent thread, from cuInit. */
void fake_checkpoint_agent_start(void);
/* Keeps the checkpoint file's `used` of a device current (no-op without one); under the lock. */
void fake_checkpoint_note_used(int device);

uint64_t fake_now_ns(void);

#endif /* GS_FAKE_CUDA_STATE_H */
