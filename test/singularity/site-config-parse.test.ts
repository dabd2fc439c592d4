// singularity.conf as Singularity reads it: `key = value` lines, # comments, comma lists, repeated list keys
// adding up, the first of a repeated yes/no key winning, defaults when the file is absent, and a clear error
// (file and line) for a value the directive does not take.
import t from 'tap';

import { parseSiteConfig, SiteConfigError } from '../../src/singularity/siteconfig.js';

t.test('directives, comments and lists', async t => {
  const c = parseSiteConfig(
    [
      '# MOUNT HOME: [BOOL]',
      '#mount home = no',
      'mount home = no',
      'mount home = yes',
      '  user bind control   =   no  ',
      'bind path = /a, /b:/c:ro',
      'bind path = /d',
      'limit container paths = /x, /y',
      'limit container paths = /z',
      'limit container owners = NULL',
      'allow container dir = no',
      'enable overlay = try',
      'memory fs type = ramfs',
      'ldconfig path = /usr/sbin/ldconfig',
      'allow setuid = yes',
      'some future directive = whatever',
    ].join('\n'),
    '/etc/x.conf',
  );
  t.equal(c.present, true);
  t.equal(c.mountHome, false, 'the first of a repeated yes/no key wins, as in Singularity');
  t.equal(c.userBindControl, false, 'spaces around the key and value are trimmed');
  t.same(c.bindPath, [
    { source: '/a', destination: '/a', readonly: false },
    { source: '/b', destination: '/c', readonly: true },
    { source: '/d', destination: '/d', readonly: false },
  ]);
  t.same(c.limitContainerPaths, ['/x', '/y', '/z'], 'list keys add up');
  t.same(c.limitContainerOwners, [], 'NULL means none');
  t.equal(c.allowContainer.dir, false);
  t.equal(c.allowContainer.sif, true);
  t.equal(c.enableOverlay, 'try');
  t.equal(c.memoryFsType, 'ramfs');
  t.equal(c.ldconfigPath, '/usr/sbin/ldconfig');
  t.equal(c.mountHostfs, false, 'defaults for what the file does not name');
});

t.test('a file without bind path lines binds nothing by default (the default list is for no file at all)', async t => {
  t.same(parseSiteConfig('mount tmp = no\n', '/f').bindPath, []);
});

t.test('a value the directive does not take names the file and line', async t => {
  for (const [text, message] of [
    ['\nenable overlay = sometimes\n', '/f line 2: "enable overlay" must be yes, no, try, driver, got "sometimes"'],
    ['memory fs type = hugetlbfs\n', '/f line 1: "memory fs type" must be tmpfs, ramfs, got "hugetlbfs"'],
    ['allow container sif = 1\n', '/f line 1: "allow container sif" must be yes, no, got "1"'],
    ['bind path = relative/path\n', '/f line 1: invalid bind specification "relative/path": source and destination must be absolute paths'],
  ]) {
    t.throws(() => parseSiteConfig(text!, '/f'), new SiteConfigError(message!), message);
  }
});
