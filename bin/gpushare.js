#!/usr/bin/env node
// Entry point installed as `gpushare`; the CLI itself is compiled TypeScript in dist/.
import { main } from '../dist/cli/main.js';

process.exitCode = await main(process.argv);
