import type { Command } from 'commander';
import { registerGpus } from './gpus.js';
import { registerInfo } from './info.js';
import { registerSimulate } from './simulate.js';

/** Every top-level command, in the order `gpushare --help` lists them. */
export const commands: ReadonlyArray<(program: Command) => void> = [registerGpus, registerInfo, registerSimulate];
