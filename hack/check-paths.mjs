#!/usr/bin/env node
// Fails on any path in the sources, tests, scripts and docs that leaves the repository: a clone with nothing
// beside it must build, test and read the same. Run by .ci/run and by test/unit/check-paths.test.ts.
//   node hack/check-paths.mjs [ROOT]      prints file:line: what is wrong, then "check-paths: N findings"
// What it looks for (each finding names its rule):
//   shared          ../shared, the reference material beside a developer's checkout
//   above-root      a path the code resolves from its own file (import, new URL(…, import.meta.url),
//                   $(dirname "$0")/…, #include, a markdown link) or from REPO that climbs above the root
//   cited-outside   a ../ path in a comment or a doc that leaves the repository from the file and from the root
//   machine-path    an absolute path of the machine the checkout is on (/work, the checkout's own directory)
//   missing-doc     a comment or doc citing a .md file the repository does not have (the OCI runtime-spec's
//                   documents, cited by their names, are the exception)
//   engine-by-name  docker, podman, ctr, containerd, runc, crun or conmon run by name: /usr/local/bin may hold
//                   other versions than Debian's, so they are named by absolute path
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** What is checked: the sources, tests, scripts, native code, CI and docs. */
const SCOPE = ['src', 'test', 'hack', 'native', 'docs', 'man', '.ci', 'schemas', 'package.json'];
const TOP_DOCS = /^[^/]+\.md$/;
const SKIP_DIRS = new Set(['node_modules', 'dist', 'build', '.tap', 'bundles', '.git']);
/** This checker and its test hold the very patterns they look for. */
const SELF = new Set(['hack/check-paths.mjs', 'hack/check-paths.d.mts', 'test/unit/check-paths.test.ts']);

/** The runtime-spec's own documents: code cites them by name ("config-linux.md"), they are not ours to hold. */
const RUNTIME_SPEC_DOCS = new Set([
  'bundle.md',
  'config.md',
  'config-linux.md',
  'config-solaris.md',
  'config-windows.md',
  'config-vm.md',
  'config-zos.md',
  'config-freebsd.md',
  'features.md',
  'features-linux.md',
  'glossary.md',
  'implementations.md',
  'principles.md',
  'runtime.md',
  'runtime-linux.md',
  'spec.md',
  'state.md',
]);

/** Directories whose name says nothing about one machine: a checkout's parent there is not flagged. */
const GENERIC_PARENTS = new Set(['/', '/tmp', '/var/tmp', '/opt', '/srv', '/home', '/root', '/usr/src', '/usr/local/src', '/mnt']);

const ENGINES = 'docker|dockerd|podman|ctr|containerd|runc|crun|conmon';

/** The files to check: git's list (tracked and new, not ignored) when ROOT is a checkout, else a walk. */
export function listFiles(root) {
  let names;
  try {
    names = execFileSync('git', ['-C', root, 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    })
      .split('\0')
      .filter(Boolean);
  } catch {
    names = [];
    const walk = rel => {
      for (const e of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
        const r = rel ? `${rel}/${e.name}` : e.name;
        if (e.isDirectory()) {
          if (!SKIP_DIRS.has(e.name)) walk(r);
        } else if (e.isFile()) names.push(r);
      }
    };
    walk('');
  }
  return names.filter(
    f => !SELF.has(f) && (SCOPE.some(s => f === s || f.startsWith(`${s}/`)) || TOP_DOCS.test(f)) && fs.existsSync(path.join(root, f)),
  );
}

/** Machine paths for this checkout: /work, and the checkout's own directory and its parent unless generic. */
export function machinePaths(root) {
  const out = new Set(['/work']);
  const abs = path.resolve(root);
  out.add(abs);
  const parent = path.dirname(abs);
  if (!GENERIC_PARENTS.has(parent)) out.add(parent);
  return [...out].filter(p => p !== '/');
}

const escapeRegex = s => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const isComment = (file, line) => file.endsWith('.md') || /^\s*(\/\/|\/?\*|#(?!include|define|if|endif|else|pragma|!)|<!--|;)/.test(line);

/** Whether `rel`, taken from directory `fromDir` (relative to the root), stays inside the root. */
function staysInside(fromDir, rel) {
  const joined = path.posix.normalize(path.posix.join(fromDir || '.', rel));
  return joined !== '..' && !joined.startsWith('../');
}

/** Checks one file's text; returns findings as {file, line, rule, text}. */
export function checkText(file, text, ctx) {
  const findings = [];
  const dir = path.posix.dirname(file) === '.' ? '' : path.posix.dirname(file);
  const add = (n, rule, what) => findings.push({ file, line: n, rule, text: what });
  const machine = new RegExp(`(?<![\\w.\\/$}-])(${ctx.machinePaths.map(escapeRegex).join('|')})(?=[/'"\`\\s)\\]:,;]|$)`);
  const isShell = /\.(sh|bash)$/.test(file) || /^#!.*\b(ba)?sh\b/.test(text);
  const isCode = /\.(ts|mts|mjs|js|cjs)$/.test(file);
  const definedFns = new Set([...text.matchAll(new RegExp(`^\\s*(${ENGINES})\\s*\\(\\)`, 'gm'))].map(m => m[1]));
  let heredoc = '';
  text.split('\n').forEach((line, i) => {
    const n = i + 1;
    // A here-document is data (a config file, a script for another program), not commands of this one.
    const inHeredoc = heredoc !== '';
    if (inHeredoc && line.replace(/^\t+/, '') === heredoc) heredoc = '';
    else if (isShell && !inHeredoc) heredoc = /<<-?\s*['"]?(\w+)['"]?/.exec(line)?.[1] ?? '';
    if (/(?<![\w./-])\.\.\/shared\b|['"]\.\.['"]\s*,\s*['"]shared\b/.test(line)) add(n, 'shared', 'reaches ../shared beside the checkout');
    const m = machine.exec(line);
    if (m) add(n, 'machine-path', `names ${m[1]}, a path of this machine`);
    // Paths the code resolves from its own file.
    const relative = [
      ...[...line.matchAll(/new URL\(\s*['"`]([^'"`]+)['"`]\s*,\s*import\.meta\.url/g)].map(x => x[1]),
      ...[...line.matchAll(/(?:\bfrom|\bimport\(|\brequire\()\s*['"](\.{1,2}\/[^'"]*)['"]/g)].map(x => x[1]),
      ...[...line.matchAll(/dirname\s+(?:--\s+)?"\$(?:0|\{BASH_SOURCE\[0\]\})"\)"?\/([^"\s;)]+)/g)].map(x => x[1]),
      ...[...line.matchAll(/dirname\(fileURLToPath\(import\.meta\.url\)\)\s*,\s*['"]([^'"]+)['"]/g)].map(x => x[1]),
      ...[...line.matchAll(/^\s*#\s*include\s+"([^"]+)"/g)].map(x => x[1]),
    ];
    if (file.endsWith('.md')) relative.push(...[...line.matchAll(/\]\((?![a-z]+:|#|\/)([^)\s]+)\)/g)].map(x => x[1]));
    for (const r of relative) if (!staysInside(dir, r)) add(n, 'above-root', `${r} climbs above the repository root`);
    if (/\bREPO\s*,\s*['"]\.\.['"/]|\$\{?REPO\}?\/\.\./.test(line)) add(n, 'above-root', 'the repository root joined with ..');
    if (isComment(file, line)) {
      for (const x of line.matchAll(/(?<![\w./$}-])((?:\.\.\/)+[\w.-][\w./-]*)/g)) {
        if (!staysInside(dir, x[1]) && !staysInside('', x[1])) add(n, 'cited-outside', `${x[1]} is outside the repository`);
      }
      for (const x of line.matchAll(/(?<![\w./:-])((?:[\w.-]+\/)*[\w-]+\.md)\b/g)) {
        const cited = x[1];
        if (RUNTIME_SPEC_DOCS.has(cited) || /:\/\/\S*$/.test(line.slice(0, x.index))) continue;
        const found =
          ctx.files.has(path.posix.normalize(path.posix.join(dir, cited))) ||
          ctx.files.has(path.posix.normalize(cited)) ||
          (!cited.includes('/') && ctx.basenames.has(cited));
        if (!found) add(n, 'missing-doc', `cites ${cited}, which the repository does not have`);
      }
    }
    if (isCode) {
      const e = new RegExp(`\\b(?:spawnSync|spawn|execFileSync|execFile|execSync|run)\\(\\s*['"](${ENGINES})['"]`).exec(line);
      if (e) add(n, 'engine-by-name', `runs ${e[1]} by name: use its absolute path`);
    } else if (isShell && !inHeredoc && !isComment(file, line)) {
      const e = new RegExp(`(?:^|[|;&]|(?<!=)\\(|\\$\\(|\\bexec|\\bthen|\\bdo)\\s*(${ENGINES})(?=\\s|$)`).exec(
        line.replace(/(["']).*?\1/g, '""'),
      );
      if (e && !definedFns.has(e[1])) add(n, 'engine-by-name', `runs ${e[1]} by name: use its absolute path`);
    }
  });
  return findings;
}

/** Checks every file in scope under root. */
export function checkPaths(root, files = listFiles(root)) {
  const ctx = { machinePaths: machinePaths(root), files: new Set(files), basenames: new Set(files.map(f => path.posix.basename(f))) };
  const findings = [];
  for (const f of files) {
    const buf = fs.readFileSync(path.join(root, f));
    if (buf.includes(0)) continue; // binary fixtures (SIF images)
    findings.push(...checkText(f, buf.toString('utf8'), ctx));
  }
  return findings;
}

if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = path.resolve(process.argv[2] ?? path.join(path.dirname(fileURLToPath(import.meta.url)), '..'));
  const findings = checkPaths(root);
  for (const f of findings) console.log(`${f.file}:${f.line}: ${f.rule}: ${f.text}`);
  console.log(`check-paths: ${findings.length} finding${findings.length === 1 ? '' : 's'}`);
  process.exitCode = findings.length ? 1 : 0;
}
