/*
 * swap.c: slice swap (SWAP.md). With GPUSHARE_SWAP=<directory>, every cuMemAlloc_v2 of at
 * least the VMM granularity is an address range reserved for it with physical memory
 * (cuMemCreate) mapped in, so the physical memory can go and come back under the same
 * addresses. The daemon asks through a Unix socket, <directory>/<pid>.sock, served by one
 * thread started at the first such allocation (swap_ctl.c):
 *
 *   swap-out: pin the staging (before anything stops; refused if host memory cannot hold it),
 *             hold the program (launches at the compute gate, copies, allocations and frees
 *             wait), drain every context, copy every allocation to the pinned staging on
 *             several threads, unmap and release the physical memory.
 *   swap-in:  create and map physical memory at the same addresses, copy back, let go.
 *
 * A failure before the release undoes what was done and leaves the program running as it
 * was; a swap-in that cannot get the GPU memory back leaves it swapped out (the daemon
 * retries). The staging stays pinned after a swap-in, to be reused (its cost in host memory:
 * the swapped bytes, until the daemon says "unstage").
 *
 * Why one list under one lock: swappable allocations are the large ones (a PyTorch caching
 * allocator segment is >= 2 MiB and allocates rarely), and a swap walks them all.
 */
#define _GNU_SOURCE /* MAP_ANONYMOUS, MAP_POPULATE */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "compute_hold.h"
#include "hooks.h"
#include "ipc.h"
#include "log.h"
#include "state.h"
#include "swap.h"
#include "swap_impl.h"

_Atomic int gs_swap_held;
_Atomic unsigned long gs_swap_outs;

/* Staging chunks: pinned host memory, allocations packed one after another across them. */
#define CHUNK ((size_t)64 << 20)
/* Copy threads: more than one keeps the copy engines busy across small allocations. */
#define COPY_THREADS 4

typedef struct swap_alloc {
    CUdeviceptr va;
    size_t size;  /* reserved and mapped: the request rounded up to the granularity */
    size_t bytes; /* what the program asked for: what is copied */
    CUdevice dev;
    CUcontext ctx;
    CUmemGenericAllocationHandle handle; /* 0 while swapped out */
    bool shareable; /* created with a POSIX fd handle type: IPC handles can be served (ipc.c) */
    size_t at;                           /* its bytes' offset in the staging (set at the swap-out) */
} swap_alloc;

static struct {
    /* One daemon request at a time (each control connection has its own thread): the staging
     * is pinned ahead with `lock` let go between chunks, so only this keeps two requests from
     * pinning or freeing it at once. Taken before `lock`. */
    pthread_mutex_t op;
    pthread_mutex_t lock; /* the list, the staging, `out`; held through a whole swap */
    pthread_cond_t back;  /* signalled when the hold ends */
    swap_alloc *a;
    size_t n, cap;
    bool out;
    void **chunk;
    size_t nchunk, capchunk;
    CUcontext stage_ctx; /* current while pinning or freeing the staging (the driver wants one) */
} S = {.op = PTHREAD_MUTEX_INITIALIZER, .lock = PTHREAD_MUTEX_INITIALIZER, .back = PTHREAD_COND_INITIALIZER};

/* The first device found without VMM (its allocations could not be made swappable), or -1. */
static _Atomic int no_vmm_dev = -1;

bool gs_swap_on(void)
{
    return gs_cfg.swap_dir[0] != '\0';
}

/* Threads of the program waiting for the hold to end (read by swap_ctl.c: a wants-in is said
 * when the slice is out and one waits, whichever comes last). */
static _Atomic int waiters;

int gs_swap_waiters(void)
{
    return atomic_load(&waiters);
}

void gs_swap_wait_slow(void)
{
    atomic_fetch_add(&waiters, 1);
    gs_swap_ctl_wants_in();
    pthread_mutex_lock(&S.lock);
    while (atomic_load(&gs_swap_held) != 0)
        pthread_cond_wait(&S.back, &S.lock);
    pthread_mutex_unlock(&S.lock);
    atomic_fetch_sub(&waiters, 1);
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* ---- allocation ------------------------------------------------------------------------ */

static CUmemAllocationProp prop_of(CUdevice dev)
{
    CUmemAllocationProp p;
    memset(&p, 0, sizeof p);
    p.type = CU_MEM_ALLOCATION_TYPE_PINNED;
    p.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    p.location.id = dev;
    return p;
}

/* Physical memory for `x` mapped at its address, readable and writable by its device. */
static CUresult back(swap_alloc *x)
{
    const gs_real_fns *R = gs_real();
    CUmemAllocationProp p = prop_of(x->dev);
    CUmemAccessDesc access = {.location = {.type = CU_MEM_LOCATION_TYPE_DEVICE, .id = x->dev},
                              .flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
    CUmemGenericAllocationHandle h = 0;
    /* shareable, so that cuIpcGetMemHandle can be served (ipc.c); a driver that refuses it
     * gets plain memory from then on */
    p.requestedHandleTypes = gs_ipc_handle_type(x->dev);
    CUresult r = R->cuMemCreate(&h, x->size, &p, 0);
    if (r != CUDA_SUCCESS && r != CUDA_ERROR_OUT_OF_MEMORY && p.requestedHandleTypes != CU_MEM_HANDLE_TYPE_NONE) {
        gs_ipc_not_shareable(x->dev, r);
        p.requestedHandleTypes = CU_MEM_HANDLE_TYPE_NONE;
        r = R->cuMemCreate(&h, x->size, &p, 0);
    }
    if (r != CUDA_SUCCESS)
        return r;
    x->shareable = p.requestedHandleTypes != CU_MEM_HANDLE_TYPE_NONE;
    r = R->cuMemMap(x->va, x->size, 0, h, 0);
    if (r == CUDA_SUCCESS) {
        r = R->cuMemSetAccess(x->va, x->size, &access, 1);
        if (r != CUDA_SUCCESS)
            (void)R->cuMemUnmap(x->va, x->size);
    }
    if (r != CUDA_SUCCESS) {
        (void)R->cuMemRelease(h);
        return r;
    }
    x->handle = h;
    return CUDA_SUCCESS;
}

/* Unmaps and releases `x`'s physical memory (its address range stays reserved). */
static CUresult unback(swap_alloc *x)
{
    const gs_real_fns *R = gs_real();
    CUresult r = R->cuMemUnmap(x->va, x->size);
    if (r == CUDA_SUCCESS) {
        r = R->cuMemRelease(x->handle);
        x->handle = 0;
    }
    return r;
}

/* Whether dev can hold swappable memory: the granularity, 0 when not (no VMM). */
static size_t granularity(CUdevice dev)
{
    const gs_real_fns *R = gs_real();
    int vmm = 0;
    size_t g = 0;
    CUmemAllocationProp p = prop_of(dev);
    if (R->cuDeviceGetAttribute(&vmm, CU_DEVICE_ATTRIBUTE_VIRTUAL_MEMORY_MANAGEMENT_SUPPORTED, dev) != CUDA_SUCCESS ||
        vmm == 0 || R->cuMemGetAllocationGranularity(&g, &p, CU_MEM_ALLOC_GRANULARITY_MINIMUM) != CUDA_SUCCESS)
        return 0;
    return g;
}

static bool list_add(const swap_alloc *x)
{
    size_t cap = S.n < S.cap ? S.cap : S.cap * 2 + 64;
    swap_alloc *a = cap == S.cap ? S.a : realloc(S.a, cap * sizeof *a);
    if (a != NULL) {
        S.a = a;
        S.cap = cap;
        S.a[S.n++] = *x;
    }
    return a != NULL;
}

/* Waits (under S.lock) while the slice is swapped out: an allocation or free then goes after
 * the swap-in. */
static void wait_in(void)
{
    if (!S.out && atomic_load(&gs_swap_held) == 0)
        return;
    atomic_fetch_add(&waiters, 1);
    gs_swap_ctl_wants_in();
    while (S.out || atomic_load(&gs_swap_held) != 0)
        pthread_cond_wait(&S.back, &S.lock);
    atomic_fetch_sub(&waiters, 1);
}

CUresult gs_swap_alloc(CUdeviceptr *dptr, size_t bytes)
{
    const gs_real_fns *R = gs_real();
    CUcontext ctx = NULL;
    CUdevice dev = -1;
    if (dptr == NULL || bytes == 0 || R->cuCtxGetCurrent(&ctx) != CUDA_SUCCESS || ctx == NULL ||
        R->cuCtxGetDevice(&dev) != CUDA_SUCCESS)
        return CUDA_ERROR_NOT_SUPPORTED;
    gs_swap_ctl_start();
    size_t g = granularity(dev);
    if (g == 0) {
        int none = -1;
        (void)atomic_compare_exchange_strong(&no_vmm_dev, &none, (int)dev);
    }
    if (g == 0 || bytes < g || bytes > SIZE_MAX - g)
        return CUDA_ERROR_NOT_SUPPORTED; /* stays resident: SWAP.md, "What is swapped" */
    size_t size = (bytes + g - 1) / g * g;
    double deadline = 0;
    for (;;) {
        swap_alloc x = {.size = size, .bytes = bytes, .dev = dev, .ctx = ctx};
        bool card_full = false;
        pthread_mutex_lock(&S.lock);
        wait_in();
        CUresult r = R->cuMemAddressReserve(&x.va, x.size, 0, 0, 0);
        if (r == CUDA_SUCCESS) {
            r = back(&x);
            card_full = r == CUDA_ERROR_OUT_OF_MEMORY; /* the driver's: our limit refused before we got here */
            if (r == CUDA_SUCCESS && !list_add(&x)) {
                (void)unback(&x);
                r = CUDA_ERROR_OUT_OF_MEMORY;
            }
            if (r != CUDA_SUCCESS)
                (void)R->cuMemAddressFree(x.va, x.size);
        }
        pthread_mutex_unlock(&S.lock);
        /* Under overcommit the card may be full of other slices the daemon can swap out: ask
         * it for room and wait, with no lock held (SWAP.md, "Waiting for room"). */
        if (card_full && gs_swap_room_wait(size, &deadline))
            continue;
        if (r == CUDA_SUCCESS)
            *dptr = x.va;
        return r;
    }
}

CUresult gs_swap_free(CUdeviceptr p, bool *done)
{
    *done = false;
    if (p == 0)
        return CUDA_SUCCESS;
    pthread_mutex_lock(&S.lock);
    wait_in();
    CUresult r = CUDA_SUCCESS;
    for (size_t i = 0; i < S.n; i++) {
        if (S.a[i].va != p)
            continue;
        *done = true;
        /* cuMemFree waits for the work that may use the memory; unmapping does not */
        r = gs_real()->cuCtxSynchronize();
        if (r == CUDA_SUCCESS)
            r = unback(&S.a[i]);
        if (r == CUDA_SUCCESS)
            r = gs_real()->cuMemAddressFree(S.a[i].va, S.a[i].size);
        if (r == CUDA_SUCCESS)
            S.a[i] = S.a[--S.n];
        break;
    }
    pthread_mutex_unlock(&S.lock);
    return r;
}

/* ---- IPC (ipc.c) ----------------------------------------------------------------------- */

bool gs_swap_find(CUdeviceptr ptr, CUdeviceptr *base, size_t *size, CUdevice *dev, bool *shareable)
{
    bool found = false;
    pthread_mutex_lock(&S.lock);
    for (size_t i = 0; i < S.n && !found; i++) {
        if (ptr >= S.a[i].va && ptr - S.a[i].va < S.a[i].size) {
            found = true;
            *base = S.a[i].va;
            *size = S.a[i].size;
            *dev = S.a[i].dev;
            *shareable = S.a[i].shareable;
        }
    }
    pthread_mutex_unlock(&S.lock);
    return found;
}

CUresult gs_swap_export(CUdeviceptr base, int *fd, size_t *size)
{
    const gs_real_fns *R = gs_real();
    CUresult r = CUDA_ERROR_INVALID_HANDLE; /* freed since the handle was made */
    pthread_mutex_lock(&S.lock);
    wait_in(); /* swapped out: the memory is on the host; the export waits for the swap-in */
    for (size_t i = 0; i < S.n; i++) {
        if (S.a[i].va != base)
            continue;
        r = S.a[i].shareable ? R->cuCtxSetCurrent(S.a[i].ctx) : CUDA_ERROR_NOT_SUPPORTED;
        if (r == CUDA_SUCCESS) {
            r = R->cuMemExportToShareableHandle(fd, S.a[i].handle, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0);
            (void)R->cuCtxSetCurrent(NULL);
        }
        if (r == CUDA_SUCCESS) {
            *size = S.a[i].size;
            atomic_fetch_add(&gs_ipc_live, 1); /* under S.lock: a swap-out sees it */
        }
        break;
    }
    pthread_mutex_unlock(&S.lock);
    return r;
}

/* ---- staging --------------------------------------------------------------------------- */

static size_t swappable_bytes(void)
{
    size_t sum = 0;
    for (size_t i = 0; i < S.n; i++)
        sum += S.a[i].bytes;
    return sum;
}

/* One staging chunk: the host pages made present first (MAP_POPULATE), then pinned with
 * cuMemHostRegister. Not cuMemHostAlloc: on an H100 (2026-12-07, scripts/gpu/pin_stall.py),
 * pinning 8.6 GB in 64 MiB cuMemHostAlloc chunks beside a training loop in the same process
 * slowed the loop to 1% of its speed (the driver serializes the program's calls behind each
 * allocation), 27% even with 5 ms between chunks; registering populated pages took as long
 * (3.8 s against 3.1) and left the loop 96% of its speed, its longest step 4 ms. */
static CUresult pin_chunk(void **chunk)
{
    void *p = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (p == MAP_FAILED)
        return CUDA_ERROR_OUT_OF_MEMORY;
    CUresult r = gs_real()->cuMemHostRegister_v2(p, CHUNK, CU_MEMHOSTREGISTER_PORTABLE);
    if (r != CUDA_SUCCESS) {
        (void)munmap(p, CHUNK);
        return r;
    }
    *chunk = p;
    return CUDA_SUCCESS;
}

static void unpin_chunk(void *chunk)
{
    CUresult r = gs_real()->cuMemHostUnregister(chunk);
    if (r != CUDA_SUCCESS)
        gs_log(GS_LOG_WARN, "swap: unpinning a staging chunk failed (CUDA error %d); its pages are unmapped anyway", (int)r);
    (void)munmap(chunk, CHUNK);
}

/* Pins chunks until the staging holds `want` bytes. Refused (nothing kept of this call's
 * chunks) when the host's available memory cannot hold them or pinning fails. `ahead`: a
 * `stage` request while the program runs: `lock` is let go around each chunk's pinning (about
 * 30 ms for 64 MiB), so the program's allocations and frees wait one chunk at most, not the
 * whole pinning (5.6 s for 12 GiB on an H100); `op`, held by the caller, keeps the staging
 * this request's meanwhile. */
static bool stage(size_t want, gs_swap_result *res, bool ahead)
{
    size_t need = (want + CHUNK - 1) / CHUNK, had = S.nchunk;
    if (need <= had)
        return true;
    uint64_t avail = gs_swap_host_available();
    uint64_t more = (uint64_t)(need - had) * CHUNK;
    if (avail != UINT64_MAX && more > avail) {
        gs_swap_refuse(res, "host-memory", "staging needs %llu more bytes of pinned host memory; the host has %llu available",
                       (unsigned long long)more, (unsigned long long)avail);
        return false;
    }
    if (need > S.capchunk) {
        void **c = realloc(S.chunk, need * sizeof *c);
        if (c == NULL) {
            gs_swap_refuse(res, "host-memory", "out of host memory for the staging's list");
            return false;
        }
        S.chunk = c;
        S.capchunk = need;
    }
    double t0 = now_s();
    if (S.n > 0)
        S.stage_ctx = S.a[0].ctx;
    (void)gs_real()->cuCtxSetCurrent(S.stage_ctx);
    while (S.nchunk < need) {
        if (ahead)
            pthread_mutex_unlock(&S.lock);
        CUresult r = pin_chunk(&S.chunk[S.nchunk]);
        if (ahead)
            pthread_mutex_lock(&S.lock);
        if (r != CUDA_SUCCESS) {
            while (S.nchunk > had)
                unpin_chunk(S.chunk[--S.nchunk]);
            (void)gs_real()->cuCtxSetCurrent(NULL);
            gs_swap_refuse(res, "host-memory", "pinning %llu bytes of staging failed (CUDA error %d)",
                           (unsigned long long)more, (int)r);
            return false;
        }
        S.nchunk++;
    }
    (void)gs_real()->cuCtxSetCurrent(NULL);
    res->pin_s += now_s() - t0;
    res->pinned_bytes = (uint64_t)S.nchunk * CHUNK;
    return true;
}

static void unstage(void)
{
    (void)gs_real()->cuCtxSetCurrent(S.stage_ctx);
    while (S.nchunk > 0)
        unpin_chunk(S.chunk[--S.nchunk]);
    (void)gs_real()->cuCtxSetCurrent(NULL);
}

/* ---- copies ---------------------------------------------------------------------------- */

/*
 * The copies run on COPY_THREADS threads, each on its own per-thread default stream, taking
 * pieces (part of one allocation inside one staging chunk) in the order they are published.
 *
 * Swap-out: every piece is published at once, the allocations largest first; the thread that
 * copies an allocation's last piece releases its physical memory there and then, so the card
 * gets memory back allocation by allocation, the largest first, while the rest still copies
 * (an overlapped hand-over's incoming slice finds room earliest: SWAP.md, "Hand-over").
 * Swap-in: an allocation's pieces are published as soon as its physical memory is mapped, so
 * allocation i+1 is backed (or waits for room) while allocation i copies.
 */
typedef struct piece {
    size_t alloc; /* index in S.a */
    CUdeviceptr dev;
    char *host;
    size_t len;
} piece;

typedef struct copy_job {
    piece *p;
    size_t cap;            /* pieces the array can hold: every allocation's */
    pthread_mutex_t mu;    /* n, taken, closed */
    pthread_cond_t more;
    size_t n;              /* published */
    size_t taken;
    bool closed;           /* nothing more will be published */
    _Atomic int error;     /* the first failed copy's (or release's) CUresult */
    bool to_host;
    _Atomic size_t *left;  /* to_host: per allocation, its pieces not yet copied */
} copy_job;

static void job_fail(copy_job *j, CUresult r)
{
    int none = 0;
    pthread_mutex_lock(&j->mu);
    (void)atomic_compare_exchange_strong(&j->error, &none, (int)r);
    pthread_cond_broadcast(&j->more);
    pthread_mutex_unlock(&j->mu);
}

static void *copier(void *arg)
{
    copy_job *j = arg;
    const gs_real_fns *R = gs_real();
    CUcontext cur = NULL;
    for (;;) {
        pthread_mutex_lock(&j->mu);
        while (j->taken >= j->n && !j->closed && atomic_load(&j->error) == 0)
            pthread_cond_wait(&j->more, &j->mu);
        bool stop = j->taken >= j->n || atomic_load(&j->error) != 0;
        size_t i = stop ? 0 : j->taken++;
        pthread_mutex_unlock(&j->mu);
        if (stop)
            break;
        piece *p = &j->p[i];
        swap_alloc *x = &S.a[p->alloc];
        CUresult r = CUDA_SUCCESS;
        if (x->ctx != cur && (r = R->cuCtxSetCurrent(x->ctx)) == CUDA_SUCCESS)
            cur = x->ctx;
        /* the per-thread default stream: copies of different threads run side by side */
        if (r == CUDA_SUCCESS)
            r = j->to_host ? R->cuMemcpyDtoH_v2_ptds(p->host, p->dev, p->len) : R->cuMemcpyHtoD_v2_ptds(p->dev, p->host, p->len);
        /* the allocation's last piece is on the host (the copy returns when it is): its
         * physical memory goes back to the card now, not after the whole slice */
        if (r == CUDA_SUCCESS && j->to_host && atomic_fetch_sub(&j->left[p->alloc], 1) == 1)
            r = unback(x);
        if (r != CUDA_SUCCESS)
            job_fail(j, r);
    }
    if (cur != NULL)
        (void)R->cuCtxSetCurrent(NULL);
    return NULL;
}

/* How many pieces allocation x's bytes make in the staging (from its offset `at`). */
static size_t pieces_of(const swap_alloc *x)
{
    size_t n = 0;
    for (size_t done = 0, at = x->at; done < x->bytes; n++) {
        size_t in_chunk = CHUNK - at % CHUNK, len = x->bytes - done;
        len = len < in_chunk ? len : in_chunk;
        done += len;
        at += len;
    }
    return n;
}

/* Publishes allocation i's pieces (its staging offset `at` set). */
static void job_add(copy_job *j, size_t i)
{
    const swap_alloc *x = &S.a[i];
    pthread_mutex_lock(&j->mu);
    for (size_t done = 0, at = x->at; done < x->bytes && j->n < j->cap;) {
        size_t in_chunk = CHUNK - at % CHUNK, len = x->bytes - done;
        len = len < in_chunk ? len : in_chunk;
        j->p[j->n++] = (piece){i, x->va + done, (char *)S.chunk[at / CHUNK] + at % CHUNK, len};
        done += len;
        at += len;
    }
    pthread_cond_broadcast(&j->more);
    pthread_mutex_unlock(&j->mu);
}

typedef struct copiers {
    copy_job j;
    pthread_t t[COPY_THREADS];
    int started;
} copiers;

/* The job (nothing published yet) and its threads; false: no memory for it. */
static bool copiers_start(copiers *c, bool to_host)
{
    memset(c, 0, sizeof *c);
    size_t cap = 0;
    for (size_t i = 0; i < S.n; i++)
        cap += S.a[i].bytes / CHUNK + 2;
    c->j.cap = cap;
    c->j.to_host = to_host;
    c->j.p = calloc(cap ? cap : 1, sizeof(piece));
    c->j.left = calloc(S.n ? S.n : 1, sizeof(_Atomic size_t));
    if (c->j.p == NULL || c->j.left == NULL) {
        free(c->j.p);
        free((void *)c->j.left);
        return false;
    }
    pthread_mutex_init(&c->j.mu, NULL);
    pthread_cond_init(&c->j.more, NULL);
    for (; c->started < COPY_THREADS; c->started++)
        if (pthread_create(&c->t[c->started], NULL, copier, &c->j) != 0)
            break;
    return true;
}

/* Nothing more to publish: waits for the copies; the first failure's CUresult. */
static CUresult copiers_end(copiers *c)
{
    pthread_mutex_lock(&c->j.mu);
    c->j.closed = true;
    pthread_cond_broadcast(&c->j.more);
    pthread_mutex_unlock(&c->j.mu);
    if (c->started == 0)
        copier(&c->j); /* no thread could start: this one copies */
    for (int k = 0; k < c->started; k++)
        pthread_join(c->t[k], NULL);
    pthread_mutex_destroy(&c->j.mu);
    pthread_cond_destroy(&c->j.more);
    free(c->j.p);
    free((void *)c->j.left);
    return (CUresult)atomic_load(&c->j.error);
}

/* Indices of S.a, the largest allocation first (a caller's array of S.n). */
static size_t *largest_first(void)
{
    size_t *o = malloc((S.n ? S.n : 1) * sizeof *o);
    if (o == NULL)
        return NULL;
    for (size_t i = 0; i < S.n; i++) {
        size_t k = i;
        for (; k > 0 && S.a[o[k - 1]].size < S.a[i].size; k--)
            o[k] = o[k - 1];
        o[k] = i;
    }
    return o;
}

/* Swap-out's copies: staging offsets in list order, pieces published largest allocation first,
 * each allocation released as soon as its bytes are on the host. */
static CUresult copy_out(void)
{
    size_t at = 0;
    for (size_t i = 0; i < S.n; i++) {
        S.a[i].at = at;
        at += S.a[i].bytes;
    }
    copiers c;
    size_t *o = largest_first();
    if (o == NULL || !copiers_start(&c, true)) {
        free(o);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    for (size_t i = 0; i < S.n; i++)
        c.j.left[i] = pieces_of(&S.a[i]); /* set before any is published */
    for (size_t k = 0; k < S.n; k++)
        job_add(&c.j, o[k]);
    free(o);
    return copiers_end(&c);
}

/* How long a swap-in waiting for room sleeps between tries. */
#define ROOM_POLL_NS 1000000L

/* The daemon gave up on a swap-in waiting for room ("in-stop": the outgoing slice's swap-out
 * failed); cleared when a swap-in ends. */
static _Atomic int in_stop;

void gs_swap_in_stop(void)
{
    atomic_store(&in_stop, 1);
}

/*
 * Swap-in's backing and copies: each allocation backed, then its pieces published to the copy
 * threads while the next is backed. An allocation the driver refuses for want of memory is
 * tried again every millisecond until `deadline` (CLOCK_MONOTONIC seconds; 0: no wait), the
 * others tried meanwhile largest first, skipping any at least as large as one refused in the
 * same round (first fit: a smaller one that fits starts copying while the larger waits for
 * the outgoing slice's releases). `stoppable`: an in-stop ends the wait. *wait_s: the time
 * spent waiting for room (the rounds that could back nothing).
 */
static CUresult back_and_copy_in(double deadline, bool stoppable, double *wait_s)
{
    copiers c;
    size_t *o = largest_first();
    bool *done = calloc(S.n ? S.n : 1, sizeof *done);
    if (o == NULL || done == NULL || !copiers_start(&c, false)) {
        free(o);
        free(done);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    CUresult r = CUDA_SUCCESS;
    for (size_t left = S.n; left > 0 && r == CUDA_SUCCESS;) {
        double round_t0 = now_s();
        bool moved = false;
        size_t bar = SIZE_MAX; /* refused at this size in this round: larger ones are not tried */
        for (size_t k = 0; k < S.n && r == CUDA_SUCCESS && atomic_load(&c.j.error) == 0; k++) {
            size_t i = o[k];
            if (done[i] || S.a[i].size >= bar)
                continue;
            r = back(&S.a[i]);
            if (r == CUDA_ERROR_OUT_OF_MEMORY) {
                bar = S.a[i].size;
                r = CUDA_SUCCESS;
                continue;
            }
            if (r == CUDA_SUCCESS) {
                done[i] = true;
                left--;
                moved = true;
                job_add(&c.j, i);
            }
        }
        if (r == CUDA_SUCCESS && atomic_load(&c.j.error) != 0)
            break;
        if (left == 0 || moved || r != CUDA_SUCCESS)
            continue;
        if (now_s() >= deadline || (stoppable && atomic_load(&in_stop) != 0)) {
            r = CUDA_ERROR_OUT_OF_MEMORY;
            break;
        }
        struct timespec nap = {0, ROOM_POLL_NS};
        nanosleep(&nap, NULL);
        *wait_s += now_s() - round_t0; /* a round that backed nothing: its tries and its nap */
    }
    CUresult copied = copiers_end(&c);
    free(o);
    free(done);
    return r != CUDA_SUCCESS ? r : copied;
}

/* The allocations released by a failed swap-out back from the staging (their copies were whole);
 * waits for room until `deadline`, as a swap-in does (an overlapped hand-over's incoming slice
 * may hold what they had). */
static CUresult restore_released(double deadline)
{
    size_t n = 0;
    for (size_t i = 0; i < S.n; i++)
        n += S.a[i].handle == 0;
    if (n == 0)
        return CUDA_SUCCESS;
    /* back_and_copy_in walks every allocation: those still mapped are set aside meanwhile */
    swap_alloc *all = S.a;
    size_t total = S.n;
    swap_alloc *gone = malloc(n * sizeof *gone);
    size_t *from = malloc(n * sizeof *from);
    if (gone == NULL || from == NULL) {
        free(gone);
        free(from);
        return CUDA_ERROR_OUT_OF_MEMORY;
    }
    for (size_t i = 0, k = 0; i < total; i++)
        if (all[i].handle == 0) {
            from[k] = i;
            gone[k++] = all[i];
        }
    S.a = gone;
    S.n = n;
    double wait = 0;
    CUresult r = back_and_copy_in(deadline, false, &wait);
    S.a = all;
    S.n = total;
    for (size_t k = 0; k < n; k++)
        all[from[k]].handle = gone[k].handle;
    free(gone);
    free(from);
    return r;
}

/* Every context of the slice drained. */
static CUresult drain(void)
{
    const gs_real_fns *R = gs_real();
    CUresult r = CUDA_SUCCESS;
    for (size_t i = 0; i < S.n && r == CUDA_SUCCESS; i++) {
        bool seen = false;
        for (size_t k = 0; k < i; k++)
            seen |= S.a[k].ctx == S.a[i].ctx;
        if (!seen && (r = R->cuCtxSetCurrent(S.a[i].ctx)) == CUDA_SUCCESS)
            r = R->cuCtxSynchronize();
    }
    (void)R->cuCtxSetCurrent(NULL);
    return r;
}

static void hold(void)
{
    atomic_store(&gs_swap_held, 1);
    atomic_fetch_add(&gs_swap_outs, 1);
    gs_compute_hold();
    /* a launch that passed the gate just before the hold reaches the driver within
     * microseconds; the drain below waits for it (SWAP.md, "Holding the program") */
    struct timespec grace = {0, 2000000};
    nanosleep(&grace, NULL);
}

static void let_go(void)
{
    gs_compute_open();
    atomic_store(&gs_swap_held, 0);
    pthread_cond_broadcast(&S.back);
}

/* ---- the operations ---------------------------------------------------------------------- */

/* What this process holds on its devices that a swap leaves (smaller allocations, pools, arrays,
 * graph memory; not contexts), from the region's count of it; 0 without a region. */
static uint64_t resident_bytes(void)
{
    static const gs_region_kind kinds[] = {GS_REGION_KIND_ALLOC, GS_REGION_KIND_VMM, GS_REGION_KIND_ARRAY,
                                           GS_REGION_KIND_POOL, GS_REGION_KIND_GRAPH};
    uint64_t held = 0, swappable = swappable_bytes();
    for (uint32_t dev = 0; gs_ready() && dev < GS_REGION_MAX_DEVICES; dev++) {
        gs_region_usage u;
        if (gs_region_usage_self(dev, &u) != 0)
            continue;
        for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
            held += u.bytes[kinds[k]];
    }
    return held > swappable ? held - swappable : 0;
}

/* The GPUs the allocations' device ordinals name now: after a restore onto other GPUs (a move,
 * SWAP.md) the same ordinals name the new ones, where a swap-in creates the memory. */
static void devices_of(char *out, size_t len)
{
    size_t at = 0;
    out[0] = '\0';
    for (size_t i = 0; i < S.n; i++) {
        bool seen = false;
        for (size_t k = 0; k < i; k++)
            seen |= S.a[k].dev == S.a[i].dev;
        CUuuid u;
        char uuid[64];
        if (seen || gs_real()->cuDeviceGetUuid_v2 == NULL || gs_real()->cuDeviceGetUuid_v2(&u, S.a[i].dev) != CUDA_SUCCESS)
            continue;
        gs_uuid_string(&u, uuid, sizeof uuid);
        int n = snprintf(out + at, len - at, "%s%s", at > 0 ? "," : "", uuid);
        if (n < 0 || (size_t)n >= len - at) {
            out[at] = '\0';
            return;
        }
        at += (size_t)n;
    }
}

static void finish(gs_swap_result *res, double t0, uint64_t bytes)
{
    devices_of(res->devices, sizeof res->devices);
    res->ok = true;
    res->resident_bytes = resident_bytes();
    res->bytes = bytes;
    res->allocations = (uint64_t)S.n;
    res->seconds = now_s() - t0;
}

/* How long a failed swap-out waits for room to put back what it had released. */
#define RESTORE_WAIT_S 60.0

void gs_swap_out(gs_swap_result *res)
{
    double t0 = now_s();
    pthread_mutex_lock(&S.op);
    pthread_mutex_lock(&S.lock);
    size_t bytes = swappable_bytes();
    int novmm = atomic_load(&no_vmm_dev);
    if (S.out) {
        gs_swap_refuse(res, "state", "the slice is already swapped out");
    } else if (novmm >= 0) {
        gs_swap_refuse(res, "no-vmm", "device %d has no virtual memory management: its memory cannot be swapped", novmm);
    } else if (atomic_load(&gs_ipc_live) > 0) {
        /* an importer's mapping keeps the physical memory: the swap would free nothing of it,
         * and the importer would go on with the old bytes after the swap-in (SWAP.md) */
        gs_swap_refuse(res, "exported", "%d mapping(s) of this process's memory are open in other processes (CUDA IPC); "
                                        "memory another process maps cannot be swapped out",
                       atomic_load(&gs_ipc_live));
    } else if (stage(bytes, res, false)) {
        hold();
        double t1 = now_s();
        CUresult r = drain();
        res->drain_s = now_s() - t1;
        if (r == CUDA_SUCCESS)
            r = copy_out(); /* each allocation released once copied */
        if (r != CUDA_SUCCESS) {
            /* what was released comes back from the staging (its copy was whole); the rest
             * never left */
            CUresult back_r = restore_released(now_s() + RESTORE_WAIT_S);
            let_go();
            gs_swap_refuse(res, "driver", "swap-out failed (CUDA error %d); %s", (int)r,
                           back_r == CUDA_SUCCESS ? "the program goes on as before" : "restoring it failed too");
        } else {
            S.out = true;
            finish(res, t0, bytes);
        }
    }
    pthread_mutex_unlock(&S.lock);
    pthread_mutex_unlock(&S.op);
}

void gs_swap_in(gs_swap_result *res, unsigned wait_ms)
{
    double t0 = now_s();
    pthread_mutex_lock(&S.op);
    pthread_mutex_lock(&S.lock);
    if (!S.out) {
        gs_swap_refuse(res, "state", "the slice is not swapped out");
        atomic_store(&in_stop, 0);
        pthread_mutex_unlock(&S.lock);
        pthread_mutex_unlock(&S.op);
        return;
    }
    CUresult r = back_and_copy_in(wait_ms > 0 ? t0 + wait_ms / 1000.0 : 0, true, &res->wait_s);
    if (r != CUDA_SUCCESS) {
        for (size_t i = 0; i < S.n; i++)
            if (S.a[i].handle != 0)
                (void)unback(&S.a[i]);
        if (r == CUDA_ERROR_OUT_OF_MEMORY && wait_ms > 0)
            gs_swap_refuse(res, "gpu-memory", "swap-in found no room on the GPU within %u ms%s; the slice stays swapped out", wait_ms,
                           atomic_load(&in_stop) ? " (the daemon stopped the wait)" : "");
        else
            gs_swap_refuse(res, r == CUDA_ERROR_OUT_OF_MEMORY ? "gpu-memory" : "driver",
                           "swap-in failed (CUDA error %d); the slice stays swapped out", (int)r);
    } else {
        S.out = false;
        finish(res, t0, swappable_bytes());
        let_go();
    }
    atomic_store(&in_stop, 0);
    pthread_mutex_unlock(&S.lock);
    pthread_mutex_unlock(&S.op);
}

void gs_swap_stage(gs_swap_result *res, bool pin)
{
    double t0 = now_s();
    pthread_mutex_lock(&S.op);
    pthread_mutex_lock(&S.lock);
    if (!pin) {
        if (S.out)
            gs_swap_refuse(res, "state", "the staging holds the swapped-out slice");
        else
            unstage();
    }
    if ((!pin && res->code[0] == '\0') || (pin && stage(swappable_bytes(), res, true)))
        finish(res, t0, swappable_bytes());
    res->pinned_bytes = (uint64_t)S.nchunk * CHUNK;
    pthread_mutex_unlock(&S.lock);
    pthread_mutex_unlock(&S.op);
}

void gs_swap_status(gs_swap_result *res)
{
    pthread_mutex_lock(&S.lock);
    finish(res, now_s(), swappable_bytes());
    res->out = S.out;
    res->pinned_bytes = (uint64_t)S.nchunk * CHUNK;
    pthread_mutex_unlock(&S.lock);
}

bool gs_swap_is_out(void)
{
    pthread_mutex_lock(&S.lock);
    bool out = S.out;
    pthread_mutex_unlock(&S.lock);
    return out;
}
