/**
 * The shell of `gpushare k8s controller`: flags and file to a config, the kubeconfig, start,
 * and a clean stop on SIGTERM (the kubelet's) or SIGINT: readiness fails first, in-flight
 * requests finish, the watches end, and the process exits 0.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { loadControllerConfig, type ControllerFlags } from './config.js';
import { startController, stderrLog } from './controller.js';

export async function runControllerCommand(flags: ControllerFlags & { readonly kubeconfig?: string }): Promise<void> {
  const config = loadControllerConfig(flags);
  const kc = new KubeConfig();
  if (flags.kubeconfig !== undefined) kc.loadFromFile(flags.kubeconfig);
  else kc.loadFromDefault();
  const running = await startController(config, kc);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const stop = (s: NodeJS.Signals): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(s);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  stderrLog('info', 'stopping', { signal });
  await running.close();
  stderrLog('info', 'stopped');
}
