import { describe, expect, it } from 'vitest';
import { labelText, writeFamilies, writeFamily } from './text.js';

describe('the exposition writer', () => {
  it('escapes label values as the text format wants (backslash, double quote, newline)', () => {
    expect(labelText({ task: 'a"b\\c\nd', tenant: 'ml' })).toBe('task="a\\"b\\\\c\\nd",tenant="ml"');
  });

  it("writes a table's families over labelled items: one value, none (null), or several with labels of their own", () => {
    const out: string[] = [];
    const items = [['a="1"', 2], ['', 3]] as const;
    writeFamilies(out, false, items, [
      ['one', 'One.', 'gauge', (x) => (x === 3 ? null : x)],
      ['many', 'Many.', 'gauge', (x) => [['k="p"', x], ['k="q"', -x]]],
    ]);
    expect(out).toEqual(['# HELP one One.', '# TYPE one gauge', 'one{a="1"} 2', '# HELP many Many.', '# TYPE many gauge', 'many{a="1",k="p"} 2', 'many{a="1",k="q"} -2', 'many{k="p"} 3', 'many{k="q"} -3']);
  });

  it('names a counter with _total in the Prometheus text format, and its family without it in OpenMetrics', () => {
    const text: string[] = [];
    writeFamily(text, false, 'x_total', 'A count.\nSecond line', 'counter', [['a="1"', 3], ['', Infinity]]);
    expect(text).toEqual(['# HELP x_total A count.\\nSecond line', '# TYPE x_total counter', 'x_total{a="1"} 3', 'x_total +Inf']);
    const om: string[] = [];
    writeFamily(om, true, 'x_total', 'A count.', 'counter', [['a="1"', 3]]);
    expect(om).toEqual(['# HELP x A count.', '# TYPE x counter', 'x_total{a="1"} 3']);
    const gauge: string[] = [];
    writeFamily(gauge, true, 'y_ratio', 'A ratio.', 'gauge', [['', Number.NaN]]);
    expect(gauge).toEqual(['# HELP y_ratio A ratio.', '# TYPE y_ratio gauge', 'y_ratio NaN']);
  });
});
