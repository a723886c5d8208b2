/**
 * The CUDA driver's checkpoint API (CUDA 12.8+, driver 570+), bound with koffi on libcuda:
 * the calls NVIDIA's cuda-checkpoint tool makes, on another process's pid. The daemon uses them
 * to suspend a task (lock, then checkpoint: its GPU memory goes to host memory) and resume it
 * (restore, optionally onto other GPUs of the same chip, then unlock).
 *
 * Errors are values: every call answers `{ ok: true, ... }` or `{ ok: false, error }` with a
 * stable `code`, the CUresult and the call's name. Lock, checkpoint, restore and unlock can take
 * seconds (they wait for the task's GPU work and move its memory), so they run on koffi's worker
 * threads and return promises; the daemon's event loop is never blocked by them.
 *
 * libcuda is found as the rest of src/gpu finds its driver library: an explicit path
 * (GPUSHARE_CUDA_PATH, like GPUSHARE_NVML_PATH) or else the loader's `libcuda.so.1`.
 */
import koffi from 'koffi';

export const CHECKPOINT_ERROR_CODES = {
  /** No libcuda, or a driver without the checkpoint API. */
  unavailable: 'GS_ERR_CHECKPOINT_UNAVAILABLE',
  /** The process is not in a state that allows the call (lock a locked one). */
  illegalState: 'GS_ERR_CHECKPOINT_STATE',
  /** No CUDA process with that pid (gone, or never used CUDA). */
  notFound: 'GS_ERR_CHECKPOINT_NOT_FOUND',
  /** Restore found no room on the GPU for the checkpointed memory. */
  outOfMemory: 'GS_ERR_CHECKPOINT_OUT_OF_MEMORY',
  /** Lock did not get the process within its timeout, or it did not answer. */
  timeout: 'GS_ERR_CHECKPOINT_TIMEOUT',
  /** Bad arguments (a GPU pair the driver refuses). */
  invalidValue: 'GS_ERR_CHECKPOINT_INVALID',
  /** Anything else the driver answered (its CUresult is in the error). */
  failed: 'GS_ERR_CHECKPOINT_FAILED',
} as const;
export type CheckpointErrorCode = (typeof CHECKPOINT_ERROR_CODES)[keyof typeof CHECKPOINT_ERROR_CODES];

export interface CheckpointError {
  readonly code: CheckpointErrorCode;
  readonly message: string;
  /** The driver's CUresult; null when the call could not be made at all. */
  readonly cudaResult: number | null;
  readonly call: string;
}

export type CheckpointResult<T = undefined> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: CheckpointError };

export const PROCESS_STATES = ['running', 'locked', 'checkpointed', 'failed'] as const;
export type ProcessCheckpointState = (typeof PROCESS_STATES)[number];

/** Restore onto other GPUs: every GPU the process had, old UUID -> new UUID (`GPU-...`). */
export interface GpuPair {
  readonly from: string;
  readonly to: string;
}

export interface CheckpointApi {
  readonly path: string;
  state(pid: number): CheckpointResult<ProcessCheckpointState>;
  restoreThreadId(pid: number): CheckpointResult<number>;
  /** timeoutMs 0 waits as long as the task's GPU work takes. */
  lock(pid: number, timeoutMs: number): Promise<CheckpointResult>;
  checkpoint(pid: number): Promise<CheckpointResult>;
  restore(pid: number, pairs?: readonly GpuPair[]): Promise<CheckpointResult>;
  unlock(pid: number): Promise<CheckpointResult>;
  close(): void;
}

const CUDA_SUCCESS = 0;
const CUDA_ERROR_INVALID_VALUE = 1;
const CUDA_ERROR_OUT_OF_MEMORY = 2;
const CUDA_ERROR_NOT_INITIALIZED = 3;
const CUDA_ERROR_NOT_SUPPORTED = 801;
const CUDA_ERROR_ILLEGAL_STATE = 401;
const CUDA_ERROR_NOT_FOUND = 500;
const CUDA_ERROR_TIMEOUT = 909;
const CUDA_ERROR_OPERATING_SYSTEM = 304;

/** cuda.h's layouts (CUDA 12.8 and 13): every args struct is 64 bytes, reserved fields zero. */
const ARGS_BYTES = 64;
const PAIR_BYTES = 32;

type AsyncFn = { async: (...args: unknown[]) => void } & ((...args: unknown[]) => unknown);

/** `GPU-8c1f0a2b-...` as the 16 bytes of a CUuuid. */
export function uuidBytes(uuid: string): Buffer | null {
  const hex = uuid.replace(/^(GPU|MIG)-/i, '').replaceAll('-', '');
  return /^[0-9a-f]{32}$/i.test(hex) ? Buffer.from(hex, 'hex') : null;
}

function codeFor(rc: number): CheckpointErrorCode {
  switch (rc) {
    case CUDA_ERROR_ILLEGAL_STATE:
      return CHECKPOINT_ERROR_CODES.illegalState;
    case CUDA_ERROR_NOT_FOUND:
      return CHECKPOINT_ERROR_CODES.notFound;
    case CUDA_ERROR_OUT_OF_MEMORY:
      return CHECKPOINT_ERROR_CODES.outOfMemory;
    case CUDA_ERROR_TIMEOUT:
      return CHECKPOINT_ERROR_CODES.timeout;
    case CUDA_ERROR_INVALID_VALUE:
      return CHECKPOINT_ERROR_CODES.invalidValue;
    case CUDA_ERROR_NOT_SUPPORTED:
      return CHECKPOINT_ERROR_CODES.unavailable;
    default:
      return CHECKPOINT_ERROR_CODES.failed;
  }
}

class DriverCheckpoint implements CheckpointApi {
  private readonly fns: Record<'getState' | 'threadId' | 'lock' | 'checkpoint' | 'restore' | 'unlock' | 'init' | 'errorName', AsyncFn>;
  private initialised = false;

  constructor(
    private readonly lib: koffi.IKoffiLib,
    readonly path: string,
  ) {
    const f = (proto: string): AsyncFn => lib.func(proto) as AsyncFn;
    this.fns = {
      init: f('int cuInit(unsigned int flags)'),
      errorName: f('int cuGetErrorName(int error, _Out_ const char **name)'),
      getState: f('int cuCheckpointProcessGetState(int pid, _Out_ int *state)'),
      threadId: f('int cuCheckpointProcessGetRestoreThreadId(int pid, _Out_ int *tid)'),
      lock: f('int cuCheckpointProcessLock(int pid, void *args)'),
      checkpoint: f('int cuCheckpointProcessCheckpoint(int pid, void *args)'),
      restore: f('int cuCheckpointProcessRestore(int pid, void *args)'),
      unlock: f('int cuCheckpointProcessUnlock(int pid, void *args)'),
    };
  }

  state(pid: number): CheckpointResult<ProcessCheckpointState> {
    const out = [0];
    const rc = this.sync(() => this.fns.getState(pid, out) as number);
    if (rc !== CUDA_SUCCESS) return this.fail('cuCheckpointProcessGetState', rc, pid);
    const s = PROCESS_STATES[out[0] ?? -1];
    if (s === undefined) return { ok: false, error: { code: CHECKPOINT_ERROR_CODES.failed, message: `pid ${pid}: the driver reports unknown checkpoint state ${out[0]}`, cudaResult: rc, call: 'cuCheckpointProcessGetState' } };
    return { ok: true, value: s };
  }

  restoreThreadId(pid: number): CheckpointResult<number> {
    const out = [0];
    const rc = this.sync(() => this.fns.threadId(pid, out) as number);
    return rc === CUDA_SUCCESS ? { ok: true, value: out[0] ?? 0 } : this.fail('cuCheckpointProcessGetRestoreThreadId', rc, pid);
  }

  lock(pid: number, timeoutMs: number): Promise<CheckpointResult> {
    const args = Buffer.alloc(ARGS_BYTES);
    args.writeUInt32LE(Math.max(0, Math.min(0xffffffff, Math.round(timeoutMs))), 0);
    return this.run('cuCheckpointProcessLock', this.fns.lock, pid, args);
  }

  checkpoint(pid: number): Promise<CheckpointResult> {
    return this.run('cuCheckpointProcessCheckpoint', this.fns.checkpoint, pid, null);
  }

  restore(pid: number, pairs: readonly GpuPair[] = []): Promise<CheckpointResult> {
    if (pairs.length === 0) return this.run('cuCheckpointProcessRestore', this.fns.restore, pid, null);
    const table = Buffer.alloc(PAIR_BYTES * pairs.length);
    for (const [i, p] of pairs.entries()) {
      const from = uuidBytes(p.from);
      const to = uuidBytes(p.to);
      if (!from || !to) {
        return Promise.resolve({ ok: false, error: { code: CHECKPOINT_ERROR_CODES.invalidValue, message: `GPU pair ${p.from} -> ${p.to}: not GPU UUIDs`, cudaResult: null, call: 'cuCheckpointProcessRestore' } });
      }
      from.copy(table, i * PAIR_BYTES);
      to.copy(table, i * PAIR_BYTES + 16);
    }
    const args = Buffer.alloc(ARGS_BYTES);
    // gpuPairs is a pointer inside the struct: write the table's address there. `table` stays
    // referenced by this closure until the call has returned.
    args.writeBigUInt64LE(BigInt(koffi.address(table) as bigint | number), 0);
    args.writeUInt32LE(pairs.length, 8);
    return this.run('cuCheckpointProcessRestore', this.fns.restore, pid, args, table);
  }

  unlock(pid: number): Promise<CheckpointResult> {
    return this.run('cuCheckpointProcessUnlock', this.fns.unlock, pid, null);
  }

  close(): void {
    this.lib.unload();
  }

  /** Some drivers want cuInit in the caller first; it is done once, only when asked for. */
  private sync(fn: () => number): number {
    let rc = fn();
    if (rc === CUDA_ERROR_NOT_INITIALIZED && !this.initialised) {
      this.initialised = true;
      const init = this.fns.init(0) as number;
      if (init !== CUDA_SUCCESS) return init;
      rc = fn();
    }
    return rc;
  }

  private async run(call: string, fn: AsyncFn, pid: number, args: Buffer | null, keep?: Buffer): Promise<CheckpointResult> {
    const once = (): Promise<number> =>
      new Promise((resolve, reject) => {
        fn.async(pid, args, (err: unknown, rc: unknown) => (err ? reject(err as Error) : resolve(rc as number)));
      });
    let rc: number;
    try {
      rc = await once();
      if (rc === CUDA_ERROR_NOT_INITIALIZED && !this.initialised) {
        this.initialised = true;
        const init = this.fns.init(0) as number;
        rc = init === CUDA_SUCCESS ? await once() : init;
      }
    } catch (err) {
      return { ok: false, error: { code: CHECKPOINT_ERROR_CODES.failed, message: `${call}(${pid}): ${(err as Error).message}`, cudaResult: null, call } };
    }
    void keep;
    return rc === CUDA_SUCCESS ? { ok: true, value: undefined } : this.fail(call, rc, pid);
  }

  private fail(call: string, rc: number, pid: number): { ok: false; error: CheckpointError } {
    const name = [''];
    const named = (this.fns.errorName(rc, name) as number) === CUDA_SUCCESS && name[0] ? name[0] : `CUresult ${rc}`;
    const why: Record<number, string> = {
      [CUDA_ERROR_ILLEGAL_STATE]: 'the process is not in a state that allows this',
      [CUDA_ERROR_NOT_FOUND]: 'no CUDA process with this pid',
      [CUDA_ERROR_OUT_OF_MEMORY]: call === 'cuCheckpointProcessRestore' ? 'not enough free GPU memory to restore it' : 'out of memory',
      [CUDA_ERROR_TIMEOUT]: 'timed out',
      [CUDA_ERROR_NOT_SUPPORTED]: 'not supported by this driver for this process',
      [CUDA_ERROR_OPERATING_SYSTEM]: 'the operating system refused (permissions?)',
    };
    return { ok: false, error: { code: codeFor(rc), message: `${call}(${pid}) failed: ${named}${why[rc] ? ` (${why[rc]})` : ''}`, cudaResult: rc, call } };
  }
}

/** The loader name of the driver library, or an explicit path (GPUSHARE_CUDA_PATH). */
export function cudaLibraryPath(env: Readonly<Record<string, string | undefined>> = process.env): string {
  return env['GPUSHARE_CUDA_PATH'] || 'libcuda.so.1';
}

/** Opens libcuda and binds the checkpoint API; an error value when either is missing. */
export function openCheckpointApi(path = cudaLibraryPath()): CheckpointResult<CheckpointApi> {
  let lib: koffi.IKoffiLib;
  try {
    lib = koffi.load(path);
  } catch (cause) {
    return { ok: false, error: { code: CHECKPOINT_ERROR_CODES.unavailable, message: `cannot load the CUDA driver from ${path}: ${(cause as Error).message}`, cudaResult: null, call: 'dlopen' } };
  }
  try {
    return { ok: true, value: new DriverCheckpoint(lib, path) };
  } catch (cause) {
    lib.unload();
    return {
      ok: false,
      error: { code: CHECKPOINT_ERROR_CODES.unavailable, message: `the CUDA driver at ${path} has no checkpoint API (needs driver 570 or newer): ${(cause as Error).message}`, cudaResult: null, call: 'dlsym' },
    };
  }
}
