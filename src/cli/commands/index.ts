import type { Command } from 'commander';

/** A top-level command (or two registered together), named so that its module loads only when needed. */
export interface CommandEntry {
  readonly names: readonly string[];
  readonly load: () => Promise<(program: Command) => void>;
  /** It reads the whole command tree (completion), so every command is registered for it. */
  readonly needsAll?: boolean;
}

/** Every top-level command, in the order `gpushare --help` lists them. */
export const commands: readonly CommandEntry[] = [
  { names: ['serve'], load: async () => (await import('./serve.js')).registerServe },
  { names: ['run'], load: async () => (await import('./run.js')).registerRun },
  { names: ['remote'], load: async () => (await import('./remote.js')).registerRemote },
  { names: ['ps'], load: async () => (await import('./ps.js')).registerPs },
  { names: ['logs'], load: async () => (await import('./logs.js')).registerLogs },
  { names: ['inspect'], load: async () => (await import('./inspect.js')).registerInspect },
  { names: ['kill'], load: async () => (await import('./kill.js')).registerKill },
  { names: ['rm'], load: async () => (await import('./rm.js')).registerRm },
  { names: ['prune'], load: async () => (await import('./prune.js')).registerPrune },
  { names: ['suspend', 'resume'], load: async () => (await import('./suspend.js')).registerSuspend },
  { names: ['move'], load: async () => (await import('./move.js')).registerMove },
  { names: ['gpus'], load: async () => (await import('./gpus.js')).registerGpus },
  { names: ['gpu'], load: async () => (await import('./gpu.js')).registerGpu },
  { names: ['top'], load: async () => (await import('./top.js')).registerTop },
  { names: ['history'], load: async () => (await import('./history.js')).registerHistory },
  { names: ['report'], load: async () => (await import('./report.js')).registerReport },
  { names: ['tenant'], load: async () => (await import('./tenant.js')).registerTenant },
  { names: ['token'], load: async () => (await import('./token.js')).registerToken },
  { names: ['audit'], load: async () => (await import('./tenant.js')).registerAudit },
  { names: ['alerts'], load: async () => (await import('./alerts.js')).registerAlerts },
  { names: ['silence'], load: async () => (await import('./alerts.js')).registerSilence },
  { names: ['info'], load: async () => (await import('./info.js')).registerInfo },
  { names: ['simulate'], load: async () => (await import('./simulate.js')).registerSimulate },
  { names: ['k8s'], load: async () => (await import('./k8s.js')).registerK8s },
  { names: ['completion'], load: async () => (await import('./completion.js')).registerCompletion, needsAll: true },
];

/**
 * The commands to register for this command line. The top level takes no option with a value,
 * so a first argument that names a command is that command, and commander dispatches to it
 * alone: its siblings would change nothing but start-up time. `--version` as the first argument
 * prints and exits while options are parsed, before any command is looked at. Anything else
 * (top-level help, `help CMD`, an unknown command and its suggestions, and `completion`, which
 * reads the tree) gets every command.
 */
export function commandsFor(argv: readonly string[]): readonly CommandEntry[] {
  const first = argv[2];
  if (first === '-v' || first === '--version') return [];
  const named = commands.find((c) => first !== undefined && c.names.includes(first));
  return named && !named.needsAll ? [named] : commands;
}
