// `build`: a definition file (or another image) in, a SIF or a sandbox directory out. Everything happens in a
// scratch directory beside DEST and lands on DEST with one rename at the end, so a failed build leaves no
// half-written DEST behind and an existing one untouched.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { bootstrap, type AgentContext } from './agents.js';
import { fakerootMapping, hostCommand, removeTree, runInRootfs, ScriptStopped, SUBID_FILES, type FakerootMapping } from './container.js';
import {
  appNames,
  DefFileError,
  parseDefFile,
  parseFiles,
  parseLabels,
  sectionText,
  type DefFile,
  type Section,
  type Stage,
} from './deffile.js';
import {
  buildDate,
  inRootfs,
  inspectMetadata,
  isDirectory,
  makeSkeleton,
  moveTreeInto,
  readLabels,
  recordDefFile,
  scriptText,
} from './layout.js';
import { ARCHES, DataType, FsType, hostArch, type ObjectInput, openRegularFile, PartType, SifImage } from '../../sif/index.js';
import { inspectImage, type ImageSource } from '../../sif/mount.js';
import { cacheRoot } from '../registry/cache.js';
import type { RegistryOptions } from '../registry/options.js';
import { unsupportedSource } from '../registry/source.js';
import { derivedImageId, sourceDateEpoch, squashfsTimeArgs } from './reproducible.js';
import { RuntimeError } from '../../errors.js';

declare const TSRT_VERSION: string | undefined;

export interface BuildOptions {
  dest: string;
  spec: string;
  sandbox: boolean;
  /** Map only the builder's own id even when /etc/subuid and /etc/subgid give it ranges (--ignore-subuid). */
  ignoreSubuid: boolean;
  force: boolean;
  notest: boolean;
  /** Only these sections run / are written (--section); undefined means all. */
  sections?: string[];
  buildArgs: Map<string, string>;
  quiet: boolean;
  info: (message: string) => void;
  warn: (message: string) => void;
  /** Registry flags for docker:// and oras:// sources. */
  registry?: RegistryOptions;
}

export class BuildError extends RuntimeError {
  constructor(message: string) {
    super(message, { op: 'build' });
    this.name = 'BuildError';
  }
}

/** A signal stopped the build (after cleaning up); the command exits 128+N. */
export class BuildInterrupted extends RuntimeError {
  constructor(readonly signal: NodeJS.Signals) {
    super(`build interrupted by ${signal}`, { op: 'build' });
  }
}

const STOP_SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
let interruptedBy: NodeJS.Signals | undefined;

/**
 * Between build steps: lets a pending signal's handler run (the steps themselves block the event loop), then
 * stops the build if one came, so the scratch directory is removed instead of left behind by a dying process.
 */
async function checkpoint(): Promise<void> {
  await new Promise(resolve => setImmediate(resolve));
  if (interruptedBy) throw new BuildInterrupted(interruptedBy);
}

const PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** What an image path is (a SIF, a squashfs or ext3 file, a sandbox directory), or undefined for anything else. */
function imageSource(file: string): ImageSource | undefined {
  try {
    return inspectImage(file);
  } catch {
    return undefined;
  }
}

/** URI-style sources (`docker-archive:x.tar`, `docker://alpine`) and plain images become a one-stage definition file. */
function synthesizedDef(spec: string): string | undefined {
  const uri = /^(docker-archive|oci-archive|oci|localimage):(.+)$/.exec(spec) ?? /^(docker|oras):\/\/(.+)$/.exec(spec);
  if (uri) return `Bootstrap: ${uri[1]}\nFrom: ${uri[2]}\n`;
  if (imageSource(spec)) return `Bootstrap: localimage\nFrom: ${spec}\n`;
  return undefined;
}

interface BuildContext {
  opts: BuildOptions;
  def: DefFile;
  mapping: FakerootMapping | undefined;
  tmpDir: string;
  agent: AgentContext;
  /** Built stages so far, for `%files from`. */
  stageRoots: Map<string, string>;
  /** SOURCE_DATE_EPOCH: the time the image records, when the build is to be reproducible. */
  epoch: number | undefined;
}

function checked(r: ReturnType<typeof spawnSync>, what: string, line?: number): void {
  const failure = r.error ? r.error.message : r.status !== 0 ? `exited ${r.status ?? `on signal ${r.signal}`}` : undefined;
  if (failure === undefined) return;
  const detail = typeof r.stderr === 'string' && r.stderr.trim() ? `: ${r.stderr.trim().split('\n').slice(-5).join('\n')}` : '';
  const message = `${what} failed (${failure})${detail}`;
  throw line === undefined ? new BuildError(message) : new DefFileError(line, message);
}

function extractImage(ctx: { mapping: FakerootMapping | undefined }, image: string, rootfs: string, line: number): void {
  let src: ImageSource;
  try {
    src = inspectImage(image);
  } catch (e) {
    throw new DefFileError(line, (e as Error).message);
  }
  if (src.kind === 'directory') {
    fs.mkdirSync(rootfs, { recursive: true });
    checked(hostCommand(['cp', '-a', '--', `${image}/.`, rootfs], ctx.mapping), `copying sandbox ${image}`, line);
    return;
  }
  if (src.fsType !== 'squashfs')
    throw new DefFileError(line, `${image} is an ${src.fsType} image: a build starts from a SIF, a squashfs image or a sandbox`);
  // unsquashfs recreates ownership only as root: in the build's namespace when unprivileged.
  checked(
    hostCommand(['unsquashfs', '-f', '-n', '-offset', String(src.offset), '-d', rootfs, image], ctx.mapping),
    `unsquashfs of ${image}`,
    line,
  );
}

function wanted(ctx: BuildContext, section: string): boolean {
  return !ctx.opts.sections || ctx.opts.sections.includes(section) || ctx.opts.sections.includes('all');
}

function sections(stage: Stage, name: string, args?: string): Section[] {
  return stage.sections.filter(s => s.name === name && (args === undefined || s.args === args));
}

/** `*`, `?` and `[...]` in one path component, as the shell matches them (no leading-dot matches). */
function componentPattern(component: string): RegExp {
  let re = '';
  for (let i = 0; i < component.length; i++) {
    const c = component[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = component.indexOf(']', i + 1);
      if (end < 0) re += '\\[';
      else {
        re += `[${component
          .slice(i + 1, end)
          .replace(/^!/, '^')
          .replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Host paths matching a %files source pattern; `resolve` maps a pattern prefix to where it lives. */
function expandSource(pattern: string, resolve: (p: string) => string): string[] {
  if (!/[*?[]/.test(pattern)) return fs.existsSync(resolve(pattern)) || isLink(resolve(pattern)) ? [resolve(pattern)] : [];
  let prefixes = [pattern.startsWith('/') ? '/' : ''];
  for (const component of pattern.split('/').filter(c => c !== '')) {
    const next: string[] = [];
    for (const prefix of prefixes) {
      if (!/[*?[]/.test(component)) {
        next.push(path.posix.join(prefix, component));
        continue;
      }
      const re = componentPattern(component);
      let names: string[];
      try {
        names = fs.readdirSync(resolve(prefix || '.'));
      } catch {
        names = [];
      }
      for (const name of names.sort())
        if (re.test(name) && (!name.startsWith('.') || component.startsWith('.'))) next.push(path.posix.join(prefix, name));
    }
    prefixes = next;
  }
  return prefixes.map(resolve).filter(p => fs.existsSync(p) || isLink(p));
}

function isLink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Copies the lines of %files sections into rootfs (dest relative to `under`, an app's root for %appfiles). */
function copyFiles(ctx: BuildContext, rootfs: string, fileSections: Section[], under = '/'): void {
  for (const section of fileSections) {
    const fromMatch = /^from\s+(\S+)$/.exec(section.args);
    if (section.args && !fromMatch && section.name === 'files')
      throw new DefFileError(section.line, `%files takes "from STAGE" or nothing, got ${JSON.stringify(section.args)}`);
    let resolve = (p: string) => path.resolve(p);
    if (fromMatch) {
      const source = ctx.stageRoots.get(fromMatch[1]!);
      if (!source)
        throw new DefFileError(section.line, `%files from ${fromMatch[1]}: no earlier stage is named ${JSON.stringify(fromMatch[1])}`);
      resolve = (p: string) => inRootfs(source, p);
    }
    for (const entry of parseFiles(section)) {
      const sources = expandSource(entry.src, resolve);
      if (!sources.length)
        throw new DefFileError(
          entry.line,
          `%files source ${JSON.stringify(entry.src)} matches nothing${fromMatch ? ` in stage ${fromMatch[1]}` : ''}`,
        );
      const destPath = path.posix.join('/', under, entry.dest);
      const intoDir = entry.dest.endsWith('/') || sources.length > 1 || isDirectory(inRootfs(rootfs, destPath));
      // Copied beside the rootfs first, then moved in: cp itself would follow symlinks the image has.
      const staging = fs.mkdtempSync(path.join(ctx.tmpDir, 'files-'));
      const staged = path.join(staging, destPath);
      fs.mkdirSync(intoDir ? staged : path.dirname(staged), { recursive: true, mode: 0o755 });
      const r = hostCommand(['cp', '-fLr', '--', ...sources, intoDir ? `${staged}/` : staged], ctx.mapping);
      try {
        checked(r, `%files: copying ${entry.src} to ${destPath}`, entry.line);
        moveTreeInto(staging, rootfs, { adoptDirMetadata: false });
      } finally {
        removeTree(staging, ctx.mapping);
      }
    }
  }
}

function interpreter(section: Section): string[] {
  // An app section's argument is the app's name.
  if (section.name.startsWith('app')) return ['/bin/sh', '-e', '-x'];
  const m = /^-c\s+(.+)$/.exec(section.args.trim());
  if (section.args.trim() && !m)
    throw new DefFileError(section.line, `%${section.name} takes "-c INTERPRETER" or nothing, got ${JSON.stringify(section.args)}`);
  return m ? m[1]!.split(/\s+/) : ['/bin/sh', '-e', '-x'];
}

function requireShell(rootfs: string, argv0: string, section: Section): void {
  const host = inRootfs(rootfs, argv0);
  if (!fs.existsSync(host)) throw new DefFileError(section.line, `%${section.name} needs ${argv0} in the image, which has none`);
}

function runSection(ctx: BuildContext, rootfs: string, section: Section, body: string, env: string[], cwd = '/'): void {
  const interp = interpreter(section);
  requireShell(rootfs, interp[0]!, section);
  const code = runInRootfs({
    rootfs,
    argv: [...interp, '-c', body],
    cwd,
    mapping: ctx.mapping,
    workDir: path.join(ctx.tmpDir, 'run'),
    env: [
      PATH,
      'HOME=/root',
      'LANG=C',
      `TERM=${process.env['TERM'] ?? 'xterm'}`,
      'SINGULARITY_ENVIRONMENT=/.singularity.d/env/91-environment.sh',
      'APPTAINER_ENVIRONMENT=/.singularity.d/env/91-environment.sh',
      'SINGULARITY_ROOTFS=/',
      'APPTAINER_ROOTFS=/',
      // Tools that honour it (dpkg, pip, compilers) then make %post's output reproducible too.
      ...(ctx.epoch === undefined ? [] : [`SOURCE_DATE_EPOCH=${ctx.epoch}`]),
      ...env,
    ],
  });
  if (code !== 0)
    throw new DefFileError(
      section.line,
      `%${section.name}${section.args && section.name.startsWith('app') ? ` ${section.args}` : ''} failed with exit status ${code}`,
    );
}

function writeMeta(file: string, text: string, mode = 0o755): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  fs.rmSync(file, { force: true });
  fs.writeFileSync(file, text, { mode });
}

const ENV_HEADER = '#!/bin/sh\n# Custom environment shell code should follow\n\n';

function shellName(app: string): string {
  return app.replace(/[^A-Za-z0-9_]/g, '_');
}

/** SCIF apps: directories, %appfiles, %appinstall, and each app's metadata under /scif/apps/NAME/scif. */
function buildApps(ctx: BuildContext, stage: Stage, rootfs: string): void {
  const apps = appNames(stage);
  if (!apps.length) return;
  const base: string[] = ['#!/bin/sh', '# Where each SCIF app of this image lives.'];
  for (const app of apps) {
    const root = `/scif/apps/${app}`;
    const data = `/scif/data/${app}`;
    for (const dir of [`${root}/bin`, `${root}/lib`, `${root}/scif/env`, `${data}/input`, `${data}/output`])
      fs.mkdirSync(inRootfs(rootfs, dir), { recursive: true, mode: 0o755 });
    const v = shellName(app);
    base.push(
      `SCIF_APPDATA_${v}=${data}`,
      `SCIF_APPROOT_${v}=${root}`,
      `SCIF_APPMETA_${v}=${root}/scif`,
      `SCIF_APPBIN_${v}=${root}/bin`,
      `SCIF_APPLIB_${v}=${root}/lib`,
      `SCIF_APPINPUT_${v}=${data}/input`,
      `SCIF_APPOUTPUT_${v}=${data}/output`,
      `export SCIF_APPDATA_${v} SCIF_APPROOT_${v} SCIF_APPMETA_${v} SCIF_APPBIN_${v} SCIF_APPLIB_${v} SCIF_APPINPUT_${v} SCIF_APPOUTPUT_${v}`,
    );
    if (wanted(ctx, 'files')) copyFiles(ctx, rootfs, sections(stage, 'appfiles', app), root);
    const meta = (name: string) => inRootfs(rootfs, `${root}/scif/${name}`);
    const text = (name: string) => sectionText(stage, name, app);
    if (text('appenv') !== undefined && wanted(ctx, 'environment'))
      writeMeta(meta('env/90-environment.sh'), `${ENV_HEADER}${text('appenv')}\n`);
    if (text('apprun') !== undefined && wanted(ctx, 'runscript')) writeMeta(meta('runscript'), scriptText(text('apprun')!));
    if (text('appstart') !== undefined && wanted(ctx, 'startscript')) writeMeta(meta('startscript'), scriptText(text('appstart')!));
    if (text('apptest') !== undefined && wanted(ctx, 'test')) writeMeta(meta('test'), scriptText(text('apptest')!));
    if (text('apphelp') !== undefined && wanted(ctx, 'help')) writeMeta(meta('runscript.help'), `${text('apphelp')}\n`, 0o644);
    const labels = parseLabels(sections(stage, 'applabels', app));
    if (labels.size && wanted(ctx, 'labels')) writeMeta(meta('labels.json'), JSON.stringify(Object.fromEntries(labels), null, '\t'), 0o644);
  }
  writeMeta(inRootfs(rootfs, '.singularity.d/env/94-appsbase.sh'), `${base.join('\n')}\n`);
  if (!wanted(ctx, 'post')) return;
  for (const section of stage.sections.filter(s => s.name === 'appinstall')) {
    const root = `/scif/apps/${section.args}`;
    const data = `/scif/data/${section.args}`;
    runSection(
      ctx,
      rootfs,
      section,
      section.body,
      [
        `SCIF_APPNAME=${section.args}`,
        `SCIF_APPROOT=${root}`,
        `SCIF_APPMETA=${root}/scif`,
        `SCIF_APPBIN=${root}/bin`,
        `SCIF_APPLIB=${root}/lib`,
        `SCIF_APPDATA=${data}`,
        `SCIF_APPINPUT=${data}/input`,
        `SCIF_APPOUTPUT=${data}/output`,
      ],
      root,
    );
  }
}

/** %environment, %runscript, %startscript, %test, %help, %labels and the definition file itself. */
function writeMetadata(ctx: BuildContext, stage: Stage, rootfs: string): void {
  const text = (name: string) => (wanted(ctx, name) ? sectionText(stage, name) : undefined);
  const meta = (name: string) => inRootfs(rootfs, `.singularity.d/${name}`);
  if (text('environment') !== undefined) writeMeta(meta('env/90-environment.sh'), `${ENV_HEADER}${text('environment')}\n`);
  if (text('runscript') !== undefined) writeMeta(meta('runscript'), scriptText(text('runscript')!));
  if (text('startscript') !== undefined) writeMeta(meta('startscript'), scriptText(text('startscript')!));
  if (text('test') !== undefined) writeMeta(meta('test'), scriptText(text('test')!));
  if (text('help') !== undefined) writeMeta(meta('runscript.help'), `${text('help')}\n`, 0o644);
  const labelsFile = meta('labels.json');
  const labels: Record<string, string> = readLabels(labelsFile);
  labels['org.label-schema.schema-version'] = '1.0';
  labels['org.label-schema.build-date'] = buildDate(ctx.epoch === undefined ? new Date() : new Date(ctx.epoch * 1000));
  labels['org.label-schema.build-arch'] = hostArch();
  labels['org.label-schema.usage.singularity.version'] = typeof TSRT_VERSION === 'string' ? `tsrt-${TSRT_VERSION}` : 'tsrt';
  labels['org.label-schema.usage.singularity.deffile.bootstrap'] = stage.bootstrap.value;
  const from = stage.header.get('from');
  if (from) labels['org.label-schema.usage.singularity.deffile.from'] = from.value;
  else delete labels['org.label-schema.usage.singularity.deffile.from'];
  if (fs.existsSync(meta('runscript.help'))) {
    labels['org.label-schema.usage'] = '/.singularity.d/runscript.help';
    labels['org.label-schema.usage.singularity.runscript.help'] = '/.singularity.d/runscript.help';
  }
  if (wanted(ctx, 'labels')) for (const [k, v] of parseLabels(sections(stage, 'labels'))) labels[k] = v;
  writeMeta(labelsFile, `${JSON.stringify(labels, null, '\t')}\n`, 0o644);
  recordDefFile(rootfs, ctx.def.raw);
}

function runTest(ctx: BuildContext, stage: Stage, rootfs: string): void {
  const section = sections(stage, 'test')[0];
  if (!section || ctx.opts.notest || !wanted(ctx, 'test')) return;
  requireShell(rootfs, '/bin/sh', section);
  ctx.opts.info('Running testscript');
  const code = runInRootfs({
    rootfs,
    argv: ['/bin/sh', '/.singularity.d/actions/test'],
    mapping: ctx.mapping,
    workDir: path.join(ctx.tmpDir, 'run'),
    readonly: true,
    env: [PATH, 'HOME=/root', 'LANG=C', `TERM=${process.env['TERM'] ?? 'xterm'}`],
  });
  if (code !== 0) throw new DefFileError(section.line, `%test failed with exit status ${code} (--notest skips it)`);
}

/** %pre (before bootstrap) and %setup (after it) run on the host, as the build's root, with the rootfs path. */
function runHostSections(ctx: BuildContext, stage: Stage, rootfs: string, name: 'pre' | 'setup'): void {
  if (!wanted(ctx, name)) return;
  for (const section of sections(stage, name)) {
    ctx.opts.info(`Running ${name} scriptlet`);
    const r = hostCommand(['/bin/sh', '-e', '-x', '-c', section.body], ctx.mapping, {
      stdio: ctx.opts.quiet ? 'pipe' : 'inherit',
      env: { ...process.env, SINGULARITY_ROOTFS: rootfs, APPTAINER_ROOTFS: rootfs },
    });
    if (r.status !== 0)
      throw new DefFileError(
        section.line,
        `%${name} failed with exit status ${r.status ?? 128 + (os.constants.signals[r.signal as NodeJS.Signals] ?? 0)}`,
      );
  }
}

async function buildStage(ctx: BuildContext, stage: Stage, index: number): Promise<string> {
  const rootfs = path.join(ctx.tmpDir, `stage-${index}`);
  fs.mkdirSync(rootfs, { mode: 0o755 });
  ctx.opts.info(`Starting build of stage ${stage.name ?? index + 1} (Bootstrap: ${stage.bootstrap.value})`);
  runHostSections(ctx, stage, rootfs, 'pre');
  await checkpoint();
  ctx.agent.imageConfig = undefined;
  await bootstrap(stage, rootfs, ctx.agent);
  await checkpoint();
  makeSkeleton(rootfs);
  const fileSections = sections(stage, 'files');
  if (wanted(ctx, 'files'))
    copyFiles(
      ctx,
      rootfs,
      fileSections.filter(s => s.args),
    );
  runHostSections(ctx, stage, rootfs, 'setup');
  await checkpoint();
  if (wanted(ctx, 'files'))
    copyFiles(
      ctx,
      rootfs,
      fileSections.filter(s => !s.args),
    );
  if (wanted(ctx, 'post')) {
    for (const section of sections(stage, 'post')) {
      ctx.opts.info('Running post scriptlet');
      runSection(ctx, rootfs, section, section.body, []);
      await checkpoint();
    }
  }
  buildApps(ctx, stage, rootfs);
  await checkpoint();
  writeMetadata(ctx, stage, rootfs);
  return rootfs;
}

function readSpec(spec: string): { text: string; file: string } {
  const unsupported = unsupportedSource(spec);
  if (unsupported) throw new BuildError(unsupported);
  const synthesized = synthesizedDef(spec);
  if (synthesized) return { text: synthesized, file: spec };
  let fd: number;
  try {
    // Not blocking on a FIFO named like a definition file or an image: refused at once.
    fd = openRegularFile(spec);
  } catch (e) {
    throw new BuildError(
      `cannot read ${spec}: ${(e as RuntimeError).errno === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`,
    );
  }
  try {
    return { text: fs.readFileSync(fd, 'utf8'), file: spec };
  } finally {
    fs.closeSync(fd);
  }
}

function squashfsArgs(rootfs: string, out: string, mapping: FakerootMapping | undefined, epoch: number | undefined): string[] {
  const argv = ['mksquashfs', rootfs, out, '-noappend', ...squashfsTimeArgs(epoch)];
  // Without subordinate ids every file belongs to the builder, who is root in the image.
  if (mapping && !mapping.subuid) argv.push('-all-root');
  if (!process.stderr.isTTY) argv.push('-no-progress', '-quiet');
  return argv;
}

export async function build(opts: BuildOptions): Promise<void> {
  const dest = path.resolve(opts.dest);
  let destExists = true;
  try {
    fs.lstatSync(dest);
  } catch {
    destExists = false;
  }
  if (destExists && !opts.force) throw new BuildError(`build: ${opts.dest} already exists (use --force to overwrite it)`);
  const epoch = sourceDateEpoch();
  const { text, file } = readSpec(opts.spec);
  let def: DefFile;
  try {
    def = parseDefFile(text, { buildArgs: opts.buildArgs, warn: opts.warn });
  } catch (e) {
    if (e instanceof DefFileError) throw new DefFileError(e.line, e.message.replace(/^definition file line \d+: /, ''), file);
    throw e;
  }
  // An unprivileged build is always a fakeroot build, as in Apptainer >= 1.1: --fakeroot is implied.
  const mapping = fakerootMapping({ ignoreSubuid: opts.ignoreSubuid });
  if (mapping?.subuid) {
    opts.info(`Building as root in a user namespace, with your ${SUBID_FILES} ranges behind the other ids (fakeroot)`);
  } else if (mapping) {
    opts.info(
      `${opts.ignoreSubuid ? '--ignore-subuid given' : `User not listed in ${SUBID_FILES}`}: building in a root-mapped namespace, where your own id is the only one (files %post gives to other users fail)`,
    );
  }
  if (!isDirectory(path.dirname(dest))) throw new BuildError(`build: the directory of ${opts.dest} does not exist`);
  interruptedBy = undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    interruptedBy = signal;
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);
  const tmpDir = fs.mkdtempSync(path.join(path.dirname(dest), `.${path.basename(dest)}.build-`));
  const ctx: BuildContext = {
    opts,
    def,
    mapping,
    tmpDir,
    stageRoots: new Map(),
    epoch,
    agent: {
      mapping,
      cacheDir: cacheRoot(),
      tmpDir,
      quiet: opts.quiet,
      registry: opts.registry,
      info: opts.info,
      extractImage: (image, rootfs, line) => extractImage({ mapping }, image, rootfs, line),
    },
  };
  try {
    let rootfs = '';
    try {
      for (const [index, stage] of def.stages.entries()) {
        rootfs = await buildStage(ctx, stage, index);
        ctx.stageRoots.set(stage.name ?? String(index + 1), rootfs);
      }
      runTest(ctx, def.stages[def.stages.length - 1]!, rootfs);
      await checkpoint();
    } catch (e) {
      if (e instanceof DefFileError && e.file !== file)
        throw new DefFileError(e.line, e.message.replace(/^definition file line \d+: /, ''), file);
      throw e;
    }
    const staged = path.join(tmpDir, 'dest');
    if (opts.sandbox) {
      fs.renameSync(rootfs, staged);
    } else {
      const squashfs = path.join(tmpDir, 'rootfs.squashfs');
      opts.info('Creating SIF file...');
      const imageConfig = ctx.agent.imageConfig;
      // mksquashfs >= 4.5 reads SOURCE_DATE_EPOCH itself and refuses it beside the explicit time flags.
      const { SOURCE_DATE_EPOCH: _, ...env } = process.env;
      checked(
        hostCommand(squashfsArgs(rootfs, squashfs, mapping, ctx.epoch), mapping, { stdio: opts.quiet ? 'pipe' : 'inherit', env }),
        'mksquashfs',
      );
      // The object order of `singularity build` (the definition file, the JSON metadata, then the primary
      // squashfs partition, all in group 1), plus the labels and environment objects.
      const objects: ObjectInput[] = [
        { dataType: DataType.Deffile, data: Buffer.from(def.raw) },
        { dataType: DataType.Labels, data: fs.readFileSync(inRootfs(rootfs, '.singularity.d/labels.json')) },
        { dataType: DataType.EnvVar, data: Buffer.from(environmentText(rootfs)) },
        { dataType: DataType.GenericJSON, name: 'inspect-metadata.json', data: Buffer.from(JSON.stringify(inspectMetadata(rootfs))) },
        // An OCI base image's config (WORKDIR, USER, ...), which the native runtime does not apply, kept as Singularity keeps it.
        ...(imageConfig
          ? [{ dataType: DataType.GenericJSON, name: 'oci-config.json', data: Buffer.from(JSON.stringify(imageConfig.config ?? {})) }]
          : []),
        {
          dataType: DataType.Partition,
          data: { path: squashfs },
          partition: { fsType: FsType.Squashfs, partType: PartType.PrimSys, arch: imageArch(imageConfig?.architecture) },
        },
      ];
      SifImage.create(staged, objects, ctx.epoch === undefined ? {} : { time: ctx.epoch, id: derivedImageId(objects) }).close();
      fs.chmodSync(staged, 0o755);
    }
    await checkpoint();
    if (destExists) removeTree(dest, mapping);
    fs.renameSync(staged, dest);
    opts.info(`Build complete: ${opts.dest}`);
  } catch (e) {
    // A step that failed because the signal also reached its process reports the signal, not the step.
    if (e instanceof ScriptStopped) interruptedBy = e.signal;
    await checkpoint();
    throw e;
  } finally {
    removeTree(tmpDir, mapping);
    for (const signal of STOP_SIGNALS) process.off(signal, onSignal);
  }
}

/** The SIF partition's arch: an OCI base image's (a pull with --arch), else this machine's. */
function imageArch(architecture: string | undefined): string {
  return architecture && (ARCHES as readonly string[]).includes(architecture) ? architecture : hostArch();
}

/** The image's environment scripts in the order the runtime sources them (the SIF's environment object). */
function environmentText(rootfs: string): string {
  const dir = inRootfs(rootfs, '.singularity.d/env');
  return fs
    .readdirSync(dir)
    .filter(n => n.endsWith('.sh'))
    .sort()
    .map(n => fs.readFileSync(inRootfs(rootfs, `.singularity.d/env/${n}`), 'utf8'))
    .join('\n');
}
