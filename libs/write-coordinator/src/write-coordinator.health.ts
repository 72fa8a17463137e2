import { Injectable } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { HealthIndicatorResult, HealthIndicatorService } from '@nestjs/terminus';
import { InvalidOptionsError } from './errors';
import { getWriteCoordinatorToken } from './inject-write-coordinator.decorator';
import { DEFAULT_COORDINATOR_NAME } from './write-coordinator.constants';
import type { CoordinatorMetrics, WriteCoordinator } from './write-coordinator.service';

/** Thresholds of {@link WriteCoordinatorHealthIndicator.isHealthy}. */
export interface WriteCoordinatorHealthOptions {
  /** Which coordinator to check. @default 'default' */
  coordinator?: string;
  /** Down when `queueDepth >= maxQueueRatio * maxQueue`; in (0, 1]. @default 1 (queue full) */
  maxQueueRatio?: number;
  /** Down when the running job or the oldest waiting one has waited longer (ms). @default 30000 */
  maxStallMs?: number;
}

const DEFAULT_HEALTH = { maxQueueRatio: 1, maxStallMs: 30_000 } as const;

/**
 * Terminus health indicator of a coordinator: `down` (503 through `HealthCheckService`) when it is
 * not ready, draining or stopped, when its queue is at or above `maxQueueRatio` of capacity, or
 * when a job has been running or waiting longer than `maxStallMs`; `up` otherwise. The details
 * always carry the metrics snapshot. It reports; it never throws for an unhealthy coordinator.
 *
 * @example
 * @Get('health')
 * @HealthCheck()
 * check() {
 *   return this.health.check([() => this.writes.isHealthy('writes', { maxQueueRatio: 0.9 })]);
 * }
 */
@Injectable()
export class WriteCoordinatorHealthIndicator {
  constructor(
    private readonly health: HealthIndicatorService,
    private readonly moduleRef: ModuleRef,
  ) {}

  /**
   * @param key the key of this indicator in the health report. @default 'writeCoordinator'
   * @throws {InvalidOptionsError} for thresholds out of range (a programming error).
   */
  async isHealthy(
    key = 'writeCoordinator',
    options: WriteCoordinatorHealthOptions = {},
  ): Promise<HealthIndicatorResult> {
    const name = options.coordinator ?? DEFAULT_COORDINATOR_NAME;
    const maxQueueRatio = options.maxQueueRatio ?? DEFAULT_HEALTH.maxQueueRatio;
    const maxStallMs = options.maxStallMs ?? DEFAULT_HEALTH.maxStallMs;
    if (!(typeof maxQueueRatio === 'number' && maxQueueRatio > 0 && maxQueueRatio <= 1)) {
      throw new InvalidOptionsError(
        'maxQueueRatio',
        'a number in (0, 1]',
        maxQueueRatio,
        'WriteCoordinatorHealthIndicator',
      );
    }
    if (!(typeof maxStallMs === 'number' && maxStallMs > 0)) {
      throw new InvalidOptionsError(
        'maxStallMs',
        'a number of ms greater than 0',
        maxStallMs,
        'WriteCoordinatorHealthIndicator',
      );
    }
    const indicator = this.health.check(key);
    const coordinator = this.find(name);
    if (!coordinator)
      return indicator.down({ coordinator: name, reason: `no coordinator named '${name}' is registered` });

    const metrics = coordinator.metrics();
    const reason = unhealthyReason(coordinator, metrics, maxQueueRatio, maxStallMs);
    return reason === undefined ? indicator.up({ ...metrics }) : indicator.down({ ...metrics, reason });
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
  metrics: CoordinatorMetrics,
  maxQueueRatio: number,
  maxStallMs: number,
): string | undefined {
  if (metrics.state !== 'running') return `coordinator is ${metrics.state}`;
  if (!coordinator.isReady) return 'coordinator is not initialised yet';
  if (metrics.storage.failing) {
    const { consecutiveFailures, lastError } = metrics.storage;
    return `writes are failing on the storage: ${lastError?.code} (${consecutiveFailures} job(s) since the last commit)`;
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
  return undefined;
}
