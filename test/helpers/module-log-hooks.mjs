// Module-loader hooks for cli-startup.test.ts: appends every URL loaded through the ESM loader
// to the file named by GPUSHARE_TEST_MODULE_LOG (hooks run off the main thread, so a file it is).
import { appendFileSync } from 'node:fs';
import { register } from 'node:module';

export async function load(url, context, next) {
  const log = process.env['GPUSHARE_TEST_MODULE_LOG'];
  if (log) appendFileSync(log, `${url}\n`);
  return next(url, context);
}

if (process.env['GPUSHARE_TEST_MODULE_LOG'] && !process.env['GPUSHARE_TEST_MODULE_LOG_REGISTERED']) {
  process.env['GPUSHARE_TEST_MODULE_LOG_REGISTERED'] = '1';
  register(import.meta.url);
}
