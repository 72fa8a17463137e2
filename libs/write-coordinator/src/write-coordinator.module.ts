import { DynamicModule, Module } from '@nestjs/common';
import {
  WriteCoordinatorConfigurableModule,
  WriteCoordinatorModuleAsyncOptions,
} from './write-coordinator.module-definition';
import type { WriteCoordinatorOptions } from './core/coordinator-options';

/**
 * Registers one coordinator (per call) that serialises every write of a TypeORM DataSource, with
 * its `@SerializedWrite` / `@WriteHandler` wiring and its health indicator. Emits events when the
 * app registered `EventEmitterModule.forRoot()`; `@nestjs/event-emitter` is optional and need not be installed.
 *
 * @example
 * @Module({
 *   imports: [
 *     TypeOrmModule.forRoot({ type: 'better-sqlite3', database: 'data/app.db', autoLoadEntities: true }),
 *     EventEmitterModule.forRoot(),
 *     WriteCoordinatorModule.forRoot({ queueSize: 1024, timeoutMs: 5_000, isGlobal: true }),
 *   ],
 * })
 * export class AppModule {}
 */
@Module({})
export class WriteCoordinatorModule extends WriteCoordinatorConfigurableModule {
  /**
   * Registers a coordinator with static options.
   * @throws {InvalidOptionsError} at bootstrap, naming the invalid field.
   */
  static override forRoot(options: WriteCoordinatorOptions = {}): DynamicModule {
    return super.forRoot(options);
  }

  /**
   * Registers a coordinator whose options come from a factory, class or existing provider.
   * `name` and `isGlobal` are given here, statically: the injection token depends on them.
   * @throws {InvalidOptionsError} at bootstrap, naming the invalid field.
   * @example
   * WriteCoordinatorModule.forRootAsync({
   *   name: 'audit',
   *   imports: [ConfigModule],
   *   inject: [ConfigService],
   *   // environment values are strings: convert them, or bootstrap fails with INVALID_OPTIONS
   *   useFactory: (config: ConfigService) => ({ dataSource: 'audit', queueSize: Number(config.get('AUDIT_QUEUE') ?? 256) }),
   * })
   */
  static override forRootAsync(options: WriteCoordinatorModuleAsyncOptions): DynamicModule {
    return super.forRootAsync(options);
  }
}
