/** The queries of deploy/grafana/gpushare.json and the gpushare metric names they read, for the tests that check it against a scrape. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './cli.js';

export interface DashboardPanel {
  readonly title: string;
  readonly type: string;
  /** Each target's gpushare_* names (a histogram's _bucket/_sum/_count as written). */
  readonly targets: readonly (readonly string[])[];
}

export interface DashboardQueries {
  readonly panels: readonly DashboardPanel[];
  /** Each templating variable with a query, by name, with the names its query reads. */
  readonly variables: readonly { readonly name: string; readonly metrics: readonly string[] }[];
}

const namesIn = (expr: string): string[] => [...new Set([...expr.matchAll(/\bgpushare_[a-z_]+/g)].map((m) => m[0]))];

export function dashboardQueries(): DashboardQueries {
  const json = JSON.parse(readFileSync(join(REPO_ROOT, 'deploy/grafana/gpushare.json'), 'utf8')) as {
    panels: { title: string; type: string; targets?: { expr: string }[] }[];
    templating: { list: { name: string; query?: unknown }[] };
  };
  return {
    panels: json.panels.map((p) => ({ title: p.title, type: p.type, targets: (p.targets ?? []).map((t) => namesIn(t.expr)) })),
    variables: json.templating.list.flatMap((v) => (typeof v.query === 'object' && v.query !== null ? [{ name: v.name, metrics: namesIn((v.query as { query: string }).query) }] : [])),
  };
}
