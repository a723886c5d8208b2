/**
 * `gpushare simulate`, loaded when it runs (see simulate.ts): replays a trace (shared/traces/alibaba-gpu-v2023 format) through the
 * scheduler and reports allocation, fragmentation and failures. The replay itself is pure
 * (src/scheduler/sim); this file reads the CSVs, shows progress and writes the outputs.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { describeIssues, ErrorCodes, GsError } from '../../domain/index.js';
import { parsePolicy, POLICY_NAMES, type Policy } from '../../scheduler/policy.js';
import { jsonDocument, parseSeeds, placementsCsv, reportHtml, summarize, summaryTable } from '../../scheduler/sim/output.js';
import { replay, type ReplayResult } from '../../scheduler/sim/replay.js';
import { parseNodeList, parsePodList, POD_ISOLATIONS, TraceFormatError, type PodIsolation } from '../../scheduler/sim/trace.js';

/** `gpushare simulate`'s flags (simulate.ts declares them). */
export interface SimulateOptions {
  nodes: string;
  pods: string;
  policy: string;
  seeds: string;
  inflate: string;
  json?: boolean;
  placements?: string;
  report?: string;
  isolation: string;
}

function invalid(message: string): GsError {
  return new GsError(ErrorCodes.invalidArgument, message);
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (cause) {
    // A missing or unreadable input is bad usage (exit 2), like a malformed one.
    throw new GsError(ErrorCodes.invalidArgument, `cannot read the ${what} ${path}: ${(cause as Error).message}`, { cause });
  }
}

function policies(text: string): Policy[] {
  const names = text.trim() === 'all' ? [...POLICY_NAMES] : text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (names.length === 0) throw invalid('--policy: give at least one policy');
  return names.map((n) => {
    const r = parsePolicy(n);
    if (!r.ok) throw invalid(`--policy: ${describeIssues(r.issues)}`);
    return r.value;
  });
}

/** Writes progress to stderr, but only once a run has taken more than a second. */
function progressReporter(label: string): { update: (done: number, total: number) => void; end: () => void } {
  const started = performance.now();
  const tty = process.stderr.isTTY === true;
  let shown = false;
  let lastTenth = -1;
  return {
    update(done, total) {
      if (performance.now() - started < 1000) return;
      const pct = Math.floor((100 * done) / total);
      if (tty) {
        process.stderr.write(`\r${label}: ${pct}% (${done}/${total} pods)`);
        shown = true;
      } else if (Math.floor(pct / 10) > lastTenth) {
        lastTenth = Math.floor(pct / 10);
        process.stderr.write(`${label}: ${pct}% (${done}/${total} pods)\n`);
      }
    },
    end() {
      if (shown) process.stderr.write(`\r${label}: done in ${((performance.now() - started) / 1000).toFixed(1)} s\x1b[K\n`);
    },
  };
}

export function runSimulate(opts: SimulateOptions): void {
  const inflate = Number(opts.inflate);
  if (!Number.isFinite(inflate) || inflate <= 0 || inflate > 10) throw invalid(`--inflate: "${opts.inflate}" is not a ratio between 0 and 10`);
  const seedsResult = parseSeeds(opts.seeds);
  if (!seedsResult.ok) throw invalid(`--seeds: ${describeIssues(seedsResult.issues)}`);
  const seeds = seedsResult.value;
  const pols = policies(opts.policy);
  const isolation = opts.isolation as PodIsolation;
  if (!POD_ISOLATIONS.includes(isolation)) throw invalid(`--isolation: "${opts.isolation}" is not one of ${POD_ISOLATIONS.join(', ')}`);
  let nodes;
  let pods;
  try {
    nodes = parseNodeList(readText(opts.nodes, 'node list'), opts.nodes);
    pods = parsePodList(readText(opts.pods, 'pod list'), opts.pods);
  } catch (e) {
    if (e instanceof TraceFormatError) throw invalid(e.message);
    throw e;
  }
  if (nodes.length === 0) throw invalid(`${opts.nodes}: no nodes`);

  const results: ReplayResult[] = [];
  const several = pols.length * seeds.length > 1;
  for (const policy of pols) {
    for (const seed of seeds) {
      const progress = progressReporter(`simulate ${policy.name} seed ${seed}`);
      const result = replay(nodes, pods, { policy, seed, inflate, isolation, keepRecords: opts.placements !== undefined, onProgress: progress.update, progressEvery: 250 });
      progress.end();
      if (opts.placements !== undefined) {
        const path = several ? runPath(opts.placements, policy.name, seed) : opts.placements;
        writeFileSync(path, placementsCsv(result));
        if (several) process.stderr.write(`placements: ${path}\n`);
      }
      results.push(result);
    }
  }
  if (opts.report !== undefined) writeFileSync(opts.report, reportHtml(`gpushare simulate: ${opts.pods}`, results, inflate));
  if (opts.json) process.stdout.write(JSON.stringify(jsonDocument({ nodes: opts.nodes, pods: opts.pods, inflate, seeds }, results), null, 2) + '\n');
  else process.stdout.write(summaryTable(summarize(results), inflate) + '\n');
}

/** `out.csv` -> `out-POLICY-SEED.csv`, with the policy made safe for a file name. */
function runPath(path: string, policy: string, seed: number): string {
  const safe = policy.replace(/[^A-Za-z0-9_.-]+/g, '_');
  const dot = path.lastIndexOf('.');
  return dot > path.lastIndexOf('/') ? `${path.slice(0, dot)}-${safe}-${seed}${path.slice(dot)}` : `${path}-${safe}-${seed}`;
}
