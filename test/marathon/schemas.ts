/**
 * The JSON Schemas the Marathon tests check request bodies and the Universe package against:
 * vendored, byte-identical copies (test/fixtures/schemas/, see the README.txt files there) of
 * Marathon's AppDefinition.json and Universe's package schemas, so that a fresh clone has them.
 * Both are draft-04: ajv-draft-04 with strict:false (AppDefinition.json has keywords where strict
 * mode wants none), plus ajv-formats (date-time, uri).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import Ajv04Module from 'ajv-draft-04';
import addFormatsModule from 'ajv-formats';
import type { ErrorObject, ValidateFunction } from 'ajv';

// Both are CommonJS modules whose export is also their `default`: one expression for Node's and
// TypeScript's (NodeNext) views of them.
export const Ajv04 = ((Ajv04Module as unknown as { default?: unknown }).default ?? Ajv04Module) as typeof Ajv04Module.default;
export type Ajv04 = InstanceType<typeof Ajv04>;
export const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as typeof addFormatsModule.default;

export const SCHEMA_DIR = resolve(import.meta.dirname, '..', 'fixtures', 'schemas');

export function readSchema(relative: string): Record<string, unknown> {
  return JSON.parse(readFileSync(resolve(SCHEMA_DIR, relative), 'utf8')) as Record<string, unknown>;
}

function ajv(): Ajv04 {
  const a = new Ajv04({ strict: false, allErrors: true });
  addFormats(a);
  return a;
}

let appValidator: ValidateFunction | undefined;

/** Validates a Marathon app definition (a POST /v2/apps or PUT /v2/apps/{id} body). */
export function validateApp(body: unknown): ErrorObject[] {
  const v = (appValidator ??= ajv().compile(readSchema('marathon/AppDefinition.json')));
  return v(body) ? [] : [...(v.errors ?? [])];
}

const universeValidators = new Map<string, ValidateFunction>();

/** Validates a Universe file against package-schema.json, config-schema.json or v3-resource-schema.json. */
export function validateUniverse(schema: 'package-schema.json' | 'config-schema.json' | 'v3-resource-schema.json', doc: unknown): ErrorObject[] {
  let v = universeValidators.get(schema);
  if (!v) {
    v = ajv().compile(readSchema(`universe/${schema}`));
    universeValidators.set(schema, v);
  }
  return v(doc) ? [] : [...(v.errors ?? [])];
}

/** ajv errors as one line each, for assertion messages. */
export function describeErrors(errors: ErrorObject[]): string[] {
  return errors.map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
}
