/**
 * Writing CDI specs (and the plugin's other small state files) so that a reader (the container
 * runtime's CDI cache, or the plugin after a crash) sees the old file or the new one, never
 * half of one: write a temporary file in the same directory, fsync it, rename it over the name.
 */
import { closeSync, fsyncSync, openSync, readdirSync, renameSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';

/** The temporary names this module leaves behind if killed mid-write (removed at start by removeTemporaries). */
const TEMP_MARK = '.gstmp-';

/**
 * Writes `text` to `path` atomically (temp + rename); the file gets `mode`. `durable`: fsync
 * before the rename, so a power loss leaves the old file or the new one (a rename alone only
 * guarantees that against a crash of the process).
 */
export function writeFileAtomic(path: string, text: string, mode = 0o644, durable = true): void {
  const dir = path.slice(0, path.lastIndexOf('/')) || '/';
  const temp = join(dir, `${TEMP_MARK}${process.pid}-${path.slice(dir.length + 1)}`);
  const fd = openSync(temp, 'w', mode);
  try {
    writeSync(fd, text);
    if (durable) fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw e;
  }
  closeSync(fd);
  try {
    renameSync(temp, path);
  } catch (e) {
    rmSync(temp, { force: true });
    throw e;
  }
}

/** Removes a file; true if it was there. */
export function removeFile(path: string): boolean {
  try {
    unlinkSync(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/** Removes the temporary files a write killed half-way left in `dir`; the names removed. */
export function removeTemporaries(dir: string): string[] {
  const gone = readdirSync(dir).filter((f) => f.startsWith(TEMP_MARK));
  for (const f of gone) rmSync(join(dir, f), { force: true });
  return gone;
}
