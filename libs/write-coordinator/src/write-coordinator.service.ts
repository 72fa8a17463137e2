import {
  BeforeApplicationShutdown,
  Logger,
  OnApplicationBootstrap,
  OnApplicationShutdown,
  OnModuleInit,
} from '@nestjs/common';
import type { ModuleRef } from '@nestjs/core';
import type { EventEmitter2 } from '@nestjs/event-emitter';
import { Coordinator } from './core/coordinator';
import type { ResolvedWriteCoordinatorOptions } from './core/coordinator-options';
import {
  createClusterEventBridge,
  createEventBridge,
  createEventEmitterPublisher,
} from './write-coordinator.event-bridge';
import { resolveDataSource } from './write-coordinator.data-source';
import { WriteCoordinatorShutdown } from './write-coordinator.shutdown';

export type { CoordinatorMetrics, WriteOptions, WriteRequest } from './core/coordinator';

/**
 * Serialises every write of one TypeORM DataSource through a single drain: each job runs alone,
 * in its own transaction, in submission order. Inject it (`WriteCoordinator` for the default one,
 * `@InjectWriteCoordinator(name)` for a named one).
 *
 * It is the Nest-free {@link Coordinator} plus the Nest lifecycle (attached at bootstrap, drained
 * at shutdown before the DataSource is destroyed), the DataSource looked up through `ModuleRef`,
 * Nest's `Logger`, and events on the app's EventEmitter2.
 */
export class WriteCoordinator
  extends Coordinator
  implements OnModuleInit, OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown
{
  /** @internal Built by `WriteCoordinatorModule`; do not construct it yourself. */
  constructor(
    options: ResolvedWriteCoordinatorOptions,
    private readonly moduleRef: ModuleRef,
    emitter: EventEmitter2 | undefined,
  ) {
    const logger = new Logger(`WriteCoordinator(${options.name})`);
    super(
      options,
      {
        publisher: emitter && createEventEmitterPublisher(emitter),
        cluster: emitter && createClusterEventBridge(options.name, emitter),
        log: {
          log: (message) => logger.log(message),
          warn: (message) => logger.warn(message),
          error: (message, error) => logger.error(message, error),
        },
      },
      emitter && createEventBridge(options.name, emitter),
    );
  }

  protected override get attachHint(): string {
    return 'WriteCoordinatorModule.forRoot() attaches it at bootstrap';
  }

  /**
   * @internal Resolves the DataSource and takes it over (PRAGMAs, read connection, every write
   * path routed through this coordinator); from now on the coordinator accepts work.
   */
  onModuleInit(): void {
    this.attachNow(resolveDataSource(this.moduleRef, this.options.dataSource));
  }

  /**
   * @internal With the `cluster` option, joins the cluster once every module has initialised (the
   * `@WriteHandler` and forwardable names are part of the handshake): takes the primary lock or
   * connects to its holder. Writes made before then (in `onModuleInit`) run locally, as `run()`.
   */
  async onApplicationBootstrap(): Promise<void> {
    await this.startCluster();
  }

  /**
   * @internal Waits for the application's readiness delay (on SIGTERM: health reports 503 while
   * the app keeps serving; then the HTTP server stops accepting connections), drains for at most
   * `shutdownGraceMs`, then shuts down; runs before `@nestjs/typeorm` destroys the DataSource (in
   * `onApplicationShutdown`).
   */
  async beforeApplicationShutdown(signal?: string): Promise<void> {
    await this.moduleRef.get(WriteCoordinatorShutdown, { strict: true }).beforeDrain(signal);
    await this.stop(this.options.shutdownGraceMs);
  }

  /**
   * @internal The coordinator stopped in `beforeApplicationShutdown`. A DataSource of
   * `@nestjs/typeorm` stays attached until it is destroyed (later in this phase), its writes
   * refused with `SHUTDOWN` meanwhile, so that no shutdown hook of another module can write
   * unserialised. A DataSource the app passed as an instance is the app's: it is given back now,
   * usable again (by plain TypeORM, or by a coordinator of another app).
   */
  onApplicationShutdown(): void {
    if (typeof this.options.dataSource === 'object') this.release();
    else this.releaseIfDestroyed();
  }
}
