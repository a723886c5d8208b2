/**
 * Aligned columns in the style of `kubectl get` and `docker ps`: upper-case headers, two spaces
 * between columns, no borders, so output stays greppable and fits narrow terminals.
 * (Table libraries draw boxes or need per-cell configuration for this; it is ten lines.)
 * `headers: false` (--no-headers) leaves the header row out; the columns keep their widths.
 */
export function renderTable(headers: readonly string[], rows: ReadonlyArray<readonly string[]>, options: { readonly headers?: boolean } = {}): string {
  const widths = headers.map((h, i) => Math.max(options.headers === false ? 0 : h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return [...(options.headers === false ? [] : [line(headers)]), ...rows.map(line)].join('\n');
}
