/**
 * The TypeScript SDK for remote GPU sessions (docs/remote.md "TypeScript SDK"):
 *
 *   const s = await RemoteSession.connect({ endpoint, key });          // a session's worker
 *   const s = await RemoteSession.open({ daemon, token, memory: '8Gi' }); // through the daemon
 */
export { RemoteSession, DEFAULT_STREAM } from './session.js';
export type { ConnectOptions, DeviceInfo, Dim3, Event, KernelFunction, Module, Stream } from './session.js';
export type { DaemonOptions } from './daemon.js';
export { arg } from './args.js';
export type { KernelArg, KernelArgs } from './args.js';
export { CudaError, isCudaError } from './errors.js';
export { cudaResultName } from './cuda-result.js';
