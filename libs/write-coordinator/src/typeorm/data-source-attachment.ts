import type { DataSource } from 'typeorm';
import type { WriteChange } from '../changes/change-publisher';
import { EntityChangeCollector } from './entity-change.collector';
import { InvalidOptionsError } from '../errors';
import { ReadConnection } from './read-connection';
import { applyWriterPragmas } from '../sqlite/sqlite-pragmas';
import type { TransactionScope } from '../transaction/transaction-scope';
import { registerGuard, unregisterGuard } from './typeorm-patches';
import type { ResolvedWriteCoordinatorOptions } from '../core/coordinator-options';
import { JobEnqueuer, WriteGuard } from './write-router';
import { WriterGate } from '../transaction/writer-connection';

/** @internal What a coordinator sets up on its DataSource at bootstrap. */
export interface DataSourceAttachment {
  readonly dataSource: DataSource;
  readonly gate: WriterGate;
  /** Undoes everything: TypeORM's methods, the read connection, the change subscriber. */
  detach(): void;
}

/** The DataSource's own `destroy`, which the attachment wraps. */
type Destroy = DataSource['destroy'];

/**
 * @internal Takes over a DataSource for a coordinator: applies and verifies the PRAGMAs, opens
 * the read connection, routes every write path through the coordinator and subscribes to entity
 * changes (when there is a publisher).
 *
 * @throws {InvalidOptionsError} for a DataSource that is not better-sqlite3, already has a
 *   coordinator, or refuses a PRAGMA.
 */
export function attachToDataSource(
  dataSource: DataSource,
  options: ResolvedWriteCoordinatorOptions,
  scope: TransactionScope,
  enqueue: JobEnqueuer,
  publisher: { publish(change: WriteChange): void; wants(): boolean } | undefined,
): DataSourceAttachment {
  if (dataSource.options.type !== 'better-sqlite3') {
    throw new InvalidOptionsError('dataSource', "a DataSource of type 'better-sqlite3'", dataSource.options.type);
  }
  const gate = new WriterGate(dataSource, options.busyBudgetMs);
  if (gate.runner.isTransactionActive) {
    throw new InvalidOptionsError(
      'dataSource',
      'a DataSource with no transaction open at bootstrap',
      'an open transaction',
    );
  }
  applyWriterPragmas(gate.connection, {
    synchronous: options.synchronous,
    foreignKeys: options.foreignKeys,
    busyTimeoutMs: options.busyTimeoutMs,
    requireWal: options.readIsolation,
  });
  const reader = options.readIsolation ? new ReadConnection(gate, options.busyTimeoutMs) : undefined;
  const guard = new WriteGuard(gate, scope, reader, options.writesOutsideJobs, enqueue, options.name);
  try {
    registerGuard(dataSource, guard, options.name);
  } catch (error) {
    reader?.close();
    throw error;
  }
  guard.install();
  const collector = publisher && new EntityChangeCollector(options.name, scope, publisher);
  if (collector) dataSource.subscribers.push(collector);
  const detach = () => {
    if (!guards.delete(guard)) return;
    unregisterGuard(dataSource, guard);
    guard.uninstall();
    reader?.close();
    const index = collector ? dataSource.subscribers.indexOf(collector) : -1;
    if (index >= 0) dataSource.subscribers.splice(index, 1);
    if (Object.hasOwn(dataSource, 'destroy')) delete (dataSource as Partial<DataSource>).destroy;
  };
  guards.add(guard);
  // Until the DataSource is destroyed, its writes go through the drain or are refused (SHUTDOWN
  // once the coordinator stopped): giving it back to plain TypeORM earlier would let writes issued
  // during the rest of the application's shutdown run unserialised.
  const destroy: Destroy = dataSource.destroy;
  Object.defineProperty(dataSource, 'destroy', {
    configurable: true,
    writable: true,
    value: function (this: DataSource) {
      detach();
      return destroy.call(this);
    },
  });
  return { dataSource, gate, detach };
}

/** Guards still installed (detach runs once, by `destroy()` or by the coordinator). */
const guards = new WeakSet<WriteGuard>();
