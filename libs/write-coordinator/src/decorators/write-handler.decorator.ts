import 'reflect-metadata';
import { InvalidOptionsError } from '../errors';
import { DEFAULT_COORDINATOR_NAME, WRITE_HANDLER_METADATA } from '../write-coordinator.constants';

/** Options of {@link WriteHandler}. */
export interface WriteHandlerOptions {
  /** Name of the coordinator whose `submit()` dispatches to this handler. @default 'default' */
  coordinator?: string;
  /** Checks params before the transaction begins; false (or a throw) → `INVALID_PARAMS`. */
  validate?: (params: unknown) => boolean;
}

/** @internal What the decorator records on the handler method. */
export interface WriteHandlerMetadata {
  method: string;
  coordinator: string;
  validate?: (params: unknown) => boolean;
}

/**
 * Registers a provider method `(params, manager) => result` as the handler of
 * `coordinator.submit({ method })`. It runs like `run()` work: one job, one transaction.
 *
 * @throws {InvalidOptionsError} at decoration time for an empty method name or invalid options.
 * @throws {TypeError} at decoration time, when the target is not a method.
 * @example
 * @WriteHandler('ledger.openAccount', { validate: (p) => typeof (p as any)?.name === 'string' })
 * async openAccount(params: { name: string }, manager: EntityManager) {
 *   return manager.save(Account, { name: params.name, balance: 0 });
 * }
 */
export function WriteHandler(method: string, options: WriteHandlerOptions = {}): MethodDecorator {
  if (typeof method !== 'string' || method === '') {
    throw new InvalidOptionsError('method', 'a non-empty string', method, '@WriteHandler()');
  }
  const coordinator = options.coordinator ?? DEFAULT_COORDINATOR_NAME;
  if (typeof coordinator !== 'string' || coordinator === '') {
    throw new InvalidOptionsError('coordinator', 'a non-empty string', coordinator, '@WriteHandler()');
  }
  if (options.validate !== undefined && typeof options.validate !== 'function') {
    throw new InvalidOptionsError('validate', 'a function (params) => boolean', options.validate, '@WriteHandler()');
  }
  return (target, propertyKey, descriptor) => {
    if (typeof descriptor.value !== 'function') {
      const owner = typeof target === 'function' ? target.name : target.constructor.name;
      throw new TypeError(`@WriteHandler() decorates methods only; ${owner}.${String(propertyKey)} is not a method`);
    }
    const metadata: WriteHandlerMetadata = { method, coordinator, validate: options.validate };
    Reflect.defineMetadata(WRITE_HANDLER_METADATA, metadata, descriptor.value);
    return descriptor;
  };
}
