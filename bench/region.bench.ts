// Region attach time with 1, 64 and 512 processes (issue 3): runs the release build of
// native/region/tests/test_region_attach.c and prints its table. Method: each process times
// gs_region_open (map + attach, reclaim pass included); "sequential" attaches one process
// at a time while all earlier ones stay attached, "burst" starts them all at once.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../build/native/region/region_attach_bench', import.meta.url));
if (!existsSync(bin)) {
  console.error(`${bin} is missing: build it with \`make -C native -f region/region.mk\``);
  process.exit(2);
}
const r = spawnSync(bin, process.argv.slice(2), { encoding: 'utf8' });
const lines = r.stdout.split('\n');
for (const line of lines) if (!line.startsWith('--') && !line.startsWith('region_attach_json:') && line !== '') console.log(line);
if (r.status !== 0) {
  console.error(r.stderr);
  process.exit(1);
}
