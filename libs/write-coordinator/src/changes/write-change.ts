/**
 * An after-commit notification of committed work (the seed's change event): one per committed
 * `submit()` request ({@link RequestChange}) and one per entity row TypeORM inserted, updated or
 * removed inside a job ({@link EntityChange}). Published only for committed work, never for
 * rolled-back work (nor for a savepoint rolled back inside a job that committed), in commit
 * order; within one job, in the order the writes happened, the request-level change last.
 */
export type WriteChange = RequestChange | EntityChange;

/** Fields every change carries. */
interface ChangeBase {
  /** Name of the coordinator that committed the write. */
  coordinator: string;
  /** Id of the job whose transaction committed it. */
  jobId: string;
  /** Topic to broadcast under (see the `topics` option and {@link EntityChange.topic}). */
  topic: string;
}

/** A committed `submit()` request. */
export interface RequestChange extends ChangeBase {
  kind: 'request';
  /** The request's method, e.g. `CreateSession`. */
  method: string;
  /** The request's params as submitted. */
  params: unknown;
  /** The JSON copy of the handler's result returned to the caller. */
  result: unknown;
  /** The request's meta (request id, source, timestamp), when given. */
  meta?: WriteRequestMeta;
}

/** What happened to an entity row. */
export type EntityOperation = 'inserted' | 'updated' | 'removed' | 'soft-removed' | 'recovered';

/**
 * A committed entity-level write, as TypeORM's subscribers see it: `save`, `insert`, `update`,
 * `remove`, `softRemove`, `recover`, and QueryBuilder writes made inside a job (including writes
 * serialised transparently). Raw SQL is not seen. The topic is `db.<entity>.<operation>`, e.g.
 * `db.account.updated`.
 */
export interface EntityChange extends ChangeBase {
  kind: 'entity';
  /** Entity name, e.g. `Account`. */
  entity: string;
  /** Table name, e.g. `account`. */
  table: string;
  operation: EntityOperation;
  /**
   * Primary key values of the row, e.g. `{ id: 7 }`. Undefined when TypeORM does not know the
   * rows: criteria-based `update()`/`delete()` and QueryBuilder updates and deletes.
   */
  ids?: Record<string, unknown>;
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
  /**
   * Optional: false when nobody would receive changes right now; the coordinator then does not
   * build them (checked once per write, inside the job).
   */
  wants?(): boolean;
}
