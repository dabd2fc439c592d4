// Types of what check-paths.mjs exports, for test/unit/check-paths.test.ts.
export interface Finding {
  file: string;
  line: number;
  rule: 'shared' | 'above-root' | 'cited-outside' | 'machine-path' | 'missing-doc' | 'engine-by-name';
  text: string;
}
export function listFiles(root: string): string[];
export function machinePaths(root: string): string[];
export function checkPaths(root: string, files?: string[]): Finding[];
