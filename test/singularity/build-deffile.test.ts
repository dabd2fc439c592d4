// Definition files as Singularity reads them: header keys, sections, stages,
// {{ build-arg }} templating, and errors that name the line.
import t from 'tap';

import { appNames, DefFileError, parseDefFile, parseFiles, parseLabels, sectionText } from '../../src/singularity/build/deffile.js';

function lineOf(fn: () => unknown): { line: number; message: string } | undefined {
  try {
    fn();
  } catch (e) {
    if (e instanceof DefFileError) return { line: e.line, message: e.message };
    throw e;
  }
  return undefined;
}

t.test('header: keys are case-insensitive, # lines are comments, values are trimmed', async t => {
  const def = parseDefFile(
    '# a comment\nBOOTSTRAP: debootstrap\nosversion:   bookworm  \nMirrorURL: http://deb.debian.org/debian\nInclude: less\n',
  );
  const stage = def.stages[0]!;
  t.equal(stage.bootstrap.value, 'debootstrap');
  t.equal(stage.bootstrap.line, 2);
  t.equal(stage.header.get('osversion')?.value, 'bookworm');
  t.equal(stage.header.get('mirrorurl')?.value, 'http://deb.debian.org/debian', 'the colon inside the URL stays in the value');
  t.equal(stage.header.get('include')?.value, 'less');
});

t.test('sections: bodies keep their lines, arguments are split off, repeated sections are joined', async t => {
  const def = parseDefFile('Bootstrap: busybox\n%post -c /bin/bash\n  echo one\n\n%environment\nexport A=1\n%post\necho two\n\n');
  const stage = def.stages[0]!;
  t.same(
    stage.sections.map(s => [s.name, s.args, s.line]),
    [
      ['post', '-c /bin/bash', 2],
      ['environment', '', 5],
      ['post', '', 7],
    ],
  );
  t.equal(stage.sections[0]!.body, '  echo one', 'indentation kept, trailing blank lines dropped');
  t.equal(sectionText(stage, 'post'), '  echo one\necho two');
  t.equal(sectionText(stage, 'runscript'), undefined);
});

t.test('%app* sections: the argument is the app name', async t => {
  const def = parseDefFile('Bootstrap: scratch\n%appinstall foo\necho\n%apprun foo\necho run\n%applabels bar\nA b\n');
  t.same(appNames(def.stages[0]!), ['foo', 'bar']);
  t.equal(sectionText(def.stages[0]!, 'apprun', 'foo'), 'echo run');
  t.same(lineOf(() => parseDefFile('Bootstrap: scratch\n\n%apprun\necho\n'))?.line, 3, 'an app section without a name');
});

t.test('%labels: KEY value, quotes around the value dropped', async t => {
  const def = parseDefFile('Bootstrap: scratch\n%labels\n  Author Jane Doe\n  Version "1.2"\n  # not a label\n');
  t.same(Object.fromEntries(parseLabels(def.stages[0]!.sections)), { Author: 'Jane Doe', Version: '1.2' });
});

t.test('%labels: a key with no value is a label with an empty value (as Singularity and Apptainer record it)', async t => {
  const def = parseDefFile('Bootstrap: scratch\n%labels\nlonely\n  spaced   \nAuthor Jane\n');
  t.same(Object.fromEntries(parseLabels(def.stages[0]!.sections)), { lonely: '', spaced: '', Author: 'Jane' });
});

t.test('%files: "src [dest]" lines, quoted names, dest defaulting to src', async t => {
  const def = parseDefFile('Bootstrap: scratch\n%files\n/a/b\n/c /d\n"/with space" \'/x y\'\n');
  t.same(parseFiles(def.stages[0]!.sections[0]!), [
    { src: '/a/b', dest: '/a/b', line: 3 },
    { src: '/c', dest: '/d', line: 4 },
    { src: '/with space', dest: '/x y', line: 5 },
  ]);
  t.equal(lineOf(() => parseFiles(parseDefFile('Bootstrap: scratch\n%files\n/a /b /c\n').stages[0]!.sections[0]!))?.line, 3);
});

t.test('stages: each Bootstrap: line after sections opens the next stage; Stage: names it', async t => {
  const def = parseDefFile(
    'Bootstrap: busybox\nStage: build\n%post\necho a\n\nBootstrap: scratch\nStage: final\n%files from build\n/a /a\n',
  );
  t.same(
    def.stages.map(s => [s.name, s.bootstrap.value, s.line]),
    [
      ['build', 'busybox', 1],
      ['final', 'scratch', 6],
    ],
  );
  t.equal(def.stages[1]!.sections[0]!.args, 'from build');
  t.equal(
    lineOf(() => parseDefFile('Bootstrap: scratch\nStage: a\n%post\n\nBootstrap: scratch\nStage: a\n'))?.line,
    6,
    'a stage name used twice',
  );
});

t.test('build args: --build-arg wins over the %arguments default; unknown names fail on their line', async t => {
  const text = 'Bootstrap: scratch\n%arguments\nWHO=world\nN=1\n%post\necho {{ WHO }} {{N}}\n';
  t.equal(sectionText(parseDefFile(text).stages[0]!, 'post'), 'echo world 1');
  t.equal(sectionText(parseDefFile(text, { buildArgs: new Map([['WHO', 'you']]) }).stages[0]!, 'post'), 'echo you 1');
  const warnings: string[] = [];
  parseDefFile(text, { buildArgs: new Map([['UNUSED', 'x']]), warn: m => warnings.push(m) });
  t.match(warnings.join('\n'), /UNUSED.*not used/);
  const err = lineOf(() => parseDefFile('Bootstrap: scratch\n%post\n\necho {{ MISSING }}\n'));
  t.equal(err?.line, 4);
  t.match(err?.message, /line 4: build argument "MISSING" is not defined/);
  t.equal(lineOf(() => parseDefFile('Bootstrap: scratch\n%arguments\nnot an assignment\n'))?.line, 3);
});

t.test('errors name the line: unknown header key, unknown section, junk in the header, no Bootstrap', async t => {
  t.match(
    lineOf(() => parseDefFile('Bootstrap: scratch\nFrm: x\n')),
    { line: 2, message: /unknown header key "Frm"/ },
  );
  t.match(
    lineOf(() => parseDefFile('Bootstrap: scratch\n\n%postt\necho\n')),
    { line: 3, message: /unknown section %postt/ },
  );
  t.match(
    lineOf(() => parseDefFile('Bootstrap: scratch\nthis is not a header\n')),
    { line: 2, message: /expected a "Key: value"/ },
  );
  t.match(
    lineOf(() => parseDefFile('From: x\n%post\necho\n')),
    { line: 1, message: /no Bootstrap/ },
  );
  t.match(
    lineOf(() => parseDefFile('%post\necho\n')),
    { line: 1, message: /before any header/ },
  );
  t.match(
    lineOf(() => parseDefFile('# nothing\n')),
    { line: 1, message: /no Bootstrap/ },
  );
  t.match(
    lineOf(() => parseDefFile('Bootstrap:\n')),
    { line: 1, message: /has no value/ },
  );
});
