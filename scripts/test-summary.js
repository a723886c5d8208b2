// Prints the totals of the last vitest run as one plain closing line ("N passed, N failed"),
// which CI systems that do not know vitest's own summary can read.
import { readFileSync } from 'node:fs';

const file = process.argv[2] ?? 'build/test-results.json';
let results;
try {
  results = JSON.parse(readFileSync(file, 'utf8'));
} catch (err) {
  console.error(`test-summary: cannot read ${file}: ${err.message}`);
  process.exit(1);
}
const skipped = results.numPendingTests + results.numTodoTests;
console.log(`tests: ${results.numPassedTests} passed, ${results.numFailedTests} failed${skipped > 0 ? `, ${skipped} skipped` : ''}`);
process.exit(results.numFailedTests === 0 && results.numTotalTests > 0 ? 0 : 1);
