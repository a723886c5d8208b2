/**
 * gpushare's DRA kubelet plugin: the node side of the DRA driver. It serves, over Unix sockets,
 * the kubelet's plugin-registration service (`<registryDir>/<driver>-reg.sock`), the DRAPlugin
 * v1 service and the device-health stream (`<pluginDir>/<driver>/dra.sock`). Prepare reads the
 * claim, decides its slices (prepare.ts, pure), writes a CDI spec per claim (cdi/spec.ts) and
 * records the claim in a checkpoint; unprepare undoes both. Files are written before the
 * checkpoint names them and reconciled at start, so an agent killed at any point converges.
 */
import { Server, status, type sendUnaryData, type ServerUnaryCall, type ServerWritableStream } from '@grpc/grpc-js';
import { chmodSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describeIssues } from '../../domain/result.js';
import { buildClaimSpec, cdiDeviceId, cdiSpecFileName, CDI_CLASS, CDI_VENDOR, CONTAINER_PATHS, type HostPaths } from '../cdi/spec.js';
import { GoneDirs } from '../cdi/gone-dirs.js';
import { afterAnswer, QuietQueue } from '../grpc/quiet-queue.js';
import { removeFile, removeTemporaries, writeFileAtomic } from '../cdi/write.js';
import { ADVERTISED_SERVICES, kubeletProtos } from '../grpc/protos.js';
import type { ClaimSource } from './kubelet-claims.js';
import { CheckpointFile, currentBootId } from './kubelet-checkpoint.js';
import { healthSnapshot, type HealthDevice } from './kubelet-health.js';
import type { InventorySource } from './kubelet-inventory.js';
import { DRIVER_NAME } from './names.js';
import { bindUnix, installLibrary, procDeviceNode, shutdown } from './kubelet-host.js';
import { decidePrepare, deviceCatalog, type ClaimRef, type DeviceCatalog, type PreparedClaim } from './prepare.js';
import { decodeClaim, type ClaimAllocation } from './prepare-claim.js';
import { layoutConfig, publishedDevices, type LayoutConfig } from './slices.js';
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
  /**
   * How the node's GPUs are laid out in its ResourceSlices: the same LayoutConfig
   * (`layoutConfig(...)`) the publisher is given, so the devices prepared are the ones published.
   * Default `layoutConfig({ layout: 'consumable' })`.
   */
  readonly layout?: LayoutConfig;
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
  /** The machine's boot id (default: the kernel's); a checkpoint of another boot is dropped at start. */
  readonly bootId?: string;
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
  const deviceNode = options.deviceNode ?? ((gpu: Gpu): string => procDeviceNode(gpu));
  const layout = options.layout ?? layoutConfig({ layout: 'consumable' });
  // A layout the node's GPUs cannot be published in is a configuration error (the publisher
  // refuses it too): say so at start rather than on the first prepare.
  publishedDevices(options.inventory.current(), layout);

  for (const dir of [registryDir, stateDir, cdiDir, claimsDir, join(stateDir, 'lib')]) mkdirSync(dir, { recursive: true });
  mkdirSync(computeDir, { recursive: true });
  chmodSync(computeDir, 0o1777); // every container's processes, whatever their user, meet on the boards
  // The checkpoint first: its lock (slot-file.ts) refuses a second agent on this node before it
  // touches anything of the first's (temporaries, CDI specs, claims' directories).
  const bootId = options.bootId ?? currentBootId();
  const checkpoint = new CheckpointFile(checkpointPath, bootId);
  // Unprepared claims' directories, removed once the kubelet's calls pause for a second (at most
  // 30 s after the first waits): gone-dirs.ts says why.
  const quiet = new QuietQueue(1000, 30_000);
  const gone = new GoneDirs(join(stateDir, 'gone'), (path, error) => log.error('removing an unprepared claim\'s directory failed', { path, error: error.message }), (start) => quiet.add(start));
  let recorded: ReturnType<CheckpointFile['read']>;
  try {
    recorded = checkpoint.read();
    gone.reset();
    for (const dir of [cdiDir, stateDir, join(stateDir, 'lib')]) removeTemporaries(dir);
    installLibrary(options.library, hostLibrary);
    writeFileAtomic(hostPreload, `${CONTAINER_PATHS.library}\n`);
  } catch (e) {
    checkpoint.close();
    throw e;
  }

  const hostPaths = (uid: string): HostPaths => ({ library: hostLibrary, preload: hostPreload, claimDir: join(claimsDir, uid), computeDir });
  const specPath = (uid: string): string => join(cdiDir, cdiSpecFileName(uid));
  const writeClaimFiles = (claim: PreparedClaim): void => {
    const dir = join(claimsDir, claim.uid);
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o1777); // the region is created by the container's first process, whatever its user
    // Not fsynced, as the checkpoint is not (kubelet-checkpoint.ts says why): the rename covers
    // the agent's crash, and a power loss ends the boot the spec was for.
    writeFileAtomic(specPath(claim.uid), `${JSON.stringify(buildClaimSpec(claim, hostPaths(claim.uid)), null, 1)}\n`, 0o644, false);
  };
  const removeClaimFiles = (uid: string): void => {
    removeFile(specPath(uid));
    rmSync(join(claimsDir, uid), { recursive: true, force: true });
  };
  /** An unprepare's removal: the spec now (the runtime must not find it), the directory renamed away now and removed after the answer. */
  const dropClaimFiles = (uid: string): void => {
    removeFile(specPath(uid));
    gone.discard(join(claimsDir, uid));
  };

  if (recorded.dropped !== undefined) log.info('dropped the checkpoint of another boot: the kubelet prepares its pods\' claims again', { checkpoint: checkpointPath, why: recorded.dropped });
  // Reconcile: the checkpoint is the truth. A spec or claim directory it does not name is from
  // a prepare killed before its checkpoint (the kubelet will ask again), an unprepare killed
  // after it, or another boot; a claim it names gets its files back.
  const prepared = new Map<string, PreparedClaim>(recorded.claims.map((c) => [c.uid, c]));
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

  const save = (): void => checkpoint.write(prepared.values());

  const response = (claim: PreparedClaim): Wire => ({
    devices: claim.devices.map((d) => ({
      request_names: [d.request], pool_name: d.pool, device_name: d.device, cdi_device_ids: [cdiDeviceId(claim.uid)],
      ...(d.shareId === null ? {} : { share_id: d.shareId }),
    })),
    error: '',
  });

  /** A claim's first, asynchronous step: an answer already (done, or an error), or the claim read and decoded. */
  type Read = { readonly answer: Wire } | { readonly ref: ClaimRef; readonly claim: ClaimAllocation };
  const readOne = async (ref: ClaimRef): Promise<Read> => {
    const bad = badReference(ref);
    if (bad !== null) return { answer: { devices: [], error: bad } };
    const done = prepared.get(ref.uid);
    if (done !== undefined) {
      if (!existsSync(specPath(ref.uid))) writeClaimFiles(done); // removed behind our back: the answer must stay true
      return { answer: response(done) };
    }
    let json: unknown;
    try {
      json = await options.claims.read(ref.namespace, ref.name);
    } catch (e) {
      return { answer: { devices: [], error: `reading ResourceClaim ${ref.namespace}/${ref.name} failed: ${(e as Error).message}` } };
    }
    const decoded = decodeClaim(json);
    if (!decoded.ok) return { answer: { devices: [], error: `ResourceClaim ${ref.namespace}/${ref.name}: ${describeIssues(decoded.issues)}` } };
    return { ref, claim: decoded.value };
  };

  /**
   * One NodePrepareResources call: the claims are read concurrently; then, with nothing awaited
   * until the checkpoint, each is decided against the ledger (the claims before it included)
   * and its files written, and one checkpoint write (one flush) covers the whole call. Calls
   * that overlap take turns in that synchronous part, so no two decisions see the same room.
   */
  // The catalog of the inventory's current list, made again only when the list changes (the
  // inventory hands out a new list on every change, health included). Made per call before
  // session 24: each prepare read every GPU's /proc/driver/nvidia/gpus/<bus>/information, 8
  // files (and an exception each where the driver is absent) on the kubelet's critical path.
  let catalogOf: { gpus: readonly Gpu[]; catalog: DeviceCatalog } | null = null;
  const currentCatalog = (): DeviceCatalog => {
    const gpus = options.inventory.current();
    if (catalogOf?.gpus !== gpus) catalogOf = { gpus, catalog: deviceCatalog(options.poolName, gpus, layout, deviceNode) };
    return catalogOf.catalog;
  };

  const prepareCall = async (refs: readonly ClaimRef[]): Promise<Record<string, Wire>> => {
    const reads = await Promise.all(refs.map(readOne));
    const answers = new Map<string, Wire>();
    const added: PreparedClaim[] = [];
    const catalog = currentCatalog();
    for (const read of reads) {
      if ('answer' in read) continue;
      const { ref } = read;
      const raced = prepared.get(ref.uid);
      if (raced !== undefined) {
        answers.set(ref.uid, response(raced));
        continue;
      }
      const decision = decidePrepare(ref, read.claim, catalog, prepared.values());
      if (!decision.ok) {
        answers.set(ref.uid, { devices: [], error: describeIssues(decision.issues) });
        continue;
      }
      try {
        writeClaimFiles(decision.value);
      } catch (e) {
        removeClaimFiles(ref.uid);
        answers.set(ref.uid, { devices: [], error: `preparing ResourceClaim ${ref.namespace}/${ref.name} failed writing its files: ${(e as Error).message}` });
        continue;
      }
      prepared.set(ref.uid, decision.value);
      added.push(decision.value);
    }
    if (added.length > 0) {
      try {
        save();
        for (const c of added) answers.set(c.uid, response(c));
        afterAnswer(() => {
          for (const c of added) log.info('prepared claim', { claim: `${c.namespace}/${c.name}`, uid: c.uid, devices: c.devices.map((d) => d.device) });
        });
      } catch (e) {
        for (const c of added) {
          prepared.delete(c.uid);
          removeClaimFiles(c.uid);
          answers.set(c.uid, { devices: [], error: `preparing ResourceClaim ${c.namespace}/${c.name} failed writing its files: ${(e as Error).message}` });
        }
      }
    }
    return Object.fromEntries(refs.map((ref, i) => {
      const read = reads[i];
      return [ref.uid, (read !== undefined && 'answer' in read ? read.answer : answers.get(ref.uid)) ?? unanswered(ref)];
    }));
  };

  /** One NodeUnprepareResources call: the ledger and one checkpoint write first, then the files (the claim's directory renamed away, removed after the answer). */
  const unprepareCall = (refs: readonly ClaimRef[]): Record<string, Wire> => {
    const answers = new Map<string, Wire>();
    const removed: PreparedClaim[] = [];
    for (const ref of refs) {
      const bad = badReference(ref);
      if (bad !== null) {
        answers.set(ref.uid, { error: bad });
        continue;
      }
      const had = prepared.get(ref.uid);
      if (had === undefined) continue;
      prepared.delete(ref.uid);
      removed.push(had);
    }
    if (removed.length > 0) {
      try {
        save();
      } catch (e) {
        for (const c of removed) {
          prepared.set(c.uid, c); // the checkpoint still names it: so does the ledger
          answers.set(c.uid, { error: `unpreparing ResourceClaim ${c.namespace}/${c.name} failed: ${(e as Error).message}` });
        }
      }
    }
    for (const ref of refs) {
      if (answers.has(ref.uid)) continue;
      try {
        dropClaimFiles(ref.uid);
        answers.set(ref.uid, { error: '' });
      } catch (e) {
        answers.set(ref.uid, { error: `unpreparing ResourceClaim ${ref.namespace}/${ref.name} failed: ${(e as Error).message}` });
      }
    }
    const unprepared = removed.filter((c) => answers.get(c.uid)?.['error'] === '');
    if (unprepared.length > 0) afterAnswer(() => {
      for (const c of unprepared) log.info('unprepared claim', { claim: `${c.namespace}/${c.name}`, uid: c.uid });
    });
    return Object.fromEntries(refs.map((ref) => [ref.uid, answers.get(ref.uid) ?? unanswered(ref)]));
  };

  const protos = kubeletProtos();
  const draServer = new Server();
  draServer.addService(protos.draPlugin.service, {
    NodePrepareResources: (call: ServerUnaryCall<{ claims: ClaimRef[] }, Wire>, callback: sendUnaryData<Wire>) => {
      quiet.busy();
      prepareCall(call.request.claims).then(
        (claims) => callback(null, { claims }),
        (e: unknown) => callback({ code: status.INTERNAL, details: `NodePrepareResources: ${(e as Error).message}` }),
      );
    },
    NodeUnprepareResources: (call: ServerUnaryCall<{ claims: ClaimRef[] }, Wire>, callback: sendUnaryData<Wire>) => {
      quiet.busy();
      callback(null, { claims: unprepareCall(call.request.claims) });
    },
  });

  const streams = new Set<ServerWritableStream<unknown, Wire>>();
  const now = options.now ?? Date.now;
  const watch = (call: ServerWritableStream<unknown, Wire>): void => {
    streams.add(call);
    let last = '';
    const send = (): void => {
      let devices: HealthDevice[];
      try {
        devices = healthSnapshot(currentCatalog());
      } catch (e) {
        // A GPU that changed since start so the layout no longer fits it: the stream stays as it was.
        log.error('the device-health stream could not list the devices', { error: (e as Error).message });
        return;
      }
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

  try {
    await bindUnix(draServer, pluginSocket);
  } catch (e) {
    checkpoint.close();
    throw e;
  }
  try {
    await bindUnix(registrationServer, registrySocket);
  } catch (e) {
    await shutdown(draServer);
    checkpoint.close();
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
      quiet.flush(); // the removals waiting for a pause start now
      await gone.settled();
      checkpoint.close();
    },
  };
}

/** A bug guard: every claim of a call gets an answer above; were one missed, the kubelet retries it. */
function unanswered(ref: ClaimRef): Wire {
  return { devices: [], error: `internal error: no answer was made for claim ${ref.namespace}/${ref.name}; the kubelet will retry it` };
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
