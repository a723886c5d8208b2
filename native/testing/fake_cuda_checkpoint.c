/*
 * fake_cuda_checkpoint.c: the checkpoint API's state machine
 * RUNNING -lock-> LOCKED -checkpoint-> CHECKPOINTED -restore-> LOCKED -unlock-> RUNNING,
 * with CUDA_ERROR_ILLEGAL_STATE for any other order. Only the calling process itself can
 * be driven (the fake has no view of other processes: another pid gets
 * CUDA_ERROR_NOT_SUPPORTED). Checkpointing moves the process's device memory to the host
 * (cuMemGetInfo shows it free); restoring takes it back, or fails with
 * CUDA_ERROR_OUT_OF_MEMORY when the device no longer has room. API calls are not blocked
 * while locked.
 */
#include <unistd.h>

#include "fake_cuda_state.h"

static CUresult gate(const char *fn, int pid)
{
    CUresult r = fake_enter(fn);
    if (r == CUDA_SUCCESS && pid != (int)getpid())
        r = pid <= 0 ? CUDA_ERROR_INVALID_VALUE : CUDA_ERROR_NOT_SUPPORTED;
    return r;
}

static CUresult step(const char *fn, int pid, CUprocessState from, CUprocessState to)
{
    CUresult r = gate(fn, pid);
    if (r == CUDA_SUCCESS && fake_state()->checkpoint_state != from)
        r = CUDA_ERROR_ILLEGAL_STATE;
    if (r == CUDA_SUCCESS)
        fake_state()->checkpoint_state = to;
    return r;
}

FAKE_EXPORT CUresult cuCheckpointProcessGetState(int pid, CUprocessState *state)
{
    CUresult r = gate("cuCheckpointProcessGetState", pid);
    if (r == CUDA_SUCCESS && !state)
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS)
        *state = fake_state()->checkpoint_state;
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuCheckpointProcessGetRestoreThreadId(int pid, int *tid)
{
    CUresult r = gate("cuCheckpointProcessGetRestoreThreadId", pid);
    if (r == CUDA_SUCCESS && !tid)
        r = CUDA_ERROR_INVALID_VALUE;
    if (r == CUDA_SUCCESS)
        *tid = pid; /* the fake has no restore thread of its own: report the main thread */
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuCheckpointProcessLock(int pid, CUcheckpointLockArgs *args)
{
    (void)args;
    return fake_leave(step("cuCheckpointProcessLock", pid, CU_PROCESS_STATE_RUNNING, CU_PROCESS_STATE_LOCKED));
}

FAKE_EXPORT CUresult cuCheckpointProcessCheckpoint(int pid, CUcheckpointCheckpointArgs *args)
{
    (void)args;
    CUresult r = step("cuCheckpointProcessCheckpoint", pid, CU_PROCESS_STATE_LOCKED, CU_PROCESS_STATE_CHECKPOINTED);
    fake_cuda_state_t *st = fake_state();
    for (unsigned int i = 0; r == CUDA_SUCCESS && i < st->device_count; i++) {
        st->checkpointed[i] = st->devices[i].used;
        st->devices[i].used = 0;
    }
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuCheckpointProcessRestore(int pid, CUcheckpointRestoreArgs *args)
{
    (void)args; /* GPU remapping is accepted and ignored */
    fake_cuda_state_t *st = fake_state();
    CUresult r = gate("cuCheckpointProcessRestore", pid);
    if (r == CUDA_SUCCESS && st->checkpoint_state != CU_PROCESS_STATE_CHECKPOINTED)
        r = CUDA_ERROR_ILLEGAL_STATE;
    for (unsigned int i = 0; r == CUDA_SUCCESS && i < st->device_count; i++)
        if (st->checkpointed[i] > fake_free_bytes((int)i))
            r = CUDA_ERROR_OUT_OF_MEMORY;
    for (unsigned int i = 0; r == CUDA_SUCCESS && i < st->device_count; i++) {
        st->devices[i].used += st->checkpointed[i];
        st->checkpointed[i] = 0;
    }
    if (r == CUDA_SUCCESS)
        st->checkpoint_state = CU_PROCESS_STATE_LOCKED;
    return fake_leave(r);
}

FAKE_EXPORT CUresult cuCheckpointProcessUnlock(int pid, CUcheckpointUnlockArgs *args)
{
    (void)args;
    return fake_leave(step("cuCheckpointProcessUnlock", pid, CU_PROCESS_STATE_LOCKED, CU_PROCESS_STATE_RUNNING));
}
