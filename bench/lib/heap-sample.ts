import { writeFileSync } from 'node:fs';

/**
 * This process's allocations, garbage included (V8's sampling heap profiler keeping the objects
 * scavenges and full collections took), from now until the returned function is called: then
 * written as `file` (a .heapprofile for Chrome's DevTools) and summed by function to stderr,
 * under `what`: what makes a process scavenge. With `survivorsOnly`, only the sampled objects no
 * collection took by then: what was allocated since and survived a scavenge (copied, or promoted
 * and not yet marked dead), what makes a scavenge long. Null when `file` is unset.
 */
export async function startHeapSampling(file: string | undefined, what: string, survivorsOnly = false): Promise<(() => Promise<void>) | null> {
  if (file === undefined || file === '') return null;
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: !survivorsOnly } as never);
  return async () => {
    const { profile } = (await session.post('HeapProfiler.stopSampling')) as { profile: { head: HeapNode } };
    writeFileSync(file, JSON.stringify(profile));
    const byFunction = new Map<string, number>();
    const walk = (n: HeapNode, path: string): void => {
      const self = n.selfSize;
      const where = `${n.callFrame.functionName || '(anonymous)'} ${n.callFrame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*\/src\//, 'src/')}:${n.callFrame.lineNumber + 1}`;
      if (self > 0) byFunction.set(where, (byFunction.get(where) ?? 0) + self);
      for (const c of n.children) walk(c, path);
    };
    walk(profile.head, '');
    const total = [...byFunction.values()].reduce((a, b) => a + b, 0);
    process.stderr.write(`${what} ${survivorsOnly ? 'survivors' : 'allocations'} sampled: ${(total / 2 ** 20).toFixed(1)} MiB; the top 25 functions by bytes ${survivorsOnly ? 'of their allocations still held' : 'allocated in them'}:\n`);
    for (const [where, bytes] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, 25)) process.stderr.write(`  ${(bytes / 2 ** 20).toFixed(2)} MiB ${((100 * bytes) / total).toFixed(1)}% ${where}\n`);
    session.disconnect();
  };
}
interface HeapNode { callFrame: { functionName: string; url: string; lineNumber: number }; selfSize: number; children: HeapNode[] }
