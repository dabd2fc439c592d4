// The validation runner's counting rules (test/oci-validation/run.mjs), as test/oci-validation/README.md
// states them: what counts as passed, failed and skipped, and when a program is PASS, FAIL or ERROR.
import t from 'tap';
import { countTap, judge } from '../oci-validation/run.mjs';

const verdict = (tap: string, exitCode = 0, timedOut = false) => judge(countTap(tap), exitCode, timedOut);

t.test('top-level ok passes, not ok fails, SKIP and TODO are skipped', async tt => {
  const v = verdict('TAP version 13\nok 1 - a\nnot ok 2 - b\nok 3 # SKIP no x\nnot ok 4 # TODO later\n1..4\n');
  tt.same([v.status, v.passed, v.failed, v.skipped], ['FAIL', 1, 1, 2]);
});

t.test('indented runtimetest output quoted in YAML is not counted', async tt => {
  const v = verdict('TAP version 13\n  ---\n  {\n    "stdout": "not ok 1 - inner"\n  }\n  ...\nok 1 - outer\n1..1\n');
  tt.same([v.status, v.passed, v.failed], ['PASS', 1, 0]);
});

t.test('planned points never reported are failed', async tt => {
  const v = verdict('TAP version 13\n1..5\nok 1 - a\nok 2 - b\n');
  tt.same([v.status, v.passed, v.failed], ['FAIL', 2, 3]);
});

t.test('a non-zero exit is ERROR with at least one failed point', async tt => {
  const v = verdict('', 1);
  tt.same([v.status, v.passed, v.failed], ['ERROR', 0, 1]);
  const partial = verdict('TAP version 13\nok 1 - a\n', 2);
  tt.same([partial.status, partial.passed, partial.failed], ['ERROR', 1, 1]);
});

t.test('a timeout is ERROR', async tt => {
  tt.equal(verdict('TAP version 13\nok 1 - a\n1..1\n', 124, true).status, 'ERROR');
});

t.test('a clean exit with no points is one pass (hook and *_fail programs)', async tt => {
  const v = verdict('TAP version 13\n1..0\n');
  tt.same([v.status, v.passed, v.failed], ['PASS', 1, 0]);
  tt.same(verdict('').passed, 1);
});

t.test('a YAML error as the only output is one failure (how hook programs fail)', async tt => {
  const v = verdict('TAP version 13\n  ---\n  {\n    "error": "Hooks MUST be called in the listed order"\n  }\n  ...\n1..0\n');
  tt.same([v.status, v.passed, v.failed], ['FAIL', 0, 1]);
  const empty = verdict('TAP version 13\n  ---\n  {\n    "error": ""\n  }\n  ...\nok 1 - a\n1..1\n');
  tt.equal(empty.status, 'PASS', 'an empty "error" is no error');
});
