// Schema validation of the runtime-spec documents. The validators are compiled ahead of time by
// hack/gen-spec.mjs from schemas/, so this module pulls in no ajv compiler at run time.
//
// Messages read `<file>: <JSON pointer>: <rule>`, e.g. `config.json: /process/args: must be array`; the root is
// written `/`. Only the first violation is reported (the validators are built with allErrors off).

import * as fs from 'node:fs';
import * as path from 'node:path';
import { SpecError, fromSystemError } from '../errors.js';
import type { Features, Process, Spec, State } from './types.gen.js';
import {
  validateConfig as configValidator,
  validateFeatures as featuresValidator,
  validateProcess as processValidator,
  validateState as stateValidator,
  type GeneratedValidationError,
  type GeneratedValidator,
} from './validators.gen.js';

export type { GeneratedValidationError } from './validators.gen.js';

/** Turns one ajv error into `<file>: <pointer>: <message>`, with the detail ajv keeps in params spelled out. */
export function formatValidationError(file: string, err: GeneratedValidationError): string {
  // Keys are the config's own text: control characters in them must not break the message into lines.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters in a JSON pointer are what is escaped here
  const pointer = err.instancePath === '' ? '/' : err.instancePath.replace(/[\u0000-\u001f]/g, c => JSON.stringify(c).slice(1, -1));
  let message = err.message ?? `must pass "${err.keyword}"`;
  const params = err.params;
  if (err.keyword === 'enum' && Array.isArray(params['allowedValues'])) {
    message += `: ${params['allowedValues'].map(String).join(', ')}`;
  } else if (err.keyword === 'additionalProperties' && typeof params['additionalProperty'] === 'string') {
    message += `: '${params['additionalProperty']}'`;
  }
  return `${file}: ${pointer}: ${message}`;
}

function check<T>(validator: GeneratedValidator<T>, doc: unknown, file: string): T {
  if (validator(doc)) return doc;
  const err = validator.errors?.[0];
  if (!err) throw new SpecError(`${file}: /: invalid document`, '');
  throw new SpecError(formatValidationError(file, err), err.instancePath);
}

/** Validates a parsed config.json against the runtime-spec schema; throws SpecError on the first violation. */
export function validateConfig(doc: unknown): Spec {
  return check(configValidator, doc, 'config.json');
}

/** Validates a process document (exec --process); `file` names it in the error message. */
export function validateProcess(doc: unknown, file = 'process.json'): Process {
  return check(processValidator, doc, file);
}

/** Validates a state document (what `state` prints and hooks read on stdin). */
export function validateState(doc: unknown, file = 'state.json'): State {
  return check(stateValidator, doc, file);
}

/** Validates a features document (what `features` prints). */
export function validateFeatures(doc: unknown, file = 'features.json'): Features {
  return check(featuresValidator, doc, file);
}

/** JSON.parse with the failure reported as a SpecError naming the file. */
export function parseJson(text: string, file: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    const detail = e instanceof Error ? e.message : String(e);
    throw new SpecError(`${file}: invalid JSON: ${detail}`, '');
  }
}

/** Parses and validates the text of config.json. */
export function parseConfig(text: string): Spec {
  return validateConfig(parseJson(text, 'config.json'));
}

/** Reads, parses and validates a bundle's config.json; a file that cannot be read is an `open` error. */
export function readConfig(bundle: string): Spec {
  const file = path.join(bundle, 'config.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw fromSystemError('open', file, e);
  }
  return parseConfig(text);
}

/** Parses and validates the text of a process document (exec --process). */
export function parseProcess(text: string, file = 'process.json'): Process {
  return validateProcess(parseJson(text, file), file);
}
