import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown, Optional } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { RESOLVED_OPTIONS } from './write-coordinator.constants';
import type { ResolvedWriteCoordinatorOptions } from './core/coordinator-options';
import { HttpConnectionDrain } from './http/http-connection-drain';
import { ShutdownPhase, ShutdownSequence } from './http/shutdown-sequence';

/** One sequence per application: every coordinator module of an app shares its `HttpAdapterHost`. */
const sequences = new WeakMap<object, ShutdownSequence>();

/**
 * @internal The Nest face of the graceful shutdown ({@link ShutdownSequence}): at bootstrap it
 * adds this coordinator's `readinessDelayMs` and `shutdownGraceMs` to its application's sequence
 * and, with `gracefulHttpShutdown`, hands it the HTTP server found through `HttpAdapterHost`. The
 * coordinator awaits {@link beforeDrain} in its `beforeApplicationShutdown`; the health indicator
 * reads {@link phase}.
 */
@Injectable()
export class WriteCoordinatorShutdown implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly sequence: ShutdownSequence;

  constructor(
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedWriteCoordinatorOptions,
    @Optional() private readonly adapterHost?: HttpAdapterHost,
  ) {
    const key: object = adapterHost ?? this;
    let sequence = sequences.get(key);
    if (!sequence) {
      sequence = new ShutdownSequence(new Logger('WriteCoordinatorShutdown'));
      sequences.set(key, sequence);
    }
    this.sequence = sequence;
  }

  /** Where the application is in its shutdown. */
  get phase(): ShutdownPhase {
    return this.sequence.phase;
  }

  /** Registers this coordinator's settings (the HTTP server exists by now, before it listens). */
  onApplicationBootstrap(): void {
    const server: unknown = this.options.gracefulHttpShutdown
      ? this.adapterHost?.httpAdapter?.getHttpServer?.()
      : undefined;
    this.sequence.configure({
      readinessDelayMs: this.options.readinessDelayMs,
      graceMs: this.options.shutdownGraceMs,
      http: HttpConnectionDrain.canDrain(server) ? HttpConnectionDrain.of(server) : undefined,
    });
  }

  /** Readiness delay (on SIGTERM), then no new HTTP connections; resolves when the drain may start. */
  beforeDrain(signal: string | undefined): Promise<void> {
    return this.sequence.beforeDrain(signal);
  }

  /** Logs the last phase once, after Nest closed the HTTP server. */
  onApplicationShutdown(): void {
    this.sequence.finished();
  }
}
