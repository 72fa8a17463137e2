import type { EventEmitter2 } from '@nestjs/event-emitter';
import { loadOptionalPackage } from './optional-package';

/**
 * @internal The injection token of the app's `EventEmitter2` (the class `EventEmitterModule.forRoot()`
 * provides), or undefined when `@nestjs/event-emitter` is not installed. Events are optional, so the
 * package is loaded here, lazily, and nowhere else at run time: every other file imports only its types.
 *
 * @throws whatever loading the package throws, except its absence (a broken install must not pass silently).
 */
export function eventEmitterToken(): typeof EventEmitter2 | undefined {
  return loadOptionalPackage<typeof import('@nestjs/event-emitter')>('@nestjs/event-emitter')?.EventEmitter2;
}
