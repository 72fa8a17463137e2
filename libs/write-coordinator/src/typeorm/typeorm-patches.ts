import {
  DataSource,
  DeleteQueryBuilder,
  EntityManager,
  InsertQueryBuilder,
  RelationQueryBuilder,
  UpdateQueryBuilder,
} from 'typeorm';
import { SoftDeleteQueryBuilder } from 'typeorm/query-builder/SoftDeleteQueryBuilder';
import { InvalidOptionsError } from '../errors';
import type { WriteRouter } from './write-router';

/**
 * The EntityManager methods that write. Each runs as one job when called outside a job, so a
 * `save()` with cascades stays atomic. Repository methods delegate to these.
 */
const MANAGER_WRITES = [
  'save',
  'remove',
  'softRemove',
  'recover',
  'insert',
  'upsert',
  'update',
  'updateAll',
  'delete',
  'deleteAll',
  'softDelete',
  'restore',
  'clear',
  'increment',
  'decrement',
] as const;

/** Query builders whose methods write, with those methods. */
const BUILDER_WRITES: ReadonlyArray<[{ prototype: object; name: string }, readonly string[]]> = [
  [InsertQueryBuilder, ['execute']],
  [UpdateQueryBuilder, ['execute']],
  [DeleteQueryBuilder, ['execute']],
  [SoftDeleteQueryBuilder, ['execute']],
  [RelationQueryBuilder, ['set', 'add', 'remove', 'addAndRemove']],
];

/** The router of each DataSource that has a coordinator; others are left to TypeORM alone. */
const routers = new WeakMap<DataSource, WriteRouter>();
let installed = false;

/**
 * @internal Attaches a router to a DataSource (installing the TypeORM patches on first use).
 * @throws {InvalidOptionsError} when another coordinator already serialises this DataSource.
 */
export function registerRouter(dataSource: DataSource, router: WriteRouter, coordinator: string): void {
  assertUnrouted(dataSource, coordinator);
  installTypeormPatches();
  routers.set(dataSource, router);
}

/**
 * @internal Checks that no other coordinator serialises this DataSource (before touching it).
 * @throws {InvalidOptionsError} when one does.
 */
export function assertUnrouted(dataSource: DataSource, coordinator: string): void {
  if (routers.has(dataSource)) {
    throw new InvalidOptionsError(
      'dataSource',
      'a DataSource no other coordinator serialises (one coordinator per DataSource)',
      `the DataSource already used by another coordinator than '${coordinator}'`,
    );
  }
}

/** @internal Detaches a DataSource's router; its writes are TypeORM's alone again. */
export function unregisterRouter(dataSource: DataSource, router: WriteRouter): void {
  if (routers.get(dataSource) === router) routers.delete(dataSource);
}

/**
 * Wraps the write methods of TypeORM's EntityManager and query builders, once per process. A
 * wrapped method looks up the router of its DataSource; without one it is TypeORM's own method.
 */
function installTypeormPatches(): void {
  if (installed) return;
  installed = true;
  for (const method of MANAGER_WRITES) wrapWrite(EntityManager.prototype, method, `EntityManager.${method}`);
  for (const [builder, methods] of BUILDER_WRITES) {
    for (const method of methods) wrapWrite(builder.prototype, method, `${builder.name}.${method}`);
  }
  const transaction = EntityManager.prototype.transaction as (
    this: EntityManager,
    ...args: unknown[]
  ) => Promise<unknown>;
  EntityManager.prototype.transaction = function (this: EntityManager, ...args: unknown[]) {
    const router = routers.get(this.dataSource);
    const work = args.find((arg) => typeof arg === 'function') as ((manager: EntityManager) => unknown) | undefined;
    if (!router || !work) return transaction.apply(this, args);
    return router.transaction(work, () => transaction.apply(this, args), {
      level: typeof args[0] === 'string' ? args[0] : undefined,
      // TypeORM releases the runner it took from the DataSource, not a manager's own one.
      releasesRunner: !this.queryRunner,
    });
  } as EntityManager['transaction'];
}

function wrapWrite(prototype: object, method: string, operation: string): void {
  const target = prototype as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const original = target[method];
  if (typeof original !== 'function') return;
  target[method] = function (this: { dataSource: DataSource }, ...args: unknown[]) {
    const router = routers.get(this.dataSource);
    return router ? router.write(operation, () => original.apply(this, args)) : original.apply(this, args);
  };
}
