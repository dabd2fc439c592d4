// node:crypto, loaded on first use. In the Bun binary importing it costs about 1.5 ms of start-up (a quarter
// of `tsrt state`), and only image roots and SIF files ever hash anything.
import { createRequire } from 'node:module';

let loaded: typeof import('node:crypto') | undefined;

export function nodeCrypto(): typeof import('node:crypto') {
  return (loaded ??= createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto'));
}
