import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DynamicModule, Module } from '@nestjs/common';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { TypeOrmModule } from '@nestjs/typeorm';
import { WriteCoordinatorModule } from 'nestjs-sqlite-write-coordinator';
import { WriteCoordinatorPrometheus } from 'nestjs-sqlite-write-coordinator/prometheus';
import { Registry } from 'prom-client';
import { DemoConfig } from './config';
import { HealthModule } from './health/health.module';
import { LedgerModule } from './ledger/ledger.module';

/** The ledger demo: TypeORM on an embedded SQLite file, every write through the coordinator. */
@Module({})
export class AppModule {
  static forRoot(config: DemoConfig): DynamicModule {
    mkdirSync(dirname(config.databasePath), { recursive: true });
    const metrics = new Registry(); // this app's own: GET /metrics/prometheus
    return {
      module: AppModule,
      imports: [
        TypeOrmModule.forRoot({
          type: 'better-sqlite3',
          database: config.databasePath,
          enableWAL: true,
          autoLoadEntities: true,
          synchronize: true,
        }),
        EventEmitterModule.forRoot(),
        WriteCoordinatorModule.forRoot({
          queueSize: config.writeQueueSize,
          timeoutMs: config.writeTimeoutMs,
          readinessDelayMs: config.readinessDelayMs,
          shutdownGraceMs: config.shutdownGraceMs,
          synchronous: config.writeSynchronous,
          maxBatchSize: config.writeMaxBatchSize,
          // Passed only when set: libraries without the option refuse it as unknown.
          ...(config.writeBatchYield === undefined ? {} : { batchYield: config.writeBatchYield }),
          // Several processes on this file: one elected primary runs the forwarded writes.
          ...(config.writeCluster ? { cluster: {} } : {}),
          isGlobal: true,
          instrumentation: [new WriteCoordinatorPrometheus({ registry: metrics })],
        }),
        LedgerModule,
        HealthModule.forRoot(metrics),
      ],
    };
  }
}
