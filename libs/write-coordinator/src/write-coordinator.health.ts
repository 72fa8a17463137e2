import { Inject, Injectable, OnApplicationShutdown, OnModuleInit, Optional } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
// Types only: @nestjs/terminus is an optional peer, loaded at run time by optional-terminus.ts alone.
import type { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { InvalidOptionsError } from './errors';
import { EventLoopDelay, EventLoopMonitor } from './health/event-loop-monitor';
import { getWriteCoordinatorToken } from './decorators/inject-write-coordinator.decorator';
import { DEFAULT_COORDINATOR_NAME, HEALTH_INDICATOR_SERVICE } from './write-coordinator.constants';
import { OPTION_CHECKS, OptionCheck, validateFields } from './core/coordinator-options';
import type { CoordinatorMetrics, WriteCoordinator } from './write-coordinator.service';
import { WriteCoordinatorShutdown } from './write-coordinator.shutdown';

/** Thresholds of {@link WriteCoordinatorHealthIndicator.isHealthy}. */
export interface WriteCoordinatorHealthOptions {
  /** Which coordinator to check. @default 'default' */
  coordinator?: string;
  /** Down when `queueDepth >= maxQueueRatio * maxQueue`; in (0, 1]. @default 1 (queue full) */
  maxQueueRatio?: number;
  /** Down when the running job or the oldest waiting one has waited longer (ms). @default 30000 */
  maxStallMs?: number;
  /**
   * Degraded (HTTP 200, overall status `degraded`) when the event loop's p99 delay over the last
   * 1–2 s exceeds this many ms: every request, health checks included, waits that long for the
   * process before it is even looked at, which neither the queue nor deadlines see. @default 100
   */
  degradedEventLoopDelayMs?: number;
  /** Down (503) when the event loop's p99 delay over the last 1–2 s exceeds this many ms. @default 1000 */
  maxEventLoopDelayMs?: number;
  /**
   * A cluster secondary is down when it has had no primary to forward to for longer than this
   * (a failover normally takes well under a second), or while its primary stops answering. @default 2000
   */
  maxWithoutPrimaryMs?: number;
  /**
   * Several hosts on LiteFS: a replica is down (not ready) once it has missed a transaction the
   * primary reported for longer than this (`metrics().cluster.replication.lagMs`), so that a load
   * balancer stops sending it reads that would be that stale. @default 10000
   */
  maxReplicaLagMs?: number;
}

const DEFAULT_HEALTH = {
  maxQueueRatio: 1,
  maxStallMs: 30_000,
  degradedEventLoopDelayMs: 100,
  maxEventLoopDelayMs: 1_000,
  maxWithoutPrimaryMs: 2_000,
  maxReplicaLagMs: 10_000,
} as const;

/** One validator per threshold, from the module options' table (same ranges, same messages). */
const HEALTH_CHECKS: Record<keyof typeof DEFAULT_HEALTH, OptionCheck> = {
  maxQueueRatio: OPTION_CHECKS.ratio,
  maxStallMs: OPTION_CHECKS.positiveFinite,
  degradedEventLoopDelayMs: OPTION_CHECKS.positiveFinite,
  maxEventLoopDelayMs: OPTION_CHECKS.positiveFinite,
  maxWithoutPrimaryMs: OPTION_CHECKS.positiveFinite,
  maxReplicaLagMs: OPTION_CHECKS.positiveFinite,
};

type Thresholds = { -readonly [K in keyof typeof DEFAULT_HEALTH]: number };

/**
 * Terminus health indicator of a coordinator: `down` (503 through `HealthCheckService`) when it is
 * not ready, shutting down (from the start of the readiness delay), draining or stopped, when its
 * queue is at or above `maxQueueRatio` of capacity, when a job has been running or waiting longer
 * than `maxStallMs`, or when the event loop lags more than `maxEventLoopDelayMs`; `degraded` (still
 * 200) when the event loop lags more than `degradedEventLoopDelayMs`; `up` otherwise. The details
 * always carry the metrics snapshot and the event-loop delay. It reports; it never throws for an
 * unhealthy coordinator.
 *
 * @example
 * @Get('health')
 * @HealthCheck()
 * check() {
 *   return this.health.check([() => this.writes.isHealthy('writes', { maxQueueRatio: 0.9 })]);
 * }
 */
@Injectable()
export class WriteCoordinatorHealthIndicator implements OnModuleInit, OnApplicationShutdown {
  private readonly eventLoop = new EventLoopMonitor();

  constructor(
    // Absent when @nestjs/terminus is not installed: the module boots, isHealthy() says what is missing.
    @Optional() @Inject(HEALTH_INDICATOR_SERVICE) private readonly health: HealthIndicatorService | undefined,
    private readonly moduleRef: ModuleRef,
    @Optional() private readonly shutdown?: WriteCoordinatorShutdown,
  ) {}

  /** @internal Starts measuring the event-loop delay. */
  onModuleInit(): void {
    this.eventLoop.start();
  }

  /** @internal Stops measuring. */
  onApplicationShutdown(): void {
    this.eventLoop.stop();
  }

  /**
   * @param key the key of this indicator in the health report. @default 'writeCoordinator'
   * @throws {InvalidOptionsError} for thresholds out of range (a programming error), or when
   *   `@nestjs/terminus` is not installed (field `@nestjs/terminus`).
   */
  async isHealthy(
    key = 'writeCoordinator',
    options: WriteCoordinatorHealthOptions = {},
  ): Promise<HealthIndicatorResult> {
    if (!this.health) {
      throw new InvalidOptionsError(
        '@nestjs/terminus',
        'installed to use isHealthy() (npm install @nestjs/terminus)',
        undefined,
        'WriteCoordinatorHealthIndicator',
      );
    }
    validateFields(HEALTH_CHECKS, options, 'WriteCoordinatorHealthIndicator');
    const thresholds: Thresholds = { ...DEFAULT_HEALTH };
    for (const field of Object.keys(DEFAULT_HEALTH) as Array<keyof Thresholds>) {
      thresholds[field] = options[field] ?? DEFAULT_HEALTH[field];
    }
    const name = options.coordinator ?? DEFAULT_COORDINATOR_NAME;
    const indicator = this.health.check(key);
    const coordinator = this.find(name);
    if (!coordinator)
      return indicator.down({ coordinator: name, reason: `no coordinator named '${name}' is registered` });

    const details = { ...coordinator.metrics(), eventLoop: this.eventLoop.snapshot() };
    const down = this.downReason(coordinator, details, thresholds);
    if (down !== undefined) return indicator.down({ ...details, reason: down });
    const degraded = degradedReason(details.eventLoop, thresholds);
    return degraded === undefined ? indicator.up(details) : indicator.degraded({ ...details, reason: degraded });
  }

  private downReason(
    coordinator: WriteCoordinator,
    details: CoordinatorMetrics & { eventLoop: EventLoopDelay },
    thresholds: Thresholds,
  ): string | undefined {
    const phase = this.shutdown?.phase ?? 'serving';
    if (phase !== 'serving') return `the application is shutting down (${phase})`;
    return unhealthyReason(coordinator, details, thresholds);
  }

  private find(name: string): WriteCoordinator | undefined {
    try {
      return this.moduleRef.get<WriteCoordinator>(getWriteCoordinatorToken(name), { strict: false });
    } catch {
      return undefined;
    }
  }
}

function unhealthyReason(
  coordinator: WriteCoordinator,
  metrics: CoordinatorMetrics & { eventLoop: EventLoopDelay },
  { maxQueueRatio, maxStallMs, maxEventLoopDelayMs, maxWithoutPrimaryMs, maxReplicaLagMs }: Thresholds,
): string | undefined {
  if (metrics.state !== 'running') return `coordinator is ${metrics.state}`;
  if (!coordinator.isReady) return 'coordinator is not initialised yet';
  if (metrics.storage.failing) {
    const { consecutiveFailures, lastError } = metrics.storage;
    return `writes are failing on the storage: ${lastError?.code} (${consecutiveFailures} job(s) since the last commit)`;
  }
  const cluster = metrics.cluster;
  if (cluster?.role === 'secondary') {
    if (!cluster.primaryResponsive)
      return `the primary (pid ${cluster.primaryPid}) answered nothing for three heartbeats`;
    if (cluster.withoutPrimaryMs > maxWithoutPrimaryMs) {
      return `no primary to forward writes to for ${Math.round(cluster.withoutPrimaryMs)} ms (maxWithoutPrimaryMs ${maxWithoutPrimaryMs})`;
    }
    const lag = cluster.replication;
    if (lag && lag.lagMs > maxReplicaLagMs) {
      return `this replica is ${lag.behind} transaction(s) behind the primary, for ${lag.lagMs} ms (maxReplicaLagMs ${maxReplicaLagMs})`;
    }
  }
  if (metrics.queueDepth >= maxQueueRatio * metrics.maxQueue) {
    return `queue at ${metrics.queueDepth}/${metrics.maxQueue} (maxQueueRatio ${maxQueueRatio})`;
  }
  if (metrics.runningForMs > maxStallMs) {
    return `running job stalled for ${Math.round(metrics.runningForMs)} ms (maxStallMs ${maxStallMs})`;
  }
  if (metrics.oldestWaitMs > maxStallMs) {
    return `oldest waiting job stalled for ${Math.round(metrics.oldestWaitMs)} ms (maxStallMs ${maxStallMs})`;
  }
  if (metrics.eventLoop.p99 > maxEventLoopDelayMs) {
    return eventLoopReason(metrics.eventLoop, 'maxEventLoopDelayMs', maxEventLoopDelayMs);
  }
  return undefined;
}

function degradedReason(eventLoop: EventLoopDelay, { degradedEventLoopDelayMs }: Thresholds): string | undefined {
  return eventLoop.p99 > degradedEventLoopDelayMs
    ? eventLoopReason(eventLoop, 'degradedEventLoopDelayMs', degradedEventLoopDelayMs)
    : undefined;
}

function eventLoopReason(eventLoop: EventLoopDelay, threshold: string, ms: number): string {
  return `event loop overloaded: p99 delay ${eventLoop.p99} ms over the last ${eventLoop.windowMs}–${2 * eventLoop.windowMs} ms (${threshold} ${ms})`;
}
