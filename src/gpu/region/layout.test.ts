import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { BOARD_LAYOUT } from './board-layout.js';
import { REGION_LAYOUT } from './layout.js';
import { regionTool, type RegionTool } from './native.js';

type Layout = { constants: object; structs: Record<string, object> };

/**
 * Each binary layout's TypeScript constants against its compiled header: the shared region
 * (gpushare_region.h, region_layout) and the compute board (gpushare_board.h, board_layout).
 */
describe.each<[string, RegionTool, Layout]>([
  ['region', 'region_layout', REGION_LAYOUT],
  ['compute board', 'board_layout', BOARD_LAYOUT],
])('%s layout', (_name, tool, layout) => {
  const compiled = JSON.parse(execFileSync(regionTool(tool), { encoding: 'utf8' })) as Layout;

  it('has the constants of the header', () => {
    expect(layout.constants).toEqual(compiled.constants);
  });

  it.each(Object.keys(compiled.structs))('has every size and offset of %s', (name) => {
    expect(layout.structs[name]).toEqual(compiled.structs[name]);
  });

  it('knows no struct the header does not have', () => {
    expect(Object.keys(layout.structs).sort()).toEqual(Object.keys(compiled.structs).sort());
  });
});
