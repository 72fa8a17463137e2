import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DynamicModule, Module } from '@nestjs/common';
import { EventEmitterModule } from '@nestjs/event-emitter';
import { TypeOrmModule } from '@nestjs/typeorm';
import { APP_INTERCEPTOR } from '@nestjs/core';
import {
  ClusterOptions,
  PrimaryForwardingInterceptor,
  WriteCoordinator,
  WriteCoordinatorModule,
} from 'nestjs-sqlite-write-coordinator';
import { WriteCoordinatorPrometheus } from 'nestjs-sqlite-write-coordinator/prometheus';
import { Registry } from 'prom-client';
import { DemoConfig, HostsConfig } from './config';
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
          // Several processes on this file: one elected primary runs the forwarded writes; several
          // hosts (LiteFS): the primary host runs them.
          ...(config.hosts ? { cluster: hostsCluster(config.hosts) } : config.writeCluster ? { cluster: {} } : {}),
          isGlobal: true,
          instrumentation: [new WriteCoordinatorPrometheus({ registry: metrics })],
        }),
        LedgerModule,
        HealthModule.forRoot(metrics),
      ],
      providers: config.hosts?.forwardHttp ? [forwardingInterceptor(config.hosts)] : [],
    };
  }
}

/** The coordinator's `cluster` option for several hosts. */
function hostsCluster(hosts: HostsConfig): ClusterOptions {
  const { addresses } = hosts;
  return {
    primary:
      hosts.strategy === 'litefs'
        ? { strategy: 'litefs', ...(hosts.eventsUrl ? { eventsUrl: hosts.eventsUrl } : {}) }
        : {
            strategy: 'static',
            primary: hosts.staticPrimary!,
            ...(hosts.hostname ? { hostname: hosts.hostname } : {}),
          },
    secret: hosts.secret,
    http: {
      port: hosts.forwardPort,
      ...(addresses ? { url: (hostname) => addressOf(addresses, hostname).forward } : {}),
    },
  };
}

/** Every write route works on every host: replayed on the primary's app when this host is not it. */
function forwardingInterceptor(hosts: HostsConfig) {
  const { addresses } = hosts;
  return {
    provide: APP_INTERCEPTOR,
    inject: [WriteCoordinator],
    useFactory: (coordinator: WriteCoordinator) =>
      new PrimaryForwardingInterceptor(coordinator, {
        ...(addresses ? { url: (hostname: string) => addressOf(addresses, hostname).app } : {}),
        ...(hosts.hostname ? { hostname: hosts.hostname } : {}),
      }),
  };
}

function addressOf(
  addresses: NonNullable<HostsConfig['addresses']>,
  hostname: string,
): { app: string; forward: string } {
  const address = addresses[hostname];
  if (!address) throw new Error(`WRITE_HOSTS has no entry for host '${hostname}'`);
  return address;
}
