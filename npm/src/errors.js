// Errors of the typed layer. The wasm throws plain `Error`s named "ForesightError" with a
// string `.code` (and, for `invalid_event` / `invalid_option`, a string `.field` naming the
// offending field); here every one becomes an instance of a class a page can `instanceof`, with
// the same code and field, so `catch (e) { if (e instanceof InvalidEventError) … }` works in both
// modes (a Worker can only post plain data back, not the class: see `serializeError`).

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
 * A ForesightError (subclass) from a code and message, e.g. posted back by the Worker.
 * @param {string} code
 * @param {string} message
 * @param {{field?: string, cause?: unknown}} [extra]
 */
export function makeError(code, message, extra = {}) {
  const Class = classFor(code);
  return new Class(code, message, extra);
}

/** The `field` the wasm (or a posted error) carries: a non-empty string, else none. */
function fieldOf(thrown) {
  const field = thrown?.field;
  return typeof field === 'string' && field !== '' ? field : undefined;
}

/** Whatever the wasm (or anything under it) threw, as a ForesightError. */
export function toForesightError(thrown) {
  if (thrown instanceof ForesightError) return thrown;
  const code = thrown && typeof thrown.code === 'string' ? thrown.code : 'internal';
  const message = thrown && typeof thrown.message === 'string' ? thrown.message : String(thrown);
  return makeError(code, message, { field: fieldOf(thrown), cause: thrown });
}

/** What a Worker posts for an error: structured clone keeps an Error's message, not `.code` or
 * `.field`, so they travel as plain data; `deserializeError` rebuilds the subclass on the page. */
export function serializeError(thrown) {
  const e = toForesightError(thrown);
  const posted = { code: e.code, message: e.message };
  if (e.field !== undefined) posted.field = e.field;
  return posted;
}

/** The page side of `serializeError`: the posted `{code, message, field?}` as a ForesightError. */
export function deserializeError(posted) {
  const code = typeof posted?.code === 'string' ? posted.code : 'internal';
  const message = typeof posted?.message === 'string' ? posted.message : 'unknown error in the worker';
  return makeError(code, message, { field: fieldOf(posted) });
}
