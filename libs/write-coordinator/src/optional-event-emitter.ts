import type { EventEmitter2 } from '@nestjs/event-emitter';

const PACKAGE = '@nestjs/event-emitter';

/**
 * @internal The injection token of the app's `EventEmitter2` (the class `EventEmitterModule.forRoot()`
 * provides), or undefined when `@nestjs/event-emitter` is not installed. Events are optional, so the
 * package is loaded here, lazily, and nowhere else at run time: every other file imports only its types.
 *
 * @throws whatever loading the package throws, except its absence (a broken install must not pass silently).
 */
export function eventEmitterToken(): typeof EventEmitter2 | undefined {
  try {
    // A static import would make the package required; `require` resolves it from this library's location.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require(PACKAGE) as typeof import('@nestjs/event-emitter')).EventEmitter2;
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

/** Whether `error` says that the package itself (not one of its dependencies) cannot be found. */
function isNotFound(error: unknown): boolean {
  const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
  return (
    (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') &&
    typeof message === 'string' &&
    message.includes(`'${PACKAGE}'`)
  );
}
