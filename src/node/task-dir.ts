/**
 * A finished task's directory in the state directory (launcher.ts taskFiles: its logs, exit
 * status, claim and, without a sandbox, its region): how much it holds, and its removal when
 * the task is (`gpushare rm`, `prune`).
 */
import { readdirSync, statSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';

/** Bytes held by the files directly in `dir` (a task's directory has no subdirectories); 0 when it is gone. */
export function diskUse(dir: string): number {
  let bytes = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    try {
      const st = statSync(join(dir, name));
      if (st.isFile()) bytes += st.size;
    } catch {
      // Gone meanwhile: it holds nothing.
    }
  }
  return bytes;
}

/** Removes the directory and what is in it, off the event loop; one already gone is no error. */
export function removeDir(dir: string): Promise<void> {
  return rm(dir, { recursive: true, force: true });
}
