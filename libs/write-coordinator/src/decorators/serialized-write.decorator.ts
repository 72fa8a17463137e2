import 'reflect-metadata';
import { CoordinatorNotReadyError, InvalidOptionsError } from '../errors';
import {
  ATTACHED_COORDINATORS,
  DEFAULT_COORDINATOR_NAME,
  SERIALIZED_WRITE_METADATA,
} from '../write-coordinator.constants';
import { validateCallOptions } from '../core/coordinator-options';
import type { WriteCoordinator } from '../write-coordinator.service';

/** Options of {@link SerializedWrite}. */
export interface SerializedWriteOptions {
  /** Name of the coordinator to run through. @default 'default' */
  coordinator?: string;
  /** Label of the jobs, in events, errors and metrics. @default 'ClassName.methodName' */
  label?: string;
  /** Deadline of each call in ms from the call. @default the module's `timeoutMs` */
  timeoutMs?: number;
  /**
   * With the `cluster` option: on a secondary, calls are sent to the primary and run there, in its
   * queue and group commit, exactly once (arguments and result must survive a JSON round trip; an
   * error arrives as a `WriteCoordinatorError` with its code). Without a cluster, on the primary,
   * and inside a running job, calls run here as usual.
   * @default false
   */
  forward?: boolean;
  /**
   * The stable name the primary knows the method by (every process of the cluster must have the
   * same names). @default 'ClassName.methodName'
   */
  name?: string;
}

/** @internal What the decorator records on the wrapped method. */
export interface SerializedWriteMetadata {
  coordinator: string;
  label: string;
  timeoutMs: number | undefined;
  /** Set for `forward: true`: the stable name and the undecorated method the primary runs. */
  forward?: { name: string; method: (...args: unknown[]) => unknown };
}

/** @internal Coordinators attached to a decorated instance (or prototype) by the explorer. */
export type AttachedCoordinators = Map<string, WriteCoordinator>;

/**
 * Routes every call of the decorated method through a coordinator as one job: one transaction,
 * committed when the method resolves, rolled back when it throws (the same error is re-thrown).
 * Repositories and managers of the coordinator's DataSource used inside take part in it; calls
 * from inside another job of the same coordinator run inline as a savepoint. The method should
 * be `async`: it always returns a Promise.
 *
 * A call on an instance no coordinator was attached to (not created by Nest, or the module is
 * missing) rejects with `COORDINATOR_NOT_READY`; it never writes unserialised.
 *
 * @throws {InvalidOptionsError} at decoration time, for invalid options.
 * @throws {TypeError} at decoration time, when the target is not a method.
 * @example
 * @Injectable()
 * export class LedgerService {
 *   constructor(@InjectRepository(Account) private readonly accounts: Repository<Account>) {}
 *
 *   @SerializedWrite({ label: 'transfer', timeoutMs: 5_000 })
 *   async transfer(from: number, to: number, amount: number): Promise<void> {
 *     await this.accounts.decrement({ id: from }, 'balance', amount);
 *     await this.accounts.increment({ id: to }, 'balance', amount);
 *   }
 * }
 */
export function SerializedWrite(options: SerializedWriteOptions = {}): MethodDecorator {
  const coordinator = options.coordinator ?? DEFAULT_COORDINATOR_NAME;
  if (typeof coordinator !== 'string' || coordinator === '') {
    throw new InvalidOptionsError('coordinator', 'a non-empty string', coordinator, '@SerializedWrite()');
  }
  validateCallOptions(options, '@SerializedWrite()');
  if (options.forward !== undefined && typeof options.forward !== 'boolean') {
    throw new InvalidOptionsError('forward', 'a boolean', options.forward, '@SerializedWrite()');
  }
  if (options.name !== undefined && (typeof options.name !== 'string' || options.name.trim() === '')) {
    throw new InvalidOptionsError('name', 'a non-empty string', options.name, '@SerializedWrite()');
  }

  return (target, propertyKey, descriptor) => {
    const original: unknown = descriptor.value;
    const owner = typeof target === 'function' ? target.name : target.constructor.name;
    if (typeof original !== 'function') {
      throw new TypeError(`@SerializedWrite() decorates methods only; ${owner}.${String(propertyKey)} is not a method`);
    }
    const method = original as (...a: unknown[]) => unknown;
    const metadata: SerializedWriteMetadata = {
      coordinator,
      label: options.label ?? `${owner}.${String(propertyKey)}`,
      timeoutMs: options.timeoutMs,
      ...(options.forward ? { forward: { name: options.name ?? `${owner}.${String(propertyKey)}`, method } } : {}),
    };
    const runOptions = { label: metadata.label, timeoutMs: metadata.timeoutMs };
    const forwardName = metadata.forward?.name;

    const wrapper = function (this: unknown, ...args: unknown[]): Promise<unknown> {
      const attached = (this as { [ATTACHED_COORDINATORS]?: AttachedCoordinators } | undefined)?.[
        ATTACHED_COORDINATORS
      ];
      const instance = attached?.get(coordinator);
      if (!instance) {
        return Promise.reject(
          new CoordinatorNotReadyError(
            `no coordinator '${coordinator}' is attached to this ${owner} instance: register ` +
              `WriteCoordinatorModule.forRoot(${coordinator === DEFAULT_COORDINATOR_NAME ? '' : `{ name: '${coordinator}' }`}) ` +
              `and let Nest create the instance`,
            { label: metadata.label },
          ),
        );
      }
      const local = () => method.apply(this, args);
      if (forwardName !== undefined) return instance.callForwardable(forwardName, args, local, runOptions);
      return instance.run(local, runOptions);
    };

    for (const key of Reflect.getMetadataKeys(original)) {
      Reflect.defineMetadata(key, Reflect.getMetadata(key, original), wrapper);
    }
    Object.defineProperty(wrapper, 'name', { value: original.name });
    Reflect.defineMetadata(SERIALIZED_WRITE_METADATA, metadata, wrapper);
    descriptor.value = wrapper as typeof descriptor.value;
    return descriptor;
  };
}
