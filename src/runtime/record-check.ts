// The shape a state.json must have before anything acts on it: a record damaged on disk (a truncated write
// after a crash, an edit, another version's fields) is reported as a corrupt state file naming the field,
// instead of failing later inside status, delete or exec with a JavaScript TypeError.

/** Undefined when `v` fits, else the JSON pointer of the first field that does not and what it should be. */
type Check = (v: unknown, at: string) => string | undefined;

const isObject = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
const expect = (ok: boolean, at: string, what: string): string | undefined => (ok ? undefined : `${at || '/'} is not ${what}`);

const str: Check = (v, at) => expect(typeof v === 'string', at, 'a string');
const bool: Check = (v, at) => expect(typeof v === 'boolean', at, 'a boolean');
const count: Check = (v, at) => expect(Number.isSafeInteger(v) && (v as number) >= 0, at, 'a non-negative integer');
const obj: Check = (v, at) => expect(isObject(v), at, 'an object');
const opt =
  (c: Check): Check =>
  (v, at) =>
    v === undefined ? undefined : c(v, at);

function arrayOf(c: Check): Check {
  return (v, at) => {
    if (!Array.isArray(v)) return `${at} is not an array`;
    for (let i = 0; i < v.length; i++) {
      const bad = c(v[i], `${at}/${i}`);
      if (bad) return bad;
    }
    return undefined;
  };
}

function mapOf(c: Check): Check {
  return (v, at) => {
    if (!isObject(v)) return `${at} is not an object`;
    for (const [k, e] of Object.entries(v)) {
      const bad = c(e, `${at}/${k}`);
      if (bad) return bad;
    }
    return undefined;
  };
}

function shape(fields: Record<string, Check>): Check {
  return (v, at) => {
    if (!isObject(v)) return `${at || '/'} is not an object`;
    for (const [k, c] of Object.entries(fields)) {
      const bad = c(v[k], `${at}/${k}`);
      if (bad) return bad;
    }
    return undefined;
  };
}

const hook = shape({ path: str, args: opt(arrayOf(str)), env: opt(arrayOf(str)), timeout: opt(count) });

const containerRecord = shape({
  ociVersion: str,
  id: str,
  pid: count,
  bundle: str,
  rootfs: str,
  created: str,
  owner: str,
  annotations: opt(mapOf(str)),
  initStartTime: str,
  privatePidns: bool,
  rootless: bool,
  hooks: opt(mapOf(arrayOf(hook))),
  rootfsMountedHere: opt(bool),
  sharedMountns: opt(bool),
  prestartAtStart: opt(bool),
  creating: opt(bool),
  imageRootfs: opt(shape({ image: str, field: str, base: str, mountDir: str, rootfs: str, overlay: bool })),
  netDevices: opt(arrayOf(shape({ hostName: str, name: str }))),
  resctrl: opt(shape({ group: str, createdGroup: bool, monGroup: opt(str) })),
  cgroup: opt(
    shape({
      layout: str,
      dirs: arrayOf(shape({ key: str, mountPoint: str, dir: str })),
      created: arrayOf(str),
      v1Controllers: arrayOf(str),
      v2Controllers: opt(arrayOf(str)),
      resources: opt(obj),
      rootless: bool,
      systemd: opt(obj),
    }),
  ),
  exec: opt(shape({ process: opt(obj), linux: obj, setgroups: opt(bool), noNewKeyring: bool })),
});

/** Why a parsed state.json cannot be a container record of ours (a JSON pointer and the rule), or undefined. */
export function recordProblem(rec: unknown): string | undefined {
  return containerRecord(rec, '');
}
