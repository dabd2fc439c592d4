// The host's /etc/passwd lookup that container ownership (state's "owner") and Singularity's session user
// share. No root needed: a passwd file of the test's own.
import t from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { passwdEntry } from '../../src/passwd.js';

t.test('passwdEntry: the first line for a uid, every field; none for an unknown uid or an unreadable file', async t => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsrt-passwd-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'passwd');
  fs.writeFileSync(
    file,
    [
      'root:x:0:0:root:/root:/bin/bash',
      'alice:x:1000:100:Alice A.,,,:/home/alice:/bin/zsh',
      'alias:x:1000:100::/home/alias:/bin/sh',
      'nologin:x:1001:1001',
      '',
    ].join('\n'),
  );
  t.same(passwdEntry(1000, file), { name: 'alice', uid: 1000, gid: 100, gecos: 'Alice A.,,,', home: '/home/alice', shell: '/bin/zsh' });
  t.same(passwdEntry(1001, file), { name: 'nologin', uid: 1001, gid: 1001, gecos: '', home: '', shell: '' }, 'a short line');
  t.equal(passwdEntry(4242, file), undefined);
  t.equal(passwdEntry(0, path.join(dir, 'missing')), undefined);
});
