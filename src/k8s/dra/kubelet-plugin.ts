/**
 * gpushare's DRA kubelet plugin: the node side of the DRA driver. It serves, over Unix sockets,
 * the kubelet's plugin-registration service (`<registryDir>/<driver>-reg.sock`), the DRAPlugin
 * v1 service and the device-health stream (`<pluginDir>/<driver>/dra.sock`). Prepare reads the
 * claim, decides its slices (prepare.ts, pure), writes a CDI spec per claim (cdi/spec.ts) and
 * records the claim in a checkpoint; unprepare undoes both. Files are written before the
 * checkpoint names them and reconciled at start, so an agent killed at any point converges.
 */
import { Server, ServerCredentials, status, type sendUnaryData, type ServerUnaryCall, type ServerWritableStream } from '@grpc/grpc-js';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { describeIssues } from '../../domain/result.js';
import { buildClaimSpec, cdiDeviceId, cdiSpecFileName, CDI_CLASS, CDI_VENDOR, CONTAINER_PATHS, type HostPaths } from '../cdi/spec.js';
import { removeFile, removeTemporaries, writeFileAtomic } from '../cdi/write.js';
import { ADVERTISED_SERVICES, kubeletProtos } from '../grpc/protos.js';
import type { ClaimSource } from './kubelet-claims.js';
import { readCheckpoint, writeCheckpoint } from './kubelet-checkpoint.js';
import { healthSnapshot, type HealthDevice } from './kubelet-health.js';
import type { InventorySource } from './kubelet-inventory.js';
import { DRIVER_NAME, type SliceLayout } from './names.js';
import { decidePrepare, deviceCatalog, indexDeviceNode, type ClaimRef, type PreparedClaim } from './prepare.js';
import { decodeClaim } from './prepare-claim.js';
import type { Gpu } from '../../domain/gpu.js';

export interface PluginLog {
  info(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export interface DraKubeletPluginOptions {
  /** This node's ResourceSlice pool (the publisher names it after the node). */
  readonly poolName: string;
  readonly claims: ClaimSource;
  readonly inventory: InventorySource;
  /** libgpushare.so as this agent has it; installed on the host under the plugin directory at start. */
  readonly library: string;
  readonly layout?: SliceLayout;
  /** The fixed layout's slices per GPU (as published). */
  readonly slicesPerGpu?: number;
  /** Default /var/lib/kubelet/plugins_registry. */
  readonly registryDir?: string;
  /** Default /var/lib/kubelet/plugins; the plugin's socket and state go in `<pluginDir>/<driver>/`. */
  readonly pluginDir?: string;
  /** Default /var/run/cdi. */
  readonly cdiDir?: string;
  /** A GPU's device node; default `/dev/nvidia<minor>` read from /proc/driver/nvidia, else by index. */
  readonly deviceNode?: (gpu: Gpu) => string;
  readonly log?: PluginLog;
  /** Clock for the health stream's timestamps (Unix ms). */
  readonly now?: () => number;
}

export type RegistrationState = { readonly state: 'waiting' } | { readonly state: 'registered' } | { readonly state: 'refused'; readonly error: string };

export interface DraKubeletPlugin {
  readonly registrySocket: string;
  readonly pluginSocket: string;
  readonly stateDir: string;
  registration(): RegistrationState;
  prepared(): readonly PreparedClaim[];
  close(): Promise<void>;
}

type Wire = Record<string, unknown>;

const stderrLog: PluginLog = {
  info: (message, fields) => process.stderr.write(`${JSON.stringify({ level: 'info', component: 'dra-kubelet-plugin', message, ...fields })}\n`),
  error: (message, fields) => process.stderr.write(`${JSON.stringify({ level: 'error', component: 'dra-kubelet-plugin', message, ...fields })}\n`),
};

/** Starts the plugin: reconciles its state, then serves; registration comes last, once the plugin socket answers. */
export async function startDraKubeletPlugin(options: DraKubeletPluginOptions): Promise<DraKubeletPlugin> {
  const log = options.log ?? stderrLog;
  const registryDir = options.registryDir ?? '/var/lib/kubelet/plugins_registry';
  const stateDir = join(options.pluginDir ?? '/var/lib/kubelet/plugins', DRIVER_NAME);
  const cdiDir = options.cdiDir ?? '/var/run/cdi';
  const registrySocket = join(registryDir, `${DRIVER_NAME}-reg.sock`);
  const pluginSocket = join(stateDir, 'dra.sock');
  const checkpointPath = join(stateDir, 'checkpoint.json');
  const claimsDir = join(stateDir, 'claims');
  const computeDir = join(stateDir, 'compute');
  const hostLibrary = join(stateDir, 'lib', 'libgpushare.so');
  const hostPreload = join(stateDir, 'ld.so.preload');
  const deviceNode = options.deviceNode ?? procDeviceNode;
  const layout = options.layout ?? 'consumable';

  for (const dir of [registryDir, stateDir, cdiDir, claimsDir, join(stateDir, 'lib')]) mkdirSync(dir, { recursive: true });
  mkdirSync(computeDir, { recursive: true });
  chmodSync(computeDir, 0o1777); // every container's processes, whatever their user, meet on the boards
  for (const dir of [cdiDir, stateDir, join(stateDir, 'lib')]) removeTemporaries(dir);
  installLibrary(options.library, hostLibrary);
  writeFileAtomic(hostPreload, `${CONTAINER_PATHS.library}\n`);

  const hostPaths = (uid: string): HostPaths => ({ library: hostLibrary, preload: hostPreload, claimDir: join(claimsDir, uid), computeDir });
  const specPath = (uid: string): string => join(cdiDir, cdiSpecFileName(uid));
  const writeClaimFiles = (claim: PreparedClaim): void => {
    const dir = join(claimsDir, claim.uid);
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o1777); // the region is created by the container's first process, whatever its user
    // Not fsynced: a spec must survive the agent's crash (the rename does that), and after a power
    // loss the start-up reconcile writes every spec the (fsynced) checkpoint names; /var/run/cdi
    // is a tmpfs on most nodes anyway. Saves a disk flush per prepare.
    writeFileAtomic(specPath(claim.uid), `${JSON.stringify(buildClaimSpec(claim, hostPaths(claim.uid)), null, 1)}\n`, 0o644, false);
  };
  const removeClaimFiles = (uid: string): void => {
    removeFile(specPath(uid));
    rmSync(join(claimsDir, uid), { recursive: true, force: true });
  };

  // Reconcile: the checkpoint is the truth. A spec or claim directory it does not name is from
  // a prepare killed before its checkpoint (the kubelet will ask again) or an unprepare killed
  // after it; a claim it names gets its files back.
  const prepared = new Map<string, PreparedClaim>(readCheckpoint(checkpointPath).map((c) => [c.uid, c]));
  const specPrefix = `${CDI_VENDOR}-${CDI_CLASS}_`;
  for (const f of readdirSync(cdiDir)) {
    const uid = f.startsWith(specPrefix) && f.endsWith('.json') ? f.slice(specPrefix.length, -'.json'.length) : null;
    if (uid !== null && !prepared.has(uid)) {
      removeClaimFiles(uid);
      log.info('removed the CDI spec of a claim not in the checkpoint', { uid });
    }
  }
  for (const uid of readdirSync(claimsDir)) if (!prepared.has(uid)) removeClaimFiles(uid);
  for (const claim of prepared.values()) writeClaimFiles(claim);

  const save = (): void => writeCheckpoint(checkpointPath, prepared.values());

  const response = (claim: PreparedClaim): Wire => ({
    devices: claim.devices.map((d) => ({
      request_names: [d.request], pool_name: d.pool, device_name: d.device, cdi_device_ids: [cdiDeviceId(claim.uid)],
      ...(d.shareId === null ? {} : { share_id: d.shareId }),
    })),
    error: '',
  });

  const prepareOne = async (ref: ClaimRef): Promise<Wire> => {
    const bad = badReference(ref);
    if (bad !== null) return { devices: [], error: bad };
    const done = prepared.get(ref.uid);
    if (done !== undefined) {
      if (!existsSync(specPath(ref.uid))) writeClaimFiles(done); // removed behind our back: the answer must stay true
      return response(done);
    }
    let json: unknown;
    try {
      json = await options.claims.read(ref.namespace, ref.name);
    } catch (e) {
      return { devices: [], error: `reading ResourceClaim ${ref.namespace}/${ref.name} failed: ${(e as Error).message}` };
    }
    const decoded = decodeClaim(json);
    if (!decoded.ok) return { devices: [], error: `ResourceClaim ${ref.namespace}/${ref.name}: ${describeIssues(decoded.issues)}` };
    // From here to the checkpoint nothing awaits: decisions and writes of concurrent prepares
    // take turns, so the ledger each one checks against is the one it commits to.
    const raced = prepared.get(ref.uid);
    if (raced !== undefined) return response(raced);
    const catalog = deviceCatalog(options.poolName, options.inventory.current(), layout, options.slicesPerGpu, deviceNode);
    const decision = decidePrepare(ref, decoded.value, catalog, prepared.values());
    if (!decision.ok) return { devices: [], error: describeIssues(decision.issues) };
    const claim = decision.value;
    try {
      writeClaimFiles(claim);
      prepared.set(claim.uid, claim);
      save();
    } catch (e) {
      prepared.delete(claim.uid);
      removeClaimFiles(claim.uid);
      return { devices: [], error: `preparing ResourceClaim ${ref.namespace}/${ref.name} failed writing its files: ${(e as Error).message}` };
    }
    log.info('prepared claim', { claim: `${ref.namespace}/${ref.name}`, uid: ref.uid, devices: claim.devices.map((d) => d.device) });
    return response(claim);
  };

  const unprepareOne = (ref: ClaimRef): Wire => {
    const bad = badReference(ref);
    if (bad !== null) return { error: bad };
    const had = prepared.get(ref.uid);
    try {
      if (had !== undefined) {
        prepared.delete(ref.uid);
        try {
          save();
        } catch (e) {
          prepared.set(ref.uid, had); // the checkpoint still names it: so does the ledger
          throw e;
        }
      }
      removeClaimFiles(ref.uid);
    } catch (e) {
      return { error: `unpreparing ResourceClaim ${ref.namespace}/${ref.name} failed: ${(e as Error).message}` };
    }
    if (had !== undefined) log.info('unprepared claim', { claim: `${ref.namespace}/${ref.name}`, uid: ref.uid });
    return { error: '' };
  };

  const protos = kubeletProtos();
  const draServer = new Server();
  draServer.addService(protos.draPlugin.service, {
    NodePrepareResources: (call: ServerUnaryCall<{ claims: ClaimRef[] }, Wire>, callback: sendUnaryData<Wire>) => {
      void Promise.all(call.request.claims.map(async (c) => [c.uid, await prepareOne(c)] as const)).then(
        (entries) => callback(null, { claims: Object.fromEntries(entries) }),
        (e: unknown) => callback({ code: status.INTERNAL, details: `NodePrepareResources: ${(e as Error).message}` }),
      );
    },
    NodeUnprepareResources: (call: ServerUnaryCall<{ claims: ClaimRef[] }, Wire>, callback: sendUnaryData<Wire>) => {
      callback(null, { claims: Object.fromEntries(call.request.claims.map((c) => [c.uid, unprepareOne(c)])) });
    },
  });

  const streams = new Set<ServerWritableStream<unknown, Wire>>();
  const now = options.now ?? Date.now;
  const watch = (call: ServerWritableStream<unknown, Wire>): void => {
    streams.add(call);
    let last = '';
    const send = (): void => {
      const catalog = deviceCatalog(options.poolName, options.inventory.current(), layout, options.slicesPerGpu, deviceNode);
      const devices: HealthDevice[] = healthSnapshot(catalog);
      const key = JSON.stringify(devices);
      if (key === last) return;
      last = key;
      const at = Math.floor(now() / 1000);
      call.write({ devices: devices.map((d) => ({ device: { pool_name: d.pool, device_name: d.device }, health: d.health, last_updated_time: at, health_check_timeout_seconds: 0, message: d.message })) });
    };
    const unsubscribe = options.inventory.subscribe(send);
    const end = (): void => {
      unsubscribe();
      streams.delete(call);
    };
    call.on('cancelled', end);
    call.on('close', end);
    send();
  };
  draServer.addService(protos.healthV1.service, { NodeWatchResources: watch });
  draServer.addService(protos.healthV1alpha1.service, { NodeWatchResources: watch });

  let registration: RegistrationState = { state: 'waiting' };
  const registrationServer = new Server();
  registrationServer.addService(protos.registration.service, {
    GetInfo: (_call: ServerUnaryCall<unknown, Wire>, callback: sendUnaryData<Wire>) => {
      callback(null, { type: 'DRAPlugin', name: DRIVER_NAME, endpoint: pluginSocket, supported_versions: [...ADVERTISED_SERVICES] });
    },
    NotifyRegistrationStatus: (call: ServerUnaryCall<{ plugin_registered: boolean; error: string }, Wire>, callback: sendUnaryData<Wire>) => {
      if (call.request.plugin_registered) {
        registration = { state: 'registered' };
        log.info('the kubelet registered the plugin', { driver: DRIVER_NAME, endpoint: pluginSocket });
      } else {
        registration = { state: 'refused', error: call.request.error || 'no reason given' };
        log.error('the kubelet refused the plugin\'s registration', { driver: DRIVER_NAME, error: registration.error });
      }
      callback(null, {});
    },
  });

  await bindUnix(draServer, pluginSocket);
  try {
    await bindUnix(registrationServer, registrySocket);
  } catch (e) {
    await shutdown(draServer);
    throw e;
  }
  log.info('serving', { registrySocket, pluginSocket, prepared: prepared.size });

  let closed = false;
  return {
    registrySocket,
    pluginSocket,
    stateDir,
    registration: () => registration,
    prepared: () => [...prepared.values()],
    async close() {
      if (closed) return;
      closed = true;
      // The registration socket goes first: the kubelet deregisters a plugin whose socket is gone.
      await shutdown(registrationServer);
      removeFile(registrySocket);
      for (const s of streams) s.end();
      await shutdown(draServer);
      removeFile(pluginSocket);
    },
  };
}

/**
 * Why a claim reference cannot be used, or null. The uid names files (the CDI spec, the claim's
 * directory) and the CDI device, so it must be a plain name: Kubernetes uids are UUIDs.
 */
function badReference(ref: ClaimRef): string | null {
  if (!ref.uid || !ref.namespace || !ref.name) return `the kubelet must name a claim by namespace, name and uid; got ${JSON.stringify(ref)}`;
  if (!/^[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?$/.test(ref.uid) || ref.uid.includes('..')) {
    return `claim uid ${JSON.stringify(ref.uid)} is not a Kubernetes uid; expected letters, digits, '-', '_' and '.' (a UUID)`;
  }
  return null;
}

/** Binds a server to a Unix socket, replacing a stale socket file a previous run left. */
async function bindUnix(server: Server, path: string): Promise<void> {
  removeFile(path);
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(`unix:${path}`, ServerCredentials.createInsecure(), (error) => (error ? reject(new Error(`cannot listen on ${path}: ${error.message}`)) : resolve()));
  });
}

async function shutdown(server: Server): Promise<void> {
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
function installLibrary(source: string, target: string): void {
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
export function procDeviceNode(gpu: Gpu): string {
  if (gpu.pciBusId !== null) {
    try {
      // NVML's bus id has an 8-digit domain (00000000:19:00.0); the driver's directory a 4-digit one.
      const dir = gpu.pciBusId.toLowerCase().replace(/^0000(?=[0-9a-f]{4}:)/, '');
      const info = readFileSync(`/proc/driver/nvidia/gpus/${dir}/information`, 'utf8');
      const minor = /^Device Minor:\s*(\d+)/m.exec(info)?.[1];
      if (minor !== undefined) return `/dev/nvidia${minor}`;
    } catch {
      // No NVIDIA driver here (tests, or a driver that moved the file): the index is the usual minor.
    }
  }
  return indexDeviceNode(gpu);
}
