// No import cycles in src/: every module can be read, loaded and tested from its imports down. Type-only
// imports count too (a cycle of types still ties two modules together). The graph comes from TypeScript's
// own import scanner, so comments and strings that look like imports do not count.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap(e => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

/** Each module's imports of src/ modules, as paths relative to src/; `unresolved` lists those that name no file. */
function importGraph(): { graph: Map<string, string[]>; unresolved: string[] } {
  const graph = new Map<string, string[]>();
  const unresolved: string[] = [];
  for (const file of sourceFiles(SRC)) {
    const from = path.relative(SRC, file);
    const specs = ts.preProcessFile(fs.readFileSync(file, 'utf8'), true, true).importedFiles.map(i => i.fileName);
    const deps: string[] = [];
    for (const spec of specs.filter(s => s.startsWith('.'))) {
      const target = path.resolve(path.dirname(file), spec);
      // The native addon, built outside src/, imports nothing of ours.
      if (!target.startsWith(`${SRC}/`)) continue;
      const found = [target.replace(/\.js$/, '.ts'), target].find(f => fs.existsSync(f));
      if (found) deps.push(path.relative(SRC, found));
      else unresolved.push(`${from}: ${spec}`);
    }
    graph.set(from, deps);
  }
  return { graph, unresolved };
}

/** One cycle per strongly connected group of modules (Tarjan), as "a -> b -> a". */
function importCycles(graph: Map<string, string[]>): string[] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const group = new Set<string>();
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      group.add(w);
    } while (w !== v);
    if (group.size > 1 || graph.get(v)?.includes(v)) cycles.push(cycleThrough(v, group, graph));
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return cycles;
}

/** A shortest way from `start` back to itself inside its group: the imports to look at first. */
function cycleThrough(start: string, group: Set<string>, graph: Map<string, string[]>): string {
  const before = new Map<string, string>();
  const queue = [start];
  for (let i = 0; i < queue.length; i++) {
    const v = queue[i]!;
    for (const w of graph.get(v) ?? []) {
      if (w === start) {
        const way = [start];
        for (let u: string | undefined = v; u !== start && u !== undefined; u = before.get(u)) way.splice(1, 0, u);
        return [...way, start].join(' -> ');
      }
      if (group.has(w) && !before.has(w)) {
        before.set(w, v);
        queue.push(w);
      }
    }
  }
  return start;
}

t.test('the cycle finder names a cycle and passes a tree', async t => {
  const g = new Map([
    ['a.ts', ['b.ts']],
    ['b.ts', ['c.ts', 'd.ts']],
    ['c.ts', ['a.ts']],
    ['d.ts', []],
    ['e.ts', ['e.ts']],
  ]);
  t.same(importCycles(g), ['a.ts -> b.ts -> c.ts -> a.ts', 'e.ts -> e.ts']);
  t.same(
    importCycles(
      new Map([
        ['a.ts', ['b.ts', 'c.ts']],
        ['b.ts', ['c.ts']],
        ['c.ts', []],
      ]),
    ),
    [],
  );
});

t.test('no import cycles in src/', async t => {
  const { graph, unresolved } = importGraph();
  t.ok(graph.size > 50, `read ${graph.size} modules`);
  t.same(unresolved, [], 'every relative import names a file');
  t.same(importCycles(graph), []);
});
