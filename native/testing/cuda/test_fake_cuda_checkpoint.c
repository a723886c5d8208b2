/*
 * test_fake_cuda_checkpoint.c: one process checkpoints another (fake_cuda_checkpoint.h).
 * A child holds device memory with a known pattern and keeps calling CUDA; the parent,
 * which never calls cuInit (as a daemon need not), drives it through the whole state
 * machine: wrong-order calls fail and change nothing, lock stops the child's CUDA calls,
 * checkpoint leaves it no device memory, a restore onto a GPU of another chip or without
 * room fails, restore onto another GPU of the same chip works, and after unlock the child
 * finds its bytes intact on the new GPU.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fake_cuda_checkpoint.h"
#include "fake_cuda_test.h"

#define UUID_A "GPU-a0000000-0000-4000-8000-000000000001"
#define UUID_B "GPU-b0000000-0000-4000-8000-000000000002"
#define UUID_C "GPU-c0000000-0000-4000-8000-000000000003" /* another chip */
#define UUID_D "GPU-d0000000-0000-4000-8000-000000000004" /* same chip, full */
#define BYTES (8 * MIB)

typedef struct shared {
    volatile int ready, stop, data_ok, done;
    volatile unsigned long long calls;
    volatile unsigned long long free_after;
    CUuuid uuid_after;
} shared_t;

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    (void)nanosleep(&ts, NULL);
}

static void to_uuid(const char *s, CUuuid *u)
{
    s += 4;
    memset(u->bytes, 0, 16);
    for (int i = 0; i < 16 && *s;) {
        unsigned int b;
        if (*s == '-') {
            s++;
            continue;
        }
        if (sscanf(s, "%2x", &b) != 1)
            break;
        u->bytes[i++] = (char)b;
        s += 2;
    }
}

static int child(shared_t *sh)
{
    CUcontext ctx;
    CUdeviceptr buf, scratch;
    if (cuInit(0) != CUDA_SUCCESS || cuCtxCreate_v2(&ctx, 0, 0) != CUDA_SUCCESS || cuMemAlloc_v2(&buf, BYTES) != CUDA_SUCCESS ||
        cuMemAlloc_v2(&scratch, 4096) != CUDA_SUCCESS)
        return 1;
    unsigned char *pattern = malloc(BYTES), *back = malloc(BYTES);
    if (!pattern || !back)
        return 1;
    for (size_t i = 0; i < BYTES; i++)
        pattern[i] = (unsigned char)(i * 31 + 7);
    if (cuMemcpyHtoD_v2(buf, pattern, BYTES) != CUDA_SUCCESS)
        return 1;
    sh->ready = 1;
    while (!sh->stop) {
        if (cuMemsetD8_v2(scratch, (unsigned char)sh->calls, 4096) != CUDA_SUCCESS)
            return 1;
        sh->calls++;
        sleep_ms(1);
    }
    sh->data_ok = cuMemcpyDtoH_v2(back, buf, BYTES) == CUDA_SUCCESS && memcmp(back, pattern, BYTES) == 0;
    size_t f = 0, t = 0;
    (void)cuMemGetInfo_v2(&f, &t);
    sh->free_after = f;
    (void)cuDeviceGetUuid(&sh->uuid_after, 0);
    (void)cuMemFree_v2(scratch);
    (void)cuMemFree_v2(buf);
    (void)cuCtxDestroy_v2(ctx);
    free(pattern);
    free(back);
    sh->done = 1;
    return 0;
}

static const fake_cuda_ckpt_file_t *open_file(const char *dir, int pid)
{
    char path[600];
    (void)snprintf(path, sizeof path, "%s/%d.ckpt", dir, pid);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return NULL;
    void *p = mmap(NULL, sizeof(fake_cuda_ckpt_file_t), PROT_READ, MAP_SHARED, fd, 0);
    (void)close(fd);
    return p == MAP_FAILED ? NULL : p;
}

static void wait_until(volatile int *flag)
{
    for (int i = 0; i < 5000 && !*flag; i++)
        sleep_ms(2);
}

int main(void)
{
    const char *work = getenv("FAKE_CUDA_TEST_WORK");
    char dir[512];
    (void)snprintf(dir, sizeof dir, "%s/ckpt-%d", work ? work : "/tmp", (int)getpid());
    CHECK(mkdir(dir, 0700) == 0);
    (void)setenv(FAKE_CUDA_CKPT_ENV, dir, 1);
    fct_configure("{\"contextBytes\": 1048576, \"devices\": ["
                  "{\"name\": \"NVIDIA H200\", \"uuid\": \"" UUID_A "\", \"totalMemory\": 1073741824},"
                  "{\"name\": \"NVIDIA H200\", \"uuid\": \"" UUID_B "\", \"totalMemory\": 1073741824},"
                  "{\"name\": \"NVIDIA A100-SXM4-40GB\", \"uuid\": \"" UUID_C "\", \"totalMemory\": 1073741824},"
                  "{\"name\": \"NVIDIA H200\", \"uuid\": \"" UUID_D "\", \"totalMemory\": 1073741824, \"reservedMemory\": 1069547520}]}",
                  UUID_A);
    shared_t *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(sh != MAP_FAILED);
    memset(sh, 0, sizeof *sh);

    /* Without the variable nobody else can be driven; a pid nobody has is NOT_FOUND with it. */
    CUprocessState s;
    CHECK_RC(cuCheckpointProcessGetState(0, &s), CUDA_ERROR_INVALID_VALUE);
    CHECK_RC(cuCheckpointProcessLock(999999999, NULL), CUDA_ERROR_NOT_FOUND);

    pid_t pid = fork();
    if (pid == 0)
        _exit(child(sh));
    wait_until(&sh->ready);
    CHECK(sh->ready);
    const fake_cuda_ckpt_file_t *f = open_file(dir, pid);
    CHECK(f != NULL);
    if (!f) {
        kill(pid, SIGKILL);
        return fct_finish("fake_cuda_checkpoint");
    }
    unsigned long long held = BYTES + 4096 + MIB; /* buffer, scratch (rounded to 512), context */
    CHECK_EQ(f->devices[0].used, held); /* kept current as the child allocates */

    CHECK_OK(cuCheckpointProcessGetState(pid, &s));
    CHECK_EQ(s, CU_PROCESS_STATE_RUNNING);
    int tid = 0;
    CHECK_OK(cuCheckpointProcessGetRestoreThreadId(pid, &tid));
    CHECK(tid > 0 && tid != pid);
    /* Wrong order: refused, nothing changes, the child goes on. */
    CHECK_RC(cuCheckpointProcessCheckpoint(pid, NULL), CUDA_ERROR_ILLEGAL_STATE);
    CHECK_RC(cuCheckpointProcessRestore(pid, NULL), CUDA_ERROR_ILLEGAL_STATE);
    CHECK_RC(cuCheckpointProcessUnlock(pid, NULL), CUDA_ERROR_ILLEGAL_STATE);
    CHECK_OK(cuCheckpointProcessGetState(pid, &s));
    CHECK_EQ(s, CU_PROCESS_STATE_RUNNING);

    CUcheckpointLockArgs la;
    memset(&la, 0, sizeof la);
    la.timeoutMs = 5000;
    CHECK_OK(cuCheckpointProcessLock(pid, &la));
    CHECK_OK(cuCheckpointProcessGetState(pid, &s));
    CHECK_EQ(s, CU_PROCESS_STATE_LOCKED);
    CHECK_EQ(f->devices[0].used, held);
    CHECK_RC(cuCheckpointProcessLock(pid, NULL), CUDA_ERROR_ILLEGAL_STATE);
    sleep_ms(50); /* a call that returned just before the lock may still be counted */
    unsigned long long calls = sh->calls;
    sleep_ms(300);
    CHECK_EQ(sh->calls, calls); /* blocked in its next CUDA call */

    CHECK_OK(cuCheckpointProcessCheckpoint(pid, NULL));
    CHECK_OK(cuCheckpointProcessGetState(pid, &s));
    CHECK_EQ(s, CU_PROCESS_STATE_CHECKPOINTED);
    CHECK_EQ(f->devices[0].used, 0);
    CHECK_EQ(f->devices[0].on_host, held);
    CHECK_RC(cuCheckpointProcessCheckpoint(pid, NULL), CUDA_ERROR_ILLEGAL_STATE);
    CHECK_RC(cuCheckpointProcessUnlock(pid, NULL), CUDA_ERROR_ILLEGAL_STATE);

    /* Remapping: every GPU named, same chip, room on the new one; else nothing changes. */
    CUcheckpointGpuPair pair;
    CUcheckpointRestoreArgs ra;
    memset(&ra, 0, sizeof ra);
    ra.gpuPairs = &pair;
    ra.gpuPairsCount = 1;
    to_uuid(UUID_A, &pair.oldUuid);
    to_uuid(UUID_C, &pair.newUuid);
    CHECK_RC(cuCheckpointProcessRestore(pid, &ra), CUDA_ERROR_INVALID_VALUE);
    to_uuid(UUID_B, &pair.oldUuid);
    to_uuid(UUID_A, &pair.newUuid);
    CHECK_RC(cuCheckpointProcessRestore(pid, &ra), CUDA_ERROR_INVALID_VALUE);
    to_uuid(UUID_A, &pair.oldUuid);
    to_uuid(UUID_D, &pair.newUuid);
    CHECK_RC(cuCheckpointProcessRestore(pid, &ra), CUDA_ERROR_OUT_OF_MEMORY);
    CHECK_OK(cuCheckpointProcessGetState(pid, &s));
    CHECK_EQ(s, CU_PROCESS_STATE_CHECKPOINTED);
    CHECK_EQ(f->devices[0].used, 0);
    CHECK(strcmp(f->devices[0].uuid, UUID_A) == 0);

    to_uuid(UUID_B, &pair.newUuid);
    CHECK_OK(cuCheckpointProcessRestore(pid, &ra));
    CHECK_OK(cuCheckpointProcessGetState(pid, &s));
    CHECK_EQ(s, CU_PROCESS_STATE_LOCKED);
    CHECK_EQ(f->devices[0].used, held);
    CHECK_EQ(f->devices[0].on_host, 0);
    CHECK(strcmp(f->devices[0].uuid, UUID_B) == 0);
    CHECK_EQ(sh->calls, calls); /* still locked */

    CHECK_OK(cuCheckpointProcessUnlock(pid, NULL));
    CHECK_OK(cuCheckpointProcessGetState(pid, &s));
    CHECK_EQ(s, CU_PROCESS_STATE_RUNNING);
    for (int i = 0; i < 2500 && sh->calls == calls; i++)
        sleep_ms(2);
    CHECK(sh->calls > calls);
    sh->stop = 1;
    int status = -1;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK(sh->done);
    CHECK(sh->data_ok);
    CHECK_EQ(sh->free_after, GIB - held);
    CUuuid b;
    to_uuid(UUID_B, &b);
    CHECK(memcmp(sh->uuid_after.bytes, b.bytes, 16) == 0);
    /* Gone: its file went with it. */
    CHECK_RC(cuCheckpointProcessGetState(pid, &s), CUDA_ERROR_NOT_FOUND);
    (void)munmap((void *)f, sizeof *f);
    (void)munmap(sh, sizeof *sh);
    (void)rmdir(dir);
    return fct_finish("fake_cuda_checkpoint");
}
