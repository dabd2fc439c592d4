// The host's account database as /etc/passwd holds it (name:password:uid:gid:gecos:home:shell): who owns a
// container, who runs a Singularity session.
import * as fs from 'node:fs';

export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  gecos: string;
  home: string;
  shell: string;
}

/** The first line of `file` for `uid`; undefined when there is none or the file cannot be read. */
export function passwdEntry(uid: number, file = '/etc/passwd'): PasswdEntry | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const f = text
    .split('\n')
    .map(line => line.split(':'))
    .find(fields => fields[2] === String(uid));
  if (!f) return undefined;
  return { name: f[0] ?? '', uid, gid: Number(f[3]), gecos: f[4] ?? '', home: f[5] ?? '', shell: f[6] ?? '' };
}
