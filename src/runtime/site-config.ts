// The site config of a root tsrt: what the administrator allows beyond what a bundle's config.json can ask
// for. Today one setting, the directories whose images the org.tsrt.sif annotation may name (engines let Pod
// and container annotations through, so without it anyone who may create a Pod could have root mount any
// file on the node). The file is /etc/tsrt/tsrt.conf ($TSRT_CONFIG names another), must be root's and not
// writable by group or others, and reads like singularity.conf:
//
//   # images the site publishes for Pods and Slurm jobs (repeat the line for more)
//   sif annotation dir = /srv/images
//
// A missing file allows nothing.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RuntimeError, fromSystemError } from '../errors.js';

export const DEFAULT_SITE_CONFIG = '/etc/tsrt/tsrt.conf';

export interface SiteConfig {
  /** The file read (or that would have been). */
  file: string;
  /** Absolute directories (as written) below which org.tsrt.sif may name an image. */
  sifAnnotationDirs: string[];
}

function invalid(file: string, why: string): RuntimeError {
  return new RuntimeError(`site config ${file} ${why}`, { op: 'config', path: file });
}

/** Reads and checks the site config; throws (naming the file, and the line) when it cannot be trusted or parsed. */
export function siteConfig(env: NodeJS.ProcessEnv = process.env): SiteConfig {
  const file = env['TSRT_CONFIG'] || DEFAULT_SITE_CONFIG;
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { file, sifAnnotationDirs: [] };
    throw fromSystemError('open', file, e);
  }
  let text: string;
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw invalid(file, 'is not a regular file');
    if (st.uid !== 0) throw invalid(file, `is owned by uid ${st.uid}: it must be root's`);
    if (st.mode & 0o022) throw invalid(file, `is writable by group or others (mode 0${(st.mode & 0o777).toString(8)})`);
    text = fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
  return parseSiteConfig(text, file);
}

/** The settings of site config text (read from `file`); throws naming the file and line of a bad one. */
export function parseSiteConfig(text: string, file: string): SiteConfig {
  const config: SiteConfig = { file, sifAnnotationDirs: [] };
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*/, '').trim();
    if (!line) return;
    const m = /^([^=]+?)\s*=\s*(.*)$/.exec(line);
    if (!m) throw invalid(file, `line ${i + 1}: expected "setting = value", not ${JSON.stringify(line)}`);
    const key = m[1]!.toLowerCase().replace(/\s+/g, ' ');
    const value = m[2]!;
    if (key !== 'sif annotation dir') throw invalid(file, `line ${i + 1}: unknown setting "${key}"`);
    if (!path.isAbsolute(value))
      throw invalid(file, `line ${i + 1}: sif annotation dir must be an absolute path, not ${JSON.stringify(value)}`);
    config.sifAnnotationDirs.push(path.normalize(value));
  });
  return config;
}
