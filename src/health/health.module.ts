import { DynamicModule, Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { Registry } from 'prom-client';
import { HealthController } from './health.controller';

@Module({
  imports: [TerminusModule.forRoot({ gracefulShutdownTimeoutMs: 0 })],
  controllers: [HealthController],
})
export class HealthModule {
  /** `metrics`: the Prometheus registry served at `GET /metrics/prometheus`. */
  static forRoot(metrics: Registry): DynamicModule {
    return { module: HealthModule, providers: [{ provide: Registry, useValue: metrics }] };
  }
}
