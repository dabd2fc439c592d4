// The error helpers every module shares: config errors by JSON pointer, and errno numbers from native calls
// turned into names and runc's texts. No root needed.
import t from 'tap';
import { SpecError, configError, describeErrno, errnoName, pointerToken } from '../../src/errors.js';

t.test('configError: "<file>: <pointer>: <message>", a SpecError with the pointer in path', async t => {
  const e = configError('/process/capabilities/bounding/1', 'unknown capability "CAP_BOGUS"');
  t.ok(e instanceof SpecError);
  t.equal(e.message, 'config.json: /process/capabilities/bounding/1: unknown capability "CAP_BOGUS"');
  t.equal(e.path, '/process/capabilities/bounding/1');
  t.equal(e.op, 'config.json');
  t.equal(configError('', 'empty', 'process.json').message, 'process.json: /: empty', 'the document root is written /');
});

t.test('pointerToken: a key holding "/" or "~" is escaped as RFC 6901 says', async t => {
  t.equal(pointerToken('net.ipv4.ip_forward'), 'net.ipv4.ip_forward');
  t.equal(pointerToken('a/b~c'), 'a~1b~0c');
  t.equal(pointerToken('~1'), '~01', '"~" first, so an escape is not escaped twice');
});

t.test("errnoName: the negated return of a native call as its errno name, then runc's text", async t => {
  t.equal(errnoName(3), 'ESRCH');
  t.equal(describeErrno(errnoName(3)), 'no such process');
  t.equal(errnoName(1), 'EPERM');
  t.equal(errnoName(11), 'EAGAIN', 'the first of two names for one number');
  t.equal(errnoName(100000), 'errno 100000', 'a number this platform has no name for');
});
