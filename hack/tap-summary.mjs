// Reads tap's TAP stream on stdin while the suite runs and prints one line per finished test file: its passed
// and failed tests, its time, and the running totals (files done, passed, failed, wall time); then the
// failures, and last "N passed, M failed". A test is a point one level inside a file (a t.test or a top-level
// assertion); a file that fails with no failing test inside (crash, timeout) counts as one failure.
// TSRT_TEST_FILES, when set, is the number of files the run will have (shown as done/total).
import { createInterface } from 'node:readline';

const start = Date.now();
const expected = Number(process.env['TSRT_TEST_FILES'] ?? 0);
let passed = 0;
let failed = 0;
let skipped = 0;
let filesDone = 0;
let file = { name: '', passed: 0, failed: 0, skipped: 0 };
const failures = [];

/** m:ss of a duration in milliseconds. */
const clock = ms => `${Math.floor(ms / 60000)}:${String(Math.floor(ms / 1000) % 60).padStart(2, '0')}`;

for await (const line of createInterface({ input: process.stdin })) {
  const inner = /^ {4}(not ok|ok) \d+ - (.*?)(?: # (SKIP|TODO).*)?$/.exec(line);
  if (inner) {
    if (inner[3]) {
      skipped++;
      file.skipped++;
    } else if (inner[1] === 'ok') {
      passed++;
      file.passed++;
    } else {
      failed++;
      file.failed++;
      failures.push(`${file.name}: ${inner[2]}`);
    }
    continue;
  }
  const sub = /^# Subtest: (.*)$/.exec(line);
  if (sub) {
    file = { name: sub[1], passed: 0, failed: 0, skipped: 0 };
    continue;
  }
  // tap's own "timeout!" point repeats the failure of a file that ran out of time, which is counted already.
  if (/^not ok \d+ - timeout!$/.test(line)) continue;
  const done = /^(not ok|ok) \d+ - (.*?)(?: # time=([\d.]+)ms)?(?: #.*)?$/.exec(line);
  if (done) {
    filesDone++;
    if (done[1] !== 'ok' && file.failed === 0) {
      failed++;
      file.failed++;
      failures.push(`${done[2]}: the file itself failed (crash or timeout; see .tap/output.tap and .tap/stderr.log)`);
    }
    const counts = `${file.passed} passed, ${file.failed} failed${file.skipped ? `, ${file.skipped} skipped` : ''}`;
    const took = done[3] ? `${(Number(done[3]) / 1000).toFixed(1)} s` : '';
    const progress = `${filesDone}${expected ? `/${expected}` : ''} files, ${passed} passed, ${failed} failed, ${clock(Date.now() - start)}`;
    console.log(`${done[1] === 'ok' ? 'ok    ' : 'FAILED'} ${done[2].padEnd(46)} ${counts.padEnd(24)} ${took.padStart(8)}  | ${progress}`);
  }
}
if (failures.length) {
  console.log('\nfailures:');
  for (const f of failures) console.log(`  ${f}`);
}
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
