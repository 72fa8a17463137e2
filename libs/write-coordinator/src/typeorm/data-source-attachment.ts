import type { DataSource } from 'typeorm';
import type { WriteChange } from '../changes/write-change';
import { EntityChangeCollector } from './entity-change.collector';
import { InvalidOptionsError } from '../errors';
import { ReadConnection } from './read-connection';
import { applyWriterPragmas, SynchronousLevel } from '../sqlite/sqlite-pragmas';
import type { TransactionScope } from '../transaction/transaction-scope';
import { assertUnrouted, registerRouter, unregisterRouter } from './typeorm-patches';
import { JobEnqueuer, OutsideWriteMode, WriteRouter } from './write-router';
import { WriterConnection } from '../transaction/writer-connection';

/** @internal What a coordinator sets up on its DataSource at bootstrap. */
export interface DataSourceAttachment {
  readonly dataSource: DataSource;
  readonly writer: WriterConnection;
  /** Undoes everything: TypeORM's methods, the read connection, the change subscriber. */
  detach(): void;
}

/** @internal What {@link attachToDataSource} needs of a coordinator's (validated) options. */
export interface AttachmentOptions {
  /** The coordinator's name, for messages. */
  readonly name: string;
  readonly synchronous: SynchronousLevel;
  readonly foreignKeys: boolean;
  readonly busyTimeoutMs: number;
  readonly busyBudgetMs: number;
  readonly readIsolation: boolean;
  readonly writesOutsideJobs: OutsideWriteMode;
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
  options: AttachmentOptions,
  scope: TransactionScope,
  enqueue: JobEnqueuer,
  publisher: { publish(change: WriteChange): void; wants(): boolean } | undefined,
  warn: (message: string) => void,
): DataSourceAttachment {
  if (dataSource.options.type !== 'better-sqlite3') {
    throw new InvalidOptionsError('dataSource', "a DataSource of type 'better-sqlite3'", dataSource.options.type);
  }
  if (!dataSource.isInitialized) {
    throw new InvalidOptionsError(
      'dataSource',
      'an initialised DataSource (await dataSource.initialize())',
      'one not initialised',
    );
  }
  // Before anything touches it: a refused attach must leave the other coordinator's PRAGMAs alone.
  assertUnrouted(dataSource, options.name);
  const writer = new WriterConnection(dataSource, options.busyBudgetMs);
  if (writer.runner.isTransactionActive) {
    throw new InvalidOptionsError(
      'dataSource',
      'a DataSource with no transaction open at bootstrap',
      'an open transaction',
    );
  }
  applyWriterPragmas(writer.connection, {
    synchronous: options.synchronous,
    foreignKeys: options.foreignKeys,
    busyTimeoutMs: options.busyTimeoutMs,
    requireWal: options.readIsolation,
  });
  const reader = options.readIsolation ? new ReadConnection(writer, options.busyTimeoutMs) : undefined;
  const router = new WriteRouter(writer, scope, reader, options.writesOutsideJobs, enqueue, warn);
  try {
    registerRouter(dataSource, router, options.name);
  } catch (error) {
    reader?.close();
    throw error;
  }
  router.install();
  const collector = publisher && new EntityChangeCollector(options.name, scope, publisher);
  if (collector) dataSource.subscribers.push(collector);
  let attached = true;
  const detach = () => {
    if (!attached) return; // once: by destroy() or by the coordinator, whichever comes first
    attached = false;
    unregisterRouter(dataSource, router);
    router.uninstall();
    reader?.close();
    const index = collector ? dataSource.subscribers.indexOf(collector) : -1;
    if (index >= 0) dataSource.subscribers.splice(index, 1);
    if (Object.hasOwn(dataSource, 'destroy')) delete (dataSource as Partial<DataSource>).destroy;
  };
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
  return { dataSource, writer, detach };
}
