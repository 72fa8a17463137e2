import { Controller, DynamicModule, Get, HttpCode, Injectable, Module, Post } from '@nestjs/common';
import { EventEmitterModule, OnEvent } from '@nestjs/event-emitter';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import {
  InjectWriteCoordinator,
  JobCompletedEvent,
  WriteCoordinator,
  WriteCoordinatorEvents,
  WriteCoordinatorHealthIndicator,
} from 'nestjs-sqlite-write-coordinator';
import { WriteCoordinatorTracing } from 'nestjs-sqlite-write-coordinator/opentelemetry';
import { WriteCoordinatorPrometheus } from 'nestjs-sqlite-write-coordinator/prometheus';
import { Registry } from 'prom-client';
import { Account } from '../shared/ledger.entities';
import { LedgerModule } from '../shared/ledger.module';

/** Records every JobCompleted event it hears. */
@Injectable()
export class CompletedJobs {
  readonly labels: string[] = [];

  @OnEvent(WriteCoordinatorEvents.JobCompleted)
  onCompleted(event: JobCompletedEvent): void {
    this.labels.push(event.label ?? '(none)');
  }
}

@Controller()
export class LedgerController {
  constructor(
    @InjectWriteCoordinator() private readonly writes: WriteCoordinator,
    private readonly health: HealthCheckService,
    private readonly writesHealth: WriteCoordinatorHealthIndicator,
  ) {}

  @Post('accounts')
  async open(): Promise<{ id: number }> {
    await this.writes.run((manager) => manager.insert(Account, { id: 1, balance: 0 }), { label: 'open account' });
    return { id: 1 };
  }

  /** A request for a handler nobody registered: the exception filter makes it a 404. */
  @Post('writes/unknown')
  @HttpCode(200)
  unknown(): Promise<unknown> {
    return this.writes.submit({ method: 'no.such.handler' });
  }

  @Get('writes/metrics')
  metrics() {
    return this.writes.metrics();
  }

  @Get('health')
  @HealthCheck()
  check() {
    return this.health.check([() => this.writesHealth.isHealthy('writeCoordinator')]);
  }
}

/** The registry the app's Prometheus exporter writes to. */
export const registry = new Registry();

/** The consumer's application with every peer: events, Terminus, HTTP, Prometheus. */
@Module({})
export class AppModule {
  static forDatabase(database: string): DynamicModule {
    return {
      module: AppModule,
      imports: [
        LedgerModule.forDatabase(database, {
          // Tracing without an SDK registered: no spans, but the entry must load and type-check.
          instrumentation: [new WriteCoordinatorPrometheus({ registry }), new WriteCoordinatorTracing()],
        }),
        EventEmitterModule.forRoot(),
        TerminusModule,
      ],
      controllers: [LedgerController],
      providers: [CompletedJobs],
    };
  }
}
