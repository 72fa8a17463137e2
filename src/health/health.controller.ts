import { Controller, Get, Header } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TypeOrmHealthIndicator } from '@nestjs/terminus';
import { WriteCoordinator, WriteCoordinatorHealthIndicator } from 'nestjs-sqlite-write-coordinator';
import { Registry } from 'prom-client';

@Controller()
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly writes: WriteCoordinatorHealthIndicator,
    private readonly database: TypeOrmHealthIndicator,
    private readonly coordinator: WriteCoordinator,
    private readonly registry: Registry,
  ) {}

  /**
   * Readiness: 503 from the first moment of a SIGTERM (readiness delay) and while the coordinator drains or is
   * stopped, saturated or stalled, or the database is down; 200 `degraded` while the event loop lags.
   */
  @Get('health')
  @HealthCheck()
  check() {
    return this.health.check([
      () => this.writes.isHealthy('writeCoordinator', { maxQueueRatio: 0.9, maxStallMs: 15_000 }),
      () => this.database.pingCheck('database'),
    ]);
  }

  /**
   * The coordinator's metrics snapshot as JSON, with the `pid` of the process that answered (with
   * `WORKERS` > 1 each connection goes to one worker; `cluster.role` says whether it is the primary).
   */
  @Get('metrics')
  metrics() {
    return { pid: process.pid, ...this.coordinator.metrics() };
  }

  /** The same metrics in the Prometheus text format (`WriteCoordinatorPrometheus`). */
  @Get('metrics/prometheus')
  @Header('Content-Type', Registry.PROMETHEUS_CONTENT_TYPE)
  prometheus(): Promise<string> {
    return this.registry.metrics();
  }
}
