import type { EventEmitter2 } from '@nestjs/event-emitter';
import { WriteCoordinatorEvents } from './write-coordinator.events';

/**
 * An after-commit notification of a committed `submit()` request (the seed's change event).
 * Published only for committed work, never for rolled-back work, in commit order.
 */
export interface WriteChange {
  /** Name of the coordinator that committed the write. */
  coordinator: string;
  /** Id of the job whose transaction committed it. */
  jobId: string;
  /** The request's method, e.g. `ledger.transfer`. */
  method: string;
  /** Topic to broadcast under; the method name unless a later mapping says otherwise. */
  topic: string;
  /** The request's params as submitted. */
  params: unknown;
  /** The JSON copy of the handler's result returned to the caller. */
  result: unknown;
  /** The request's meta (request id, source, timestamp), when given. */
  meta?: WriteRequestMeta;
}

/** Who sent a `submit()` request and when; carried through to events and changes. */
export interface WriteRequestMeta {
  requestId?: string;
  source?: string;
  timestamp?: string;
}

/**
 * Receives after-commit changes. Called synchronously on the drain, in commit order; it must not
 * block. A publisher that throws (or rejects) is logged and never fails the write.
 *
 * @example
 * const publisher: ChangePublisher = { publish: (change) => bus.send(change.topic, change) };
 * WriteCoordinatorModule.forRoot({ publisher });
 */
export interface ChangePublisher {
  publish(change: WriteChange): void | Promise<void>;
}

/** @internal The default publisher: emits `WriteCoordinatorEvents.Change` on the app's EventEmitter2. */
export function createEventEmitterPublisher(emitter: EventEmitter2): ChangePublisher {
  return { publish: (change) => void emitter.emit(WriteCoordinatorEvents.Change, change) };
}
