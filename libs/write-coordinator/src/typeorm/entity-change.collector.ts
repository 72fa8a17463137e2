import type {
  EntityMetadata,
  EntitySubscriberInterface,
  InsertEvent,
  RecoverEvent,
  RemoveEvent,
  SoftRemoveEvent,
  UpdateEvent,
} from 'typeorm';
import type { EntityChange, EntityOperation, WriteChange } from '../changes/write-change';
import { entityTopic } from '../changes/change-topics';
import type { TransactionScope } from '../transaction/transaction-scope';

/**
 * @internal A TypeORM subscriber that records the entity rows written inside a job of one
 * coordinator, and publishes them after that job commits (the scope discards them when the job,
 * or the savepoint they were written in, rolls back). Writes outside jobs are not recorded.
 */
export class EntityChangeCollector implements EntitySubscriberInterface {
  constructor(
    private readonly coordinator: string,
    private readonly scope: TransactionScope,
    private readonly publisher: { publish(change: WriteChange): void; wants(): boolean },
  ) {}

  afterInsert(event: InsertEvent<object>): void {
    this.collect('inserted', event.metadata, event.entity);
  }

  afterUpdate(event: UpdateEvent<object>): void {
    this.collect('updated', event.metadata, event.entity ?? event.databaseEntity);
  }

  afterRemove(event: RemoveEvent<object>): void {
    this.collect('removed', event.metadata, event.databaseEntity ?? event.entity, event.entityId);
  }

  afterSoftRemove(event: SoftRemoveEvent<object>): void {
    this.collect('soft-removed', event.metadata, event.databaseEntity ?? event.entity, event.entityId);
  }

  afterRecover(event: RecoverEvent<object>): void {
    this.collect('recovered', event.metadata, event.databaseEntity ?? event.entity, event.entityId);
  }

  private collect(operation: EntityOperation, metadata: EntityMetadata, row: unknown, entityId?: unknown): void {
    const jobId = this.scope.currentJobId;
    if (jobId === undefined || !this.publisher.wants()) return;
    const change: EntityChange = {
      kind: 'entity',
      coordinator: this.coordinator,
      jobId,
      topic: entityTopic(metadata.name, operation),
      entity: metadata.name,
      table: metadata.tableName,
      operation,
      ids: primaryKeys(metadata, row, entityId),
    };
    this.scope.afterCommit(() => this.publisher.publish(change));
  }
}

/** The row's primary key values, from the row or from TypeORM's mixed id (a value or a map). */
function primaryKeys(metadata: EntityMetadata, row: unknown, entityId: unknown): Record<string, unknown> | undefined {
  const fromRow = typeof row === 'object' && row !== null ? metadata.getEntityIdMap(row) : undefined;
  if (fromRow) return fromRow;
  if (entityId === undefined || entityId === null) return undefined;
  if (typeof entityId === 'object') return entityId as Record<string, unknown>;
  const [primary] = metadata.primaryColumns;
  return primary && metadata.primaryColumns.length === 1 ? { [primary.propertyName]: entityId } : undefined;
}
