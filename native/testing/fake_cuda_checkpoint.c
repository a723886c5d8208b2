/*
 * fake_cuda_checkpoint.c: the checkpoint API's state machine
 * RUNNING -lock-> LOCKED -checkpoint-> CHECKPOINTED -restore-> LOCKED -unlock-> RUNNING,
 * with CUDA_ERROR_ILLEGAL_STATE for any other order.
 *
 * Two ways in. The calling process's own pid is driven in place (API calls are not
 * blocked while locked; tests of libgpushare use it). Another process's pid is driven
 * through its checkpoint file and agent thread (fake_cuda_checkpoint.h), which is how the
 * daemon suspends a task: there lock really blocks the target's CUDA calls, checkpoint
 * really moves the bytes off the "device", restore really brings them back (optionally
 * onto another device of the same name).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fake_cuda_checkpoint.h"
#include "fake_cuda_state.h"

/* ---- the calling process itself -------------------------------------------------------- */
static CUresult self_step(CUprocessState from, CUprocessState to)
{
    if (fake_state()->checkpoint_state != from)
        return CUDA_ERROR_ILLEGAL_STATE;
    fake_state()->checkpoint_state = to;
    return CUDA_SUCCESS;
}

static CUresult self_checkpoint(void)
{
    fake_cuda_state_t *st = fake_state();
    CUresult r = self_step(CU_PROCESS_STATE_LOCKED, CU_PROCESS_STATE_CHECKPOINTED);
    for (unsigned int i = 0; r == CUDA_SUCCESS && i < st->device_count; i++) {
        st->checkpointed[i] = st->devices[i].used;
        st->devices[i].used = 0;
    }
    return r;
}

static CUresult self_restore(void)
{
    fake_cuda_state_t *st = fake_state();
    if (st->checkpoint_state != CU_PROCESS_STATE_CHECKPOINTED)
        return CUDA_ERROR_ILLEGAL_STATE;
    for (unsigned int i = 0; i < st->device_count; i++)
        if (st->checkpointed[i] > fake_free_bytes((int)i))
            return CUDA_ERROR_OUT_OF_MEMORY;
    for (unsigned int i = 0; i < st->device_count; i++) {
        st->devices[i].used += st->checkpointed[i];
        st->checkpointed[i] = 0;
    }
    st->checkpoint_state = CU_PROCESS_STATE_LOCKED;
    return CUDA_SUCCESS;
}

/* ---- shared helpers ---------------------------------------------------------------------- */
static long futex(uint32_t *addr, int op, uint32_t val, const struct timespec *timeout)
{
    return syscall(SYS_futex, addr, op, val, timeout, NULL, 0);
}

static const char *ckpt_dir(void)
{
    const char *d = getenv(FAKE_CUDA_CKPT_ENV);
    return d && d[0] ? d : NULL;
}

/* ---- the agent: runs inside the target process ------------------------------------------ */
typedef struct saved_bytes {
    fake_alloc_t *alloc;
    void *copy;
} saved_bytes_t;

static fake_cuda_ckpt_file_t *agent_file;
static char agent_path[400];
static bool agent_holds_lock;   /* the agent thread owns the fake mutex (LOCKED/CHECKPOINTED) */
static saved_bytes_t *saved;
static size_t saved_count;

static void publish(void)
{
    fake_cuda_state_t *st = fake_state();
    agent_file->device_count = st->device_count < FAKE_CUDA_CKPT_DEVICES ? st->device_count : FAKE_CUDA_CKPT_DEVICES;
    for (unsigned int i = 0; i < agent_file->device_count; i++) {
        fake_cuda_ckpt_device_t *d = &agent_file->devices[i];
        (void)snprintf(d->uuid, sizeof d->uuid, "%s", st->devices[i].cfg.uuid);
        __atomic_store_n(&d->used, (uint64_t)st->devices[i].used, __ATOMIC_RELAXED);
        __atomic_store_n(&d->on_host, (uint64_t)st->checkpointed[i], __ATOMIC_RELAXED);
    }
    __atomic_store_n(&agent_file->state, (uint32_t)st->checkpoint_state, __ATOMIC_RELEASE);
}

void fake_checkpoint_note_used(int device)
{
    if (agent_file && device >= 0 && device < FAKE_CUDA_CKPT_DEVICES)
        __atomic_store_n(&agent_file->devices[device].used, (uint64_t)fake_state()->devices[device].used, __ATOMIC_RELAXED);
}

static bool streams_busy(void)
{
    FAKE_FOREACH(fake_stream_t, s, &fake_state()->streams)
    if (s->pending > 0)
        return true;
    return false;
}

static CUresult agent_lock(unsigned int timeout_ms)
{
    fake_cuda_state_t *st = fake_state();
    if (agent_holds_lock)
        return CUDA_ERROR_ILLEGAL_STATE; /* LOCKED or CHECKPOINTED already: the mutex is ours */
    fake_lock();
    if (st->checkpoint_state != CU_PROCESS_STATE_RUNNING) {
        fake_unlock();
        return CUDA_ERROR_ILLEGAL_STATE;
    }
    /* As the real lock: work already submitted finishes first; nothing new starts after. */
    struct timespec deadline;
    (void)clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    while (streams_busy()) {
        int rc = timeout_ms == 0 ? pthread_cond_wait(&st->changed, &st->lock)
                                 : pthread_cond_timedwait(&st->changed, &st->lock, &deadline);
        if (rc == ETIMEDOUT && streams_busy()) {
            fake_unlock();
            return CUDA_ERROR_TIMEOUT;
        }
    }
    st->checkpoint_state = CU_PROCESS_STATE_LOCKED;
    agent_holds_lock = true;
    publish();
    return CUDA_SUCCESS;
}

static CUresult agent_checkpoint(void)
{
    fake_cuda_state_t *st = fake_state();
    if (!agent_holds_lock || st->checkpoint_state != CU_PROCESS_STATE_LOCKED)
        return CUDA_ERROR_ILLEGAL_STATE;
    size_t n = 0;
    FAKE_FOREACH(fake_alloc_t, a, &st->allocs)
    if (a->kind != FAKE_ALLOC_HOST && a->size > 0)
        n++;
    saved_bytes_t *list = n ? calloc(n, sizeof *list) : NULL;
    if (n && !list)
        return CUDA_ERROR_OUT_OF_MEMORY;
    size_t k = 0;
    FAKE_FOREACH(fake_alloc_t, a, &st->allocs)
    if (a->kind != FAKE_ALLOC_HOST && a->size > 0) {
        void *copy = malloc(a->size);
        if (!copy) {
            for (size_t j = 0; j < k; j++)
                free(list[j].copy);
            free(list);
            return CUDA_ERROR_OUT_OF_MEMORY;
        }
        memcpy(copy, (void *)a->base, a->size);
        list[k].alloc = a;
        list[k].copy = copy;
        k++;
    }
    /* Only now that every copy exists: the "device" pages go (they read as zero). */
    for (size_t j = 0; j < k; j++)
        (void)madvise((void *)list[j].alloc->base, list[j].alloc->mapped, MADV_DONTNEED);
    saved = list;
    saved_count = k;
    for (unsigned int i = 0; i < st->device_count; i++) {
        st->checkpointed[i] = st->devices[i].used;
        st->devices[i].used = 0;
    }
    st->checkpoint_state = CU_PROCESS_STATE_CHECKPOINTED;
    publish();
    return CUDA_SUCCESS;
}

static int config_device_by_uuid(const unsigned char uuid[16])
{
    const fake_cuda_config_t *c = &fake_state()->config;
    for (unsigned int k = 0; k < c->device_count; k++) {
        unsigned char b[16];
        fake_uuid_bytes(c->devices[k].uuid, b);
        if (memcmp(b, uuid, 16) == 0)
            return (int)k;
    }
    return -1;
}

static CUresult agent_restore(void)
{
    fake_cuda_state_t *st = fake_state();
    if (!agent_holds_lock || st->checkpoint_state != CU_PROCESS_STATE_CHECKPOINTED)
        return CUDA_ERROR_ILLEGAL_STATE;
    int target[FAKE_CUDA_MAX_DEVICES];
    for (unsigned int i = 0; i < st->device_count; i++)
        target[i] = (int)st->devices[i].physical;
    unsigned int pairs = agent_file->pair_count;
    if (pairs > FAKE_CUDA_CKPT_PAIRS)
        return CUDA_ERROR_INVALID_VALUE;
    if (pairs > 0) {
        /* As documented for the real call: the pairs name every checkpointed GPU, and each new
         * GPU is of the same chip type. */
        for (unsigned int i = 0; i < st->device_count; i++) {
            unsigned char mine[16];
            fake_uuid_bytes(st->devices[i].cfg.uuid, mine);
            int found = -1;
            for (unsigned int p = 0; p < pairs; p++)
                if (memcmp(agent_file->pairs[p][0], mine, 16) == 0)
                    found = config_device_by_uuid(agent_file->pairs[p][1]);
            if (found < 0 || strcmp(st->config.devices[found].name, st->devices[i].cfg.name) != 0)
                return CUDA_ERROR_INVALID_VALUE;
            target[i] = found;
        }
        for (unsigned int i = 0; i < st->device_count; i++)
            for (unsigned int j = i + 1; j < st->device_count; j++)
                if (target[i] == target[j])
                    return CUDA_ERROR_INVALID_VALUE;
    }
    for (unsigned int i = 0; i < st->device_count; i++) {
        const fake_cuda_device_config_t *cfg = &st->config.devices[target[i]];
        if (st->checkpointed[i] + cfg->reserved_bytes > cfg->total_bytes)
            return CUDA_ERROR_OUT_OF_MEMORY;
    }
    for (unsigned int i = 0; i < st->device_count; i++) {
        fake_device_t *d = &st->devices[i];
        if ((int)d->physical != target[i]) {
            d->cfg = st->config.devices[target[i]];
            d->physical = (unsigned int)target[i];
        }
        d->used += st->checkpointed[i];
        st->checkpointed[i] = 0;
    }
    for (size_t j = 0; j < saved_count; j++) {
        memcpy((void *)saved[j].alloc->base, saved[j].copy, saved[j].alloc->size);
        free(saved[j].copy);
    }
    free(saved);
    saved = NULL;
    saved_count = 0;
    st->checkpoint_state = CU_PROCESS_STATE_LOCKED;
    publish();
    return CUDA_SUCCESS;
}

static CUresult agent_unlock(void)
{
    fake_cuda_state_t *st = fake_state();
    if (!agent_holds_lock || st->checkpoint_state != CU_PROCESS_STATE_LOCKED)
        return CUDA_ERROR_ILLEGAL_STATE;
    st->checkpoint_state = CU_PROCESS_STATE_RUNNING;
    publish();
    agent_holds_lock = false;
    fake_unlock();
    return CUDA_SUCCESS;
}

/* The target's configured "errors" apply to the steps its agent takes, so a test can make
 * the driver fail a checkpoint or restore the way the real one would, inside the target. */
static CUresult forced(uint32_t op)
{
    static const char *const names[] = {NULL, "cuCheckpointProcessLock", "cuCheckpointProcessCheckpoint",
                                        "cuCheckpointProcessRestore", "cuCheckpointProcessUnlock"};
    const fake_cuda_config_t *c = &fake_state()->config;
    if (op < FAKE_CKPT_LOCK || op > FAKE_CKPT_UNLOCK)
        return CUDA_SUCCESS;
    for (unsigned int i = 0; i < c->error_count; i++)
        if (strcmp(c->errors[i].fn, names[op]) == 0)
            return (CUresult)c->errors[i].code;
    return CUDA_SUCCESS;
}

static void *agent_main(void *arg)
{
    (void)arg;
    __atomic_store_n(&agent_file->agent_tid, (int32_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
    uint32_t seen = __atomic_load_n(&agent_file->request_seq, __ATOMIC_ACQUIRE);
    for (;;) {
        uint32_t seq = __atomic_load_n(&agent_file->request_seq, __ATOMIC_ACQUIRE);
        if (seq == seen) {
            (void)futex(&agent_file->request_seq, FUTEX_WAIT, seen, NULL);
            continue;
        }
        seen = seq;
        /* Read the request before working on it: a controller that died mid-request leaves it
         * to the next one, which may write its own request while this one is still running. */
        uint32_t op = agent_file->op;
        unsigned int lock_timeout_ms = agent_file->lock_timeout_ms;
        /* A slow step (configured) stands in for a real checkpoint moving tens of GiB: it lets
         * a test stop the controller (the daemon) halfway through a suspension. */
        uint64_t slow_ms = op >= FAKE_CKPT_LOCK && op <= FAKE_CKPT_UNLOCK ? fake_state()->config.checkpoint_step_ms[op - FAKE_CKPT_LOCK] : 0;
        if (slow_ms > 0) {
            struct timespec ts = {(time_t)(slow_ms / 1000), (long)(slow_ms % 1000) * 1000000L};
            while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
            }
        }
        CUresult r = forced(op);
        if (r == CUDA_SUCCESS)
            switch (op) {
            case FAKE_CKPT_LOCK: r = agent_lock(lock_timeout_ms); break;
            case FAKE_CKPT_CHECKPOINT: r = agent_checkpoint(); break;
            case FAKE_CKPT_RESTORE: r = agent_restore(); break;
            case FAKE_CKPT_UNLOCK: r = agent_unlock(); break;
            default: r = CUDA_ERROR_INVALID_VALUE; break;
            }
        agent_file->result = (int32_t)r;
        __atomic_store_n(&agent_file->done_seq, seq, __ATOMIC_RELEASE);
        (void)futex(&agent_file->done_seq, FUTEX_WAKE, 1, NULL);
    }
    return NULL;
}

__attribute__((destructor)) static void agent_remove_file(void)
{
    if (agent_file && agent_file->pid == (int32_t)getpid())
        (void)unlink(agent_path);
}

/* Called by cuInit under the lock: publishes this process for controllers, when asked to. */
void fake_checkpoint_agent_start(void)
{
    const char *dir = ckpt_dir();
    if (!dir || agent_file)
        return;
    (void)snprintf(agent_path, sizeof agent_path, "%s/%d.ckpt", dir, (int)getpid());
    int fd = open(agent_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, sizeof *agent_file) != 0) {
        (void)fprintf(stderr, "fake libcuda: cannot create %s; this process cannot be checkpointed by others\n", agent_path);
        if (fd >= 0)
            (void)close(fd);
        return;
    }
    void *p = mmap(NULL, sizeof *agent_file, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    (void)close(fd);
    if (p == MAP_FAILED)
        return;
    agent_file = p;
    agent_file->pid = (int32_t)getpid();
    agent_file->version = FAKE_CUDA_CKPT_VERSION;
    publish();
    pthread_t t;
    pthread_attr_t attr;
    (void)pthread_attr_init(&attr);
    (void)pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, agent_main, NULL) != 0) {
        (void)fprintf(stderr, "fake libcuda: cannot start the checkpoint agent thread\n");
        (void)unlink(agent_path);
    } else {
        /* The magic last: a controller that sees it sees a complete header. */
        __atomic_store_n(&agent_file->magic, FAKE_CUDA_CKPT_MAGIC, __ATOMIC_RELEASE);
    }
    (void)pthread_attr_destroy(&attr);
}

/* ---- the controller: another process's pid ----------------------------------------------- */
typedef struct remote {
    int fd;
    fake_cuda_ckpt_file_t *file;
} remote_t;

static CUresult remote_open(int pid, remote_t *out)
{
    const char *dir = ckpt_dir();
    if (!dir)
        return CUDA_ERROR_NOT_SUPPORTED;
    if (kill(pid, 0) != 0 && errno == ESRCH)
        return CUDA_ERROR_NOT_FOUND;
    char path[400];
    (void)snprintf(path, sizeof path, "%s/%d.ckpt", dir, pid);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return CUDA_ERROR_NOT_FOUND;
    struct stat sb;
    void *p = fstat(fd, &sb) == 0 && (size_t)sb.st_size >= sizeof(fake_cuda_ckpt_file_t)
                  ? mmap(NULL, sizeof(fake_cuda_ckpt_file_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
                  : MAP_FAILED;
    if (p == MAP_FAILED) {
        (void)close(fd);
        return CUDA_ERROR_NOT_FOUND;
    }
    fake_cuda_ckpt_file_t *f = p;
    if (__atomic_load_n(&f->magic, __ATOMIC_ACQUIRE) != FAKE_CUDA_CKPT_MAGIC || f->version != FAKE_CUDA_CKPT_VERSION ||
        f->pid != pid) {
        (void)munmap(p, sizeof *f);
        (void)close(fd);
        return CUDA_ERROR_NOT_FOUND;
    }
    out->fd = fd;
    out->file = f;
    return CUDA_SUCCESS;
}

static void remote_close(remote_t *r)
{
    (void)munmap(r->file, sizeof *r->file);
    (void)close(r->fd);
}

static uint64_t now_ms(void)
{
    return fake_now_ns() / 1000000ULL;
}

/* Sends one request and waits for the agent's answer, at most wait_ms (0: forever). */
static CUresult remote_request(int pid, uint32_t op, unsigned int lock_timeout_ms, const CUcheckpointRestoreArgs *restore,
                               unsigned int wait_ms)
{
    if (pid <= 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (restore && restore->gpuPairsCount > FAKE_CUDA_CKPT_PAIRS)
        return CUDA_ERROR_INVALID_VALUE;
    if (restore && restore->gpuPairsCount > 0 && !restore->gpuPairs)
        return CUDA_ERROR_INVALID_VALUE;
    remote_t rm;
    CUresult r = remote_open(pid, &rm);
    if (r != CUDA_SUCCESS)
        return r;
    (void)flock(rm.fd, LOCK_EX);
    fake_cuda_ckpt_file_t *f = rm.file;
    f->op = op;
    f->lock_timeout_ms = lock_timeout_ms;
    f->pair_count = restore ? restore->gpuPairsCount : 0;
    for (unsigned int i = 0; i < f->pair_count; i++) {
        memcpy(f->pairs[i][0], restore->gpuPairs[i].oldUuid.bytes, 16);
        memcpy(f->pairs[i][1], restore->gpuPairs[i].newUuid.bytes, 16);
    }
    uint32_t seq = __atomic_load_n(&f->request_seq, __ATOMIC_ACQUIRE) + 1;
    __atomic_store_n(&f->request_seq, seq, __ATOMIC_RELEASE);
    (void)futex(&f->request_seq, FUTEX_WAKE, 1, NULL);
    uint64_t deadline = wait_ms ? now_ms() + wait_ms : 0;
    r = CUDA_SUCCESS;
    for (;;) {
        uint32_t done = __atomic_load_n(&f->done_seq, __ATOMIC_ACQUIRE);
        if (done == seq) {
            r = (CUresult)f->result;
            break;
        }
        if (kill(pid, 0) != 0 && errno == ESRCH) {
            r = CUDA_ERROR_NOT_FOUND;
            break;
        }
        if (deadline && now_ms() >= deadline) {
            r = CUDA_ERROR_TIMEOUT;
            break;
        }
        struct timespec step = {0, 20 * 1000000L};
        (void)futex(&f->done_seq, FUTEX_WAIT, done, &step);
    }
    (void)flock(rm.fd, LOCK_UN);
    remote_close(&rm);
    return r;
}

/* How long a controller waits for the agent besides lock's own timeout: a stopped target
 * never answers. */
#define REMOTE_WAIT_MS 30000u

/* Another process's state and restore thread as its agent published them (either out may be
 * NULL): no request, so it answers even while the agent is busy with one. */
static CUresult remote_peek(int pid, CUprocessState *state, int *tid)
{
    remote_t rm;
    CUresult r = remote_open(pid, &rm);
    if (r != CUDA_SUCCESS)
        return r;
    if (state)
        *state = (CUprocessState)__atomic_load_n(&rm.file->state, __ATOMIC_ACQUIRE);
    if (tid)
        *tid = (int)__atomic_load_n(&rm.file->agent_tid, __ATOMIC_ACQUIRE);
    remote_close(&rm);
    return CUDA_SUCCESS;
}

/* ---- entry points -------------------------------------------------------------------------- */
static bool is_self(int pid)
{
    return pid == (int)getpid();
}

FAKE_EXPORT CUresult cuCheckpointProcessGetState(int pid, CUprocessState *state)
{
    if (!state || pid <= 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (!is_self(pid))
        return remote_peek(pid, state, NULL);
    CUresult r = fake_enter("cuCheckpointProcessGetState");
    if (r == CUDA_SUCCESS)
        *state = fake_state()->checkpoint_state;
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuCheckpointProcessGetRestoreThreadId(int pid, int *tid)
{
    if (!tid || pid <= 0)
        return CUDA_ERROR_INVALID_VALUE;
    if (!is_self(pid))
        return remote_peek(pid, NULL, tid);
    CUresult r = fake_enter("cuCheckpointProcessGetRestoreThreadId");
    if (r == CUDA_SUCCESS)
        *tid = pid; /* in place, the fake has no restore thread of its own: the main thread */
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuCheckpointProcessLock(int pid, CUcheckpointLockArgs *args)
{
    if (!is_self(pid)) {
        unsigned int timeout = args ? args->timeoutMs : 0;
        return remote_request(pid, FAKE_CKPT_LOCK, timeout, NULL, timeout ? timeout + REMOTE_WAIT_MS : 0);
    }
    CUresult r = fake_enter("cuCheckpointProcessLock");
    if (r == CUDA_SUCCESS)
        r = self_step(CU_PROCESS_STATE_RUNNING, CU_PROCESS_STATE_LOCKED);
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuCheckpointProcessCheckpoint(int pid, CUcheckpointCheckpointArgs *args)
{
    (void)args;
    if (!is_self(pid))
        return remote_request(pid, FAKE_CKPT_CHECKPOINT, 0, NULL, REMOTE_WAIT_MS);
    CUresult r = fake_enter("cuCheckpointProcessCheckpoint");
    if (r == CUDA_SUCCESS)
        r = self_checkpoint();
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuCheckpointProcessRestore(int pid, CUcheckpointRestoreArgs *args)
{
    if (!is_self(pid))
        return remote_request(pid, FAKE_CKPT_RESTORE, 0, args, REMOTE_WAIT_MS);
    CUresult r = fake_enter("cuCheckpointProcessRestore");
    if (r == CUDA_SUCCESS)
        r = self_restore(); /* in place, GPU remapping is accepted and ignored */
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuCheckpointProcessUnlock(int pid, CUcheckpointUnlockArgs *args)
{
    (void)args;
    if (!is_self(pid))
        return remote_request(pid, FAKE_CKPT_UNLOCK, 0, NULL, REMOTE_WAIT_MS);
    CUresult r = fake_enter("cuCheckpointProcessUnlock");
    if (r == CUDA_SUCCESS)
        r = self_step(CU_PROCESS_STATE_LOCKED, CU_PROCESS_STATE_RUNNING);
    return fake_leave(r);
}
