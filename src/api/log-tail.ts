/**
 * Where the last lines of a log file start (`gpushare logs --tail N`): read backwards a chunk at
 * a time, so a large log costs what its tail does, not its size.
 */
import { open } from 'node:fs/promises';

const CHUNK = 64 * 1024;

/**
 * The byte offset at which the last `lines` lines of the file begin (0: the whole file; its size
 * for 0 lines). A last line without its newline counts as a line; a missing file is offset 0.
 */
export async function tailOffset(path: string, lines: number): Promise<number> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch {
    return 0; // not created yet: the task has not started, and whatever comes is its tail
  }
  try {
    const size = (await handle.stat()).size;
    if (lines === 0) return size;
    const buf = Buffer.alloc(CHUNK);
    let end = size;
    let seen = 0;
    // A newline that ends the file ends the last line; it does not start another.
    let skipLast = true;
    while (end > 0) {
      const start = Math.max(0, end - CHUNK);
      const { bytesRead } = await handle.read(buf, 0, end - start, start);
      for (let i = bytesRead - 1; i >= 0; i -= 1) {
        if (buf[i] !== 0x0a) {
          skipLast = false;
          continue;
        }
        if (skipLast) {
          skipLast = false;
          continue;
        }
        seen += 1;
        if (seen === lines) return start + i + 1;
      }
      end = start;
    }
    return 0;
  } finally {
    await handle.close();
  }
}
