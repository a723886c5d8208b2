/**
 * Kubernetes on a GPU without Kubernetes: the DRA kubelet plugin started as the tests start it
 * (a fake API server holding the pods' ResourceClaims, allocated on this node's GPU with
 * consumed capacity), NodePrepareResources called over the plugin's real Unix socket as the
 * kubelet calls it, the CDI specs it wrote read back and applied as a container runtime would
 * (src/k8s/cdi/apply*.ts), each "pod" run as the process that describes, all pods at once;
 * then NodeUnprepareResources, and a look at what is left (CDI files, claim directories with
 * their regions, the checkpoint's ledger).
 *
 * Used by test/k8s/pods.test.ts (fake drivers) and by test/k8s/pods-run.ts, the command that
 * scripts/gpu-check-k8s.sh runs on a GPU machine.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Gpu } from '../../src/domain/gpu.js';
import { describeIssues } from '../../src/domain/result.js';
import { decodeAllocateResponse, type ContainerAllocateResponse } from '../../src/k8s/cdi/apply-allocate.js';
import { checkDeviceNodes, createMountTargets, execTools, runPlan, type DeviceCheck, type RunResult } from '../../src/k8s/cdi/apply-exec.js';
import { decodeCdiSpec, type DecodedCdiSpec } from '../../src/k8s/cdi/apply-spec.js';
import { containerProcess, type ProcessPlan } from '../../src/k8s/cdi/apply.js';
import { currentBootId, readCheckpoint } from '../../src/k8s/dra/kubelet-checkpoint.js';
import { apiClaimSource } from '../../src/k8s/dra/kubelet-claims.js';
import { StaticInventory } from '../../src/k8s/dra/kubelet-inventory.js';
import { startDraKubeletPlugin } from '../../src/k8s/dra/kubelet-plugin.js';
import { claimJson, FakeKubelet } from './dra-kubelet-fixtures.js';
import { startPluginAllocate, type PluginAllocateSource } from './pods-allocate.js';
import { startFakeApiServer } from './fake-apiserver.js';

export interface PodDefinition {
  readonly name: string;
  /** The claim's consumed memory, a Kubernetes quantity (`20Gi`). */
  readonly memory: string;
  /** The claim's consumed cores, hundredths of the GPU. */
  readonly cores: number;
  /** The container's command; `{pod}` in an argument becomes the pod's name. */
  readonly argv: readonly string[];
  /** The pod spec's env for the container (`{pod}` as in argv). */
  readonly containerEnv?: readonly string[];
}

/**
 * The classic path's Allocate, for the `allocate` switch: the device plugin's answer for a pod
 * (ContainerAllocateResponse wire JSON). Default: the real plugin (pods-allocate.ts); tests may
 * give a hand-written answer.
 */
export interface AllocateSource {
  allocate(pod: PodDefinition): Promise<unknown>;
}

export interface FlowOptions {
  readonly root: string;
  readonly gpus: readonly Gpu[];
  readonly library: string;
  readonly pods: readonly PodDefinition[];
  readonly imageEnv?: readonly string[];
  /** `dra` (default): claims, prepare, CDI. `allocate`: the device plugin's answer through `allocate`. */
  readonly path?: 'dra' | 'allocate';
  readonly allocate?: AllocateSource;
  /** `run`: perform the plans (root); `plan`: build them only. */
  readonly execute: 'run' | 'plan';
  /** A device node missing on this host: refuse (as a runtime would) or list it (no NVIDIA driver here). */
  readonly missingDevices?: 'fail' | 'report';
  readonly deviceNode?: (gpu: Gpu) => string;
  readonly timeoutMs?: number;
}

export interface PodOutcome {
  readonly pod: string;
  readonly claim: { readonly namespace: string; readonly name: string; readonly uid: string } | null;
  readonly cdiDeviceIds: readonly string[];
  readonly plan: ProcessPlan;
  readonly devices: DeviceCheck | null;
  readonly result: RunResult | null;
}

export interface FlowReport {
  readonly path: 'dra' | 'allocate';
  readonly pods: readonly PodOutcome[];
  /** Why the plans were not performed (not root, no unshare), or null. */
  readonly refusal: string | null;
  readonly mountTargetsCreated: readonly string[];
  /** What is left after NodeUnprepareResources (all empty when it cleaned up). */
  readonly afterUnprepare: { readonly cdiFiles: readonly string[]; readonly claimDirs: readonly string[]; readonly checkpointClaims: number; readonly prepared: number } | null;
}

const NODE = 'gpu-node-1';
const NAMESPACE = 'pods-check';

/** Runs the whole flow; throws (with the reason) where a step a kubelet or runtime would refuse fails. */
export async function runPodsFlow(options: FlowOptions): Promise<FlowReport> {
  if ((options.path ?? 'dra') === 'allocate') return runAllocateFlow(options);
  const api = await startFakeApiServer();
  const kubelet = new FakeKubelet();
  const cdiDir = join(options.root, 'cdi');
  const plugin = await startDraKubeletPlugin({
    poolName: NODE, claims: apiClaimSource(api.kubeConfig()), inventory: new StaticInventory(options.gpus), library: options.library,
    registryDir: join(options.root, 'registry'), pluginDir: join(options.root, 'plugins'), cdiDir, log: { info: () => undefined, error: () => undefined },
    ...(options.deviceNode === undefined ? {} : { deviceNode: options.deviceNode }),
  });
  try {
    const info = await kubelet.getInfo(plugin.registrySocket);
    await kubelet.notify(plugin.registrySocket, true);
    const claims = options.pods.map((pod) => {
      const ref = { namespace: NAMESPACE, name: `${pod.name}-gpu`, uid: randomUUID() };
      api.seed('resourceclaims', claimJson({ ...ref, results: [{ device: 'gpu-0', pool: NODE, consumedCapacity: { memory: pod.memory, cores: String(pod.cores) } }] }));
      return ref;
    });
    // The kubelet prepares each pod's claims when it admits the pod: one call per pod, all at once.
    const answers = await Promise.all(claims.map((ref) => kubelet.prepare(info.endpoint, [ref])));
    const ids = claims.map((ref, i) => {
      const answer = answers[i]?.claims[ref.uid];
      if (answer === undefined || answer.error !== '') throw new Error(`NodePrepareResources refused ${ref.name}: ${answer?.error ?? 'no answer'}`);
      return answer.devices.flatMap((d) => d.cdi_device_ids);
    });
    const specs = readSpecs(cdiDir);
    const plans = options.pods.map((pod, i) => planFor(pod, { cdiDevices: ids[i] ?? [] }, specs, options));
    const run = await perform(plans, options);
    const gone = await kubelet.unprepare(info.endpoint, claims);
    for (const ref of claims) {
      const error = gone.claims[ref.uid]?.error;
      if (error !== '') throw new Error(`NodeUnprepareResources failed for ${ref.name}: ${error ?? 'no answer'}`);
    }
    const claimsDir = join(plugin.stateDir, 'claims');
    const checkpoint = join(plugin.stateDir, 'checkpoint.json');
    return {
      path: 'dra', refusal: run.refusal, mountTargetsCreated: run.created,
      pods: options.pods.map((pod, i) => ({ pod: pod.name, claim: claims[i] ?? null, cdiDeviceIds: ids[i] ?? [], plan: plans[i] as ProcessPlan, devices: run.devices[i] ?? null, result: run.results[i] ?? null })),
      afterUnprepare: {
        cdiFiles: readdirSync(cdiDir),
        claimDirs: existsSync(claimsDir) ? readdirSync(claimsDir) : [],
        checkpointClaims: readCheckpoint(checkpoint, currentBootId()).claims.length,
        prepared: plugin.prepared().length,
      },
    };
  } finally {
    kubelet.close();
    await plugin.close();
    await api.close();
  }
}

/** The classic path: the device plugin's answer for each pod, applied (CDI devices it names resolved from <root>/cdi). */
async function runAllocateFlow(options: FlowOptions): Promise<FlowReport> {
  const cdiDir = join(options.root, 'cdi');
  mkdirSync(cdiDir, { recursive: true });
  const plugin = options.allocate === undefined ? await startPluginAllocate({ root: options.root, node: NODE, gpus: options.gpus, library: options.library, ...(options.deviceNode === undefined ? {} : { deviceNode: options.deviceNode }) }) : null;
  const source = options.allocate ?? (plugin as PluginAllocateSource);
  let plans: ProcessPlan[];
  let run: Performed;
  try {
    const answers = await Promise.all(options.pods.map((pod) => source.allocate(pod)));
    const specs = readSpecs(cdiDir);
    plans = options.pods.map((pod, i) => {
      const decoded = decodeAllocateResponse(answers[i]);
      if (!decoded.ok) throw new Error(`Allocate for ${pod.name}: ${describeIssues(decoded.issues)}`);
      return planFor(pod, { allocate: [decoded.value] }, specs, options);
    });
    run = await perform(plans, options);
  } finally {
    await plugin?.close();
  }
  return {
    path: 'allocate', refusal: run.refusal, mountTargetsCreated: run.created, afterUnprepare: null,
    pods: options.pods.map((pod, i) => ({ pod: pod.name, claim: null, cdiDeviceIds: [], plan: plans[i] as ProcessPlan, devices: run.devices[i] ?? null, result: run.results[i] ?? null })),
  };
}

function readSpecs(cdiDir: string): DecodedCdiSpec[] {
  return readdirSync(cdiDir).filter((f) => f.endsWith('.json')).sort().map((f) => {
    const decoded = decodeCdiSpec(JSON.parse(readFileSync(join(cdiDir, f), 'utf8')), join(cdiDir, f));
    if (!decoded.ok) throw new Error(describeIssues(decoded.issues));
    return decoded.value;
  });
}

function planFor(pod: PodDefinition, devices: { cdiDevices?: string[]; allocate?: ContainerAllocateResponse[] }, specs: readonly DecodedCdiSpec[], options: FlowOptions): ProcessPlan {
  const plan = containerProcess({
    argv: pod.argv.map((a) => a.replaceAll('{pod}', pod.name)), containerEnv: (pod.containerEnv ?? []).map((e) => e.replaceAll('{pod}', pod.name)),
    ...(options.imageEnv === undefined ? {} : { imageEnv: options.imageEnv }), ...devices,
  }, specs);
  if (!plan.ok) throw new Error(`pod ${pod.name}: ${describeIssues(plan.issues)}`);
  return plan.value;
}

interface Performed {
  readonly refusal: string | null;
  readonly created: readonly string[];
  readonly devices: readonly (DeviceCheck | null)[];
  readonly results: readonly (RunResult | null)[];
}

/** Runs every pod's plan at once in its own private mount namespace (or says why it cannot). */
async function perform(plans: readonly ProcessPlan[], options: FlowOptions): Promise<Performed> {
  if (options.execute === 'plan') return { refusal: 'not asked to run (plans only)', created: [], devices: [], results: [] };
  const tools = execTools();
  if (!tools.ok) return { refusal: describeIssues(tools.issues), created: [], devices: [], results: [] };
  const devices = plans.map((plan) => {
    const checked = checkDeviceNodes(plan, options.missingDevices ?? 'fail');
    if (!checked.ok) throw new Error(describeIssues(checked.issues));
    return checked.value;
  });
  const targets = createMountTargets(plans);
  if (!targets.ok) throw new Error(describeIssues(targets.issues));
  try {
    const results = await Promise.all(plans.map((plan, i) => runPlan(plan, tools.value, { id: `pod-${i}`, ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }) })));
    return {
      refusal: null, created: targets.value.created, devices,
      results: results.map((r) => {
        if (!r.ok) throw new Error(describeIssues(r.issues));
        return r.value;
      }),
    };
  } finally {
    targets.value.remove();
  }
}
