/**
 * The command scripts/gpu-check-k8s.sh runs on a GPU machine (bundled by
 * scripts/k8s-pods-bundle.sh, since that machine has node but not tsx): pods-flow.ts over the
 * node's real GPUs (NVML), printing the flow's report as one JSON line.
 *
 *   pods-run [--root DIR] [--library SO] [--nvml SO] [--image-env K=V]... [--container-env K=V]...
 *            --pod NAME:MEMORY:CORES... [--missing-devices fail|report] [--timeout SECONDS]
 *            [--path dra|allocate] -- COMMAND [ARG...]
 *
 * Every pod runs COMMAND (`{pod}` in it, and in --container-env, becomes the pod's name), all at
 * once. --path allocate is the classic path: the device plugin's Allocate (pods-allocate.ts)
 * instead of the DRA plugin's prepare and CDI edits.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { NvmlBackend } from '../../src/gpu/nvml/backend.js';
import { runPodsFlow, type PodDefinition } from './pods-flow.js';

interface Args {
  root: string | null;
  library: string;
  nvml: string | undefined;
  imageEnv: string[];
  containerEnv: string[];
  pods: { name: string; memory: string; cores: number }[];
  missing: 'fail' | 'report';
  timeoutMs: number;
  path: 'dra' | 'allocate';
  argv: string[];
}

function usage(why: string): never {
  process.stderr.write(`pods-run: ${why}\nusage: pods-run [--root DIR] [--library SO] [--nvml SO] [--image-env K=V]... [--container-env K=V]... --pod NAME:MEMORY:CORES... [--missing-devices fail|report] [--timeout S] [--path dra|allocate] -- COMMAND [ARG...]\n`);
  process.exit(2);
}

function parse(argv: readonly string[]): Args {
  const a: Args = { root: null, library: resolve('build/native/libgpushare.so'), nvml: undefined, imageEnv: [], containerEnv: [], pods: [], missing: 'fail', timeoutMs: 300_000, path: 'dra', argv: [] };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    if (flag === '--') {
      a.argv = argv.slice(i + 1);
      break;
    }
    const value = argv[++i];
    if (value === undefined) usage(`${flag} needs a value`);
    if (flag === '--root') a.root = value;
    else if (flag === '--library') a.library = resolve(value);
    else if (flag === '--nvml') a.nvml = value;
    else if (flag === '--image-env') a.imageEnv.push(value);
    else if (flag === '--container-env') a.containerEnv.push(value);
    else if (flag === '--missing-devices' && (value === 'fail' || value === 'report')) a.missing = value;
    else if (flag === '--timeout' && Number(value) > 0) a.timeoutMs = Number(value) * 1000;
    else if (flag === '--path' && (value === 'dra' || value === 'allocate')) a.path = value;
    else if (flag === '--pod') {
      const m = /^([a-z0-9](?:[a-z0-9-]*[a-z0-9])?):([0-9]+(?:Ki|Mi|Gi)?):([0-9]{1,3})$/.exec(value);
      if (m === null || Number(m[3]) > 100) usage(`--pod ${value}: expected NAME:MEMORY:CORES, e.g. pod-a:20Gi:30 (cores 0-100)`);
      a.pods.push({ name: m[1] as string, memory: m[2] as string, cores: Number(m[3]) });
    } else usage(`unknown or malformed option ${flag} ${value}`);
  }
  if (a.pods.length === 0) usage('give at least one --pod');
  if (a.argv.length === 0) usage('give the pods\' command after --');
  return a;
}

async function main(): Promise<void> {
  const args = parse(process.argv.slice(2));
  const backend = new NvmlBackend(args.nvml === undefined ? {} : { path: args.nvml });
  const gpus = backend.gpus();
  backend.close();
  const root = args.root ?? mkdtempSync(join(tmpdir(), 'gs-pods-'));
  const pods: PodDefinition[] = args.pods.map((p) => ({ ...p, argv: args.argv, containerEnv: args.containerEnv }));
  try {
    const report = await runPodsFlow({
      root, gpus, library: args.library, pods, execute: 'run', missingDevices: args.missing, timeoutMs: args.timeoutMs, path: args.path,
      ...(args.imageEnv.length === 0 ? {} : { imageEnv: args.imageEnv }),
    });
    process.stdout.write(`${JSON.stringify({ gpus: gpus.map((g) => ({ index: g.index, uuid: g.uuid, name: g.name, memoryTotalBytes: g.memoryTotalBytes })), ...report })}\n`);
    if (report.refusal !== null) {
      process.stderr.write(`pods-run: ${report.refusal}\n`);
      process.exitCode = 3;
    }
  } finally {
    if (args.root === null) rmSync(root, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`pods-run: ${(e as Error).message}\n`);
  process.exit(1);
});
