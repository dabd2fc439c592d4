// Reads a TAP stream from tap on stdin, echoes a readable digest, and ends with "N passed, M failed".
// A test is a point one level inside a file (a t.test or a top-level assertion); a file that fails with no
// failing test inside (crash, timeout) counts as one failure.
import { createInterface } from 'node:readline';

let passed = 0;
let failed = 0;
let skipped = 0;
let fileFailures = 0;
let currentFile = '';
const failures = [];
for await (const line of createInterface({ input: process.stdin })) {
  const inner = /^ {4}(not ok|ok) \d+ - (.*?)(?: # (SKIP|TODO).*)?$/.exec(line);
  if (inner) {
    if (inner[3]) skipped++;
    else if (inner[1] === 'ok') passed++;
    else {
      failed++;
      fileFailures++;
      failures.push(`${currentFile}: ${inner[2]}`);
    }
    continue;
  }
  const sub = /^# Subtest: (.*)$/.exec(line);
  if (sub) {
    currentFile = sub[1];
    fileFailures = 0;
    continue;
  }
  const file = /^(not ok|ok) \d+ - (.*?)(?: #.*)?$/.exec(line);
  if (file) {
    console.log(`${file[1] === 'ok' ? 'ok    ' : 'FAILED'} ${file[2]}`);
    if (file[1] !== 'ok' && fileFailures === 0) {
      failed++;
      failures.push(`${file[2]}: the file itself failed (crash or timeout)`);
    }
  }
}
if (failures.length) {
  console.log('\nfailures:');
  for (const f of failures) console.log(`  ${f}`);
}
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
