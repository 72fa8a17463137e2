import { dirname } from 'node:path';

/**
 * @internal Where a write was submitted from. Captured when it is queued: V8 records the frames
 * then, but formats them into `stack` only if it is read (on failure).
 */
export interface CallSite {
  readonly stack?: string;
}

/** The separator between an error's own frames and those of the code that submitted the write. */
const SEPARATOR = '    at <submitted from>';
/** Frames of this library (its whole source tree: this file is one folder down) say nothing about the caller: they are left out. */
const OWN_DIRECTORY = dirname(dirname(__filename));

/** Errors that carry a call site, with their stack as it was before. */
const annotated = new WeakMap<object, { site: CallSite; original: string }>();

/** @internal Captures the current call site (see {@link CallSite}); about a microsecond. */
export function captureCallSite(): CallSite {
  const site: { stack?: string } = {};
  Error.captureStackTrace(site, captureCallSite);
  return site;
}

/**
 * @internal Appends the submitter's frames to the stack of an error thrown where they are missing
 * (in the drain), below a `    at <submitted from>` line. The error object itself is kept, and
 * left as it is when it is not an object with a writable string `stack`, or is frozen. An error object that
 * reaches several callers (a failed batch COMMIT fails every member with one error) gets no call
 * site: none would be right for all of them.
 * @returns the same error.
 */
export function appendCallSite(error: unknown, site: CallSite): unknown {
  // Frozen: left as it is (on Node 22+ `stack` is an accessor that a frozen error still lets set).
  if (typeof error !== 'object' || error === null || Object.isFrozen(error)) return error;
  try {
    const previous = annotated.get(error);
    if (previous) {
      if (previous.site !== site) (error as { stack: string }).stack = previous.original;
      return error;
    }
    const stack = (error as { stack?: unknown }).stack;
    const frames = callerFrames(site);
    if (typeof stack !== 'string' || !frames) return error;
    (error as { stack: string }).stack = `${stack}\n${SEPARATOR}\n${frames}`;
    annotated.set(error, { site, original: stack });
  } catch {
    // A frozen error, or a stack that cannot be set: the error as it is matters more.
  }
  return error;
}

/** The captured frames outside this library, one `    at …` line each. */
function callerFrames(site: CallSite): string {
  return (site.stack ?? '')
    .split('\n')
    .filter((line) => /^\s+at /.test(line) && !line.includes(OWN_DIRECTORY))
    .join('\n');
}
