// Errors of the typed layer. The wasm throws plain `Error`s named "ForesightError" with a
// string `.code`; here every one becomes an instance of a class a page can `instanceof`, with
// the same code, so `catch (e) { if (e instanceof InvalidEventError) … }` works in both modes
// (a Worker can only post the code and message back, not the class).

export class ForesightError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {{field?: string, cause?: unknown}} [extra]
   */
  constructor(code, message, extra = {}) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.code = code;
    if (extra.field !== undefined) this.field = extra.field;
  }
}

export class InvalidEventError extends ForesightError {}
export class InvalidOptionError extends ForesightError {}
export class ModelError extends ForesightError {}
export class BundleError extends ForesightError {}
export class NoModelError extends ForesightError {}
export class NoConsentError extends ForesightError {}
export class StorageError extends ForesightError {}

// `name` as string literals on the prototypes (like the built-in errors): a minifier renames
// classes, and `err.name` must still read "InvalidEventError" in a production bundle.
for (const [Class, name] of [
  [ForesightError, 'ForesightError'],
  [InvalidEventError, 'InvalidEventError'],
  [InvalidOptionError, 'InvalidOptionError'],
  [ModelError, 'ModelError'],
  [BundleError, 'BundleError'],
  [NoModelError, 'NoModelError'],
  [NoConsentError, 'NoConsentError'],
  [StorageError, 'StorageError'],
]) {
  Object.defineProperty(Class.prototype, 'name', { value: name, writable: true, configurable: true });
}

/** The class for a wasm error code (families by prefix: `model_*`, `bundle_*`). */
function classFor(code) {
  switch (code) {
    case 'invalid_event': return InvalidEventError;
    case 'invalid_option': return InvalidOptionError;
    case 'no_model': return NoModelError;
    case 'no_consent': return NoConsentError;
    case 'storage': return StorageError;
  }
  if (typeof code === 'string' && code.startsWith('model_')) return ModelError;
  if (typeof code === 'string' && code.startsWith('bundle_')) return BundleError;
  return ForesightError;
}

/**
 * The field an `invalid_event` / `invalid_option` message names. The SDK's messages quote the
 * field in backticks ("invalid event: `itemId` must not be empty", "unknown field `foo`") or
 * start with it ("invalid k: must be from 1 to 100"); best effort, `undefined` when unsure.
 */
function fieldOf(code, message) {
  if (code !== 'invalid_event' && code !== 'invalid_option') return undefined;
  const quoted = /`([^`]+)`/.exec(message);
  if (quoted) return quoted[1];
  const leading = /^invalid ([A-Za-z][\w.[\]]*): /.exec(message);
  if (leading && leading[1] !== 'config' && leading[1] !== 'event') return leading[1];
  return undefined;
}

/** A ForesightError (subclass) from a code and message, e.g. posted back by the Worker. */
export function makeError(code, message, cause) {
  const Class = classFor(code);
  return new Class(code, message, { field: fieldOf(code, message), cause });
}

/** Whatever the wasm (or anything under it) threw, as a ForesightError. */
export function toForesightError(thrown) {
  if (thrown instanceof ForesightError) return thrown;
  const code = thrown && typeof thrown.code === 'string' ? thrown.code : 'internal';
  const message = thrown && typeof thrown.message === 'string' ? thrown.message : String(thrown);
  return makeError(code, message, thrown);
}

/** What a Worker posts for an error: structured clone keeps an Error's message, not `.code`. */
export function serializeError(thrown) {
  const e = toForesightError(thrown);
  return { code: e.code, message: e.message };
}
