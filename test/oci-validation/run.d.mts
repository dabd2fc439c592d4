// Types of what run.mjs exports (its counting rules), for the TypeScript tests.
export interface TapCounts {
  plan: number;
  ok: number;
  notOk: number;
  skip: number;
  todo: number;
  yamlErrors: number;
  notOkLines: string[];
  errorLines: string[];
  stderrLines: string[];
}
export interface Verdict {
  status: 'PASS' | 'FAIL' | 'ERROR';
  ok: number;
  err: number;
  passed: number;
  failed: number;
  skipped: number;
}
export function countTap(text: string): TapCounts;
export function judge(counts: TapCounts, exitCode: number, timedOut: boolean): Verdict;
