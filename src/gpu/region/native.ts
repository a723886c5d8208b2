import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** build/native/region/ of this checkout, where native/region/region.mk puts its outputs. */
export const REGION_BUILD_DIR = fileURLToPath(new URL('../../../build/native/region/', import.meta.url));

/** The tools native/region/region.mk builds for the TypeScript tests. */
export type RegionTool = 'region_layout' | 'board_layout' | 'region_fixture';

/** The path of a built region tool, or an error that says how to build it. */
export function regionTool(name: RegionTool): string {
  const path = `${REGION_BUILD_DIR}${name}`;
  if (!existsSync(path)) {
    throw new Error(`${path} is missing: build it with \`make -C native -f region/region.mk\` (from the repository root)`);
  }
  return path;
}
