import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { REGION_LAYOUT } from './layout.js';
import { regionTool } from './native.js';

/** The reader's layout constants against the compiled header (gpushare_region.h). */
describe('region layout', () => {
  const compiled = JSON.parse(execFileSync(regionTool('region_layout'), { encoding: 'utf8' })) as typeof REGION_LAYOUT;

  it('has the constants of the header', () => {
    expect(REGION_LAYOUT.constants).toEqual(compiled.constants);
  });

  it.each(Object.keys(compiled.structs))('has every size and offset of %s', (name) => {
    expect(REGION_LAYOUT.structs[name as keyof typeof REGION_LAYOUT.structs]).toEqual(compiled.structs[name as keyof typeof compiled.structs]);
  });

  it('knows no struct the header does not have', () => {
    expect(Object.keys(REGION_LAYOUT.structs).sort()).toEqual(Object.keys(compiled.structs).sort());
  });
});
