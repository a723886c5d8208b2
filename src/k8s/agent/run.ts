/**
 * `gpushare k8s node` as a function: configuration (flags over file, checked before anything
 * opens), the GPU backend, the API-server connection, the checkpoint API, the agent; then it
 * runs until SIGTERM or SIGINT and stops cleanly (see agent.ts for what a stop keeps).
 */
import { once } from 'node:events';
import { pino } from 'pino';
import { openCheckpointApi } from '../../gpu/checkpoint.js';
import { openBackend } from '../../gpu/open.js';
import { loadKubeConfig } from '../api/client.js';
import { startNodeAgent, type StartClassicPlugin } from './agent.js';
import { resolveAgentConfig, type AgentFlags } from './config.js';

/** Runs the agent until a stop signal; `startClassic` replaces the built-in device plugin (tests). */
export async function runNodeAgent(flags: AgentFlags, startClassic?: StartClassicPlugin): Promise<void> {
  const config = resolveAgentConfig(flags);
  // Synchronous like the daemon's log: the last lines before a crash are the ones that matter.
  const log = pino({ level: config.logLevel, base: { component: 'gpushare-node-agent', node: config.nodeName } }, pino.destination({ dest: 2, sync: true }));
  const opened = openBackend({ backend: config.backend.choice, simulate: config.backend.simulate });
  if (opened.notice !== null) log.warn({ event: 'agent.backend' }, opened.notice);
  const checkpoint = openCheckpointApi();
  if (!checkpoint.ok) log.warn({ event: 'agent.checkpoint', error: checkpoint.error.message }, 'no CUDA checkpoint API: pods asked to suspend will be evicted (or left running) instead');
  try {
    const kubeConfig = loadKubeConfig(config.kube);
    const agent = await startNodeAgent({ config, backend: opened.backend, kubeConfig, log, checkpoint, ...(startClassic !== undefined ? { startClassic } : {}) });
    // Whichever stop signal comes first; the other's listener goes with the abort.
    const stop = new AbortController();
    await Promise.race(['SIGTERM', 'SIGINT'].map((name) => once(process, name, { signal: stop.signal }).catch(() => undefined)));
    stop.abort();
    await agent.close();
  } finally {
    if (checkpoint.ok) checkpoint.value.close();
    opened.backend.close();
  }
}
