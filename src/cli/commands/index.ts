import type { Command } from 'commander';
import { registerGpus } from './gpus.js';
import { registerInfo } from './info.js';
import { registerInspect } from './inspect.js';
import { registerKill } from './kill.js';
import { registerLogs } from './logs.js';
import { registerPs } from './ps.js';
import { registerRun } from './run.js';
import { registerServe } from './serve.js';
import { registerSimulate } from './simulate.js';
import { registerSuspend } from './suspend.js';
import { registerTop } from './top.js';
import { registerAudit, registerTenant } from './tenant.js';

/** Every top-level command, in the order `gpushare --help` lists them. */
export const commands: ReadonlyArray<(program: Command) => void> = [
  registerServe,
  registerRun,
  registerPs,
  registerLogs,
  registerInspect,
  registerKill,
  registerSuspend,
  registerGpus,
  registerTop,
  registerTenant,
  registerAudit,
  registerInfo,
  registerSimulate,
];
