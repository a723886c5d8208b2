/**
 * The kubelet plugin's dealings with the host: its Unix sockets, libgpushare's copy on the
 * host, and the GPUs' device nodes as the NVIDIA driver numbers them.
 */
import { ServerCredentials, type Server } from '@grpc/grpc-js';
import { chmodSync, copyFileSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Gpu } from '../../domain/gpu.js';
import { removeFile } from '../cdi/write.js';
import { indexDeviceNode } from './prepare.js';

/** Binds a server to a Unix socket, replacing a stale socket file a previous run left. */
export async function bindUnix(server: Server, path: string): Promise<void> {
  removeFile(path);
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(`unix:${path}`, ServerCredentials.createInsecure(), (error) => (error ? reject(new Error(`cannot listen on ${path}: ${error.message}`)) : resolve()));
  });
}

export async function shutdown(server: Server): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, 2000);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Copies libgpushare.so to the host path the CDI specs mount (temp + rename: running containers keep their copy). */
export function installLibrary(source: string, target: string): void {
  const temp = join(dirname(target), `.gstmp-${process.pid}-${basename(target)}`); // removeTemporaries' form
  try {
    copyFileSync(source, temp);
    chmodSync(temp, 0o755);
    renameSync(temp, target);
  } finally {
    rmSync(temp, { force: true });
  }
}

/** `/dev/nvidia<minor>`, the minor as the NVIDIA driver reports it for the GPU's PCI address; else by index. */
export function procDeviceNode(gpu: Gpu, driverDir = '/proc/driver/nvidia/gpus'): string {
  if (gpu.pciBusId !== null) {
    try {
      // NVML's bus id has an 8-digit domain (00000000:19:00.0); the driver's directory a 4-digit one.
      const dir = gpu.pciBusId.toLowerCase().replace(/^0000(?=[0-9a-f]{4}:)/, '');
      const info = readFileSync(join(driverDir, dir, 'information'), 'utf8');
      const minor = /^Device Minor:\s*(\d+)/m.exec(info)?.[1];
      if (minor !== undefined) return `/dev/nvidia${minor}`;
    } catch {
      // No NVIDIA driver here (tests, or a driver that moved the file): the index is the usual minor.
    }
  }
  return indexDeviceNode(gpu);
}
