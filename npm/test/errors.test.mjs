// The error conversion of the typed layer on its own (no wasm): what the wasm throws — an
// `Error` with `code`, `message` and, for invalid_event / invalid_option, `field` — becomes the
// right subclass with the same properties, in this thread and across the Worker's postMessage.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  BundleError,
  ForesightError,
  InvalidEventError,
  InvalidOptionError,
  ModelError,
  NoConsentError,
  NoModelError,
  StorageError,
  deserializeError,
  makeError,
  serializeError,
  toForesightError,
} from '../src/errors.js';

/** What the wasm throws (sdk/src/web/mod.rs `js_error`). */
function wasmError(code, message, field) {
  const e = new Error(message);
  e.name = 'ForesightError';
  e.code = code;
  if (field !== undefined) e.field = field;
  return e;
}

test('a wasm error becomes its subclass with code, message and the field property', () => {
  const thrown = wasmError('invalid_event', 'invalid event: `itemId` must not be empty', 'itemId');
  const e = toForesightError(thrown);
  assert.ok(e instanceof InvalidEventError);
  assert.ok(e instanceof ForesightError);
  assert.equal(e.name, 'InvalidEventError');
  assert.equal(e.code, 'invalid_event');
  assert.equal(e.field, 'itemId');
  assert.equal(e.message, thrown.message);
  assert.equal(e.cause, thrown);

  const option = toForesightError(wasmError('invalid_option', 'invalid k: must be from 1 to 100', 'k'));
  assert.ok(option instanceof InvalidOptionError);
  assert.equal(option.field, 'k');
});

test('the field comes from the property, never from the message', () => {
  // A message that quotes a name, without a field property: no field.
  const e = toForesightError(wasmError('invalid_event', 'unknown field `foo`'));
  assert.ok(e instanceof InvalidEventError);
  assert.equal(e.field, undefined);
  assert.ok(!('field' in e));
  // The property wins over whatever the message says.
  assert.equal(toForesightError(wasmError('invalid_option', 'invalid config: `recomender`', 'recomender')).field, 'recomender');
  // A non-string or empty field is ignored.
  assert.equal(toForesightError(wasmError('invalid_option', 'x', 7)).field, undefined);
  assert.equal(toForesightError(wasmError('invalid_option', 'x', '')).field, undefined);
});

test('codes map to their families', () => {
  const cases = [
    ['no_model', NoModelError],
    ['no_consent', NoConsentError],
    ['storage', StorageError],
    ['model_parse', ModelError],
    ['bundle_tampered', BundleError],
    ['busy', ForesightError],
  ];
  for (const [code, Class] of cases) {
    const e = toForesightError(wasmError(code, code));
    assert.ok(e instanceof Class, code);
    assert.equal(e.code, code);
    assert.equal(e.field, undefined);
  }
  const odd = toForesightError('a string');
  assert.ok(odd instanceof ForesightError);
  assert.equal(odd.code, 'internal');
  assert.equal(odd.message, 'a string');
});

test('the field survives the Worker boundary (serialize, structured clone, deserialize)', () => {
  const posted = structuredClone(serializeError(wasmError('invalid_event', 'invalid quantity: must be an integer', 'quantity')));
  assert.deepEqual(posted, { code: 'invalid_event', message: 'invalid quantity: must be an integer', field: 'quantity' });
  const e = deserializeError(posted);
  assert.ok(e instanceof InvalidEventError);
  assert.equal(e.code, 'invalid_event');
  assert.equal(e.field, 'quantity');

  // Errors the JS layer makes itself keep their explicit field too.
  const layer = new InvalidOptionError('invalid_option', 'invalid config: pass an object', { field: 'config' });
  assert.equal(deserializeError(structuredClone(serializeError(layer))).field, 'config');

  // No field: none posted, none rebuilt.
  const none = structuredClone(serializeError(wasmError('no_model', 'no intent model')));
  assert.deepEqual(none, { code: 'no_model', message: 'no intent model' });
  assert.ok(deserializeError(none) instanceof NoModelError);
  assert.equal(deserializeError(none).field, undefined);

  // A malformed reply still rejects with a ForesightError.
  const broken = deserializeError(undefined);
  assert.ok(broken instanceof ForesightError);
  assert.equal(broken.code, 'internal');
});

test('makeError takes an explicit field', () => {
  const e = makeError('invalid_option', 'consent must be "granted", "denied" or "unknown", got boolean', { field: 'consent' });
  assert.ok(e instanceof InvalidOptionError);
  assert.equal(e.field, 'consent');
  assert.equal(makeError('invalid_option', 'no field').field, undefined);
});
