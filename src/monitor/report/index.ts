/** `gpushare report`: gather from the API, build the model, render it in one of three forms. */
import { renderHtml } from './html.js';
import { renderMarkdown } from './markdown.js';
import type { Report } from './model.js';

export { buildReport, type Report, type ReportInputs, type ReportTask } from './model.js';
export { gatherReportInputs, type ReportApi } from './gather.js';

export const REPORT_FORMATS = ['html', 'md', 'json'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

export function renderReport(report: Report, format: ReportFormat): string {
  if (format === 'html') return renderHtml(report);
  if (format === 'md') return renderMarkdown(report);
  return `${JSON.stringify(report, null, 2)}\n`;
}
