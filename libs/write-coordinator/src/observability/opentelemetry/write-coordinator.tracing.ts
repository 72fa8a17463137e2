import {
  context,
  ProxyTracerProvider,
  Span,
  SpanKind,
  SpanStatusCode,
  trace,
  Tracer,
  TracerProvider,
} from '@opentelemetry/api';
import {
  CoordinatorInstrumentation,
  CoordinatorObserver,
  InstrumentedCoordinator,
  trustInstrumentation,
} from '../../core/instrumentation';
import type { JobEnding, JobInfo } from '../../queue/queue.types';
import { OptionCheck, validateOptions } from '../../core/coordinator-options';
import type { WriteCoordinatorError } from '../../errors';
import { codeOf } from '../error-code';
import { ATTR, JOB_SPAN, OUTCOME, TRACER_NAME } from './tracing.constants';

/** Options of {@link WriteCoordinatorTracing}; every field is optional. */
export interface WriteCoordinatorTracingOptions {
  /**
   * Where the spans go.
   * @default the global tracer provider (`trace.getTracerProvider()`), the one an OpenTelemetry SDK
   *   registers at start-up; until one is registered, every span is a no-op
   */
  tracerProvider?: TracerProvider;
}

const CHECKS: Record<keyof WriteCoordinatorTracingOptions, OptionCheck> = {
  tracerProvider: (v) =>
    typeof (v as TracerProvider | null)?.getTracer === 'function' ? undefined : 'an OpenTelemetry TracerProvider',
};

const START = { kind: SpanKind.INTERNAL } as const;
/** What the API's global proxy delegates to while no SDK is registered. */
const NO_SDK = new ProxyTracerProvider().getDelegate();

/**
 * OpenTelemetry spans of the write coordinator, through `@opentelemetry/api` only (bring your own
 * SDK): one span per job, `write_coordinator.job`, from its submission to its outcome, child of
 * the span that was active where it was submitted (whichever async context the drain later runs
 * in), with its label, wait time, batch size and outcome (status and error code), and a `commit`
 * event when its transaction commits. A submission refused before it entered the queue gets a
 * span too (outcome `rejected`). No-op until an SDK is registered.
 *
 * Give it to a coordinator's `instrumentation` option (see docs/observability.md). This entry
 * point (`…/opentelemetry`) is the only one that loads `@opentelemetry/api`.
 *
 * @example
 * WriteCoordinatorModule.forRoot({ instrumentation: [new WriteCoordinatorTracing()] });
 *
 * @throws {InvalidOptionsError} for an invalid option, naming the field, expected and received value.
 */
export class WriteCoordinatorTracing implements CoordinatorInstrumentation {
  private readonly tracerProvider: TracerProvider | undefined;

  constructor(options: WriteCoordinatorTracingOptions = {}) {
    validateOptions(CHECKS, options, 'WriteCoordinatorTracing');
    this.tracerProvider = options.tracerProvider;
    trustInstrumentation(this);
  }

  /** @internal Called by each coordinator given this instrumentation. */
  instrument(coordinator: InstrumentedCoordinator): CoordinatorObserver {
    // Without a provider given, the global proxy: an SDK registered later is used from then on.
    const provider = this.tracerProvider ?? trace.getTracerProvider();
    const tracer = provider.getTracer(TRACER_NAME);
    // With no SDK behind the proxy, a job costs one call instead of a context lookup and a no-op span.
    const enabled = provider instanceof ProxyTracerProvider ? () => provider.getDelegate() !== NO_SDK : () => true;
    return new JobSpans(coordinator.name, tracer, enabled);
  }
}

/**
 * The spans of one coordinator's jobs, from `jobSubmitted` to their outcome. Only recording spans
 * are kept: with no SDK (or a job not sampled) each job costs one no-op `startSpan`.
 */
class JobSpans implements CoordinatorObserver {
  /** Spans of the jobs submitted and not settled yet. */
  private readonly open = new Map<string, Span>();
  /** Spans of the jobs running now: a commit now commits them (the job or its batch). */
  private readonly running = new Set<Span>();

  constructor(
    private readonly coordinator: string,
    private readonly tracer: Tracer,
    private readonly enabled: () => boolean,
  ) {}

  jobSubmitted(job: JobInfo): void {
    // Called in the submitter's own call: the active context is the submitter's.
    const span = this.start(job);
    if (span !== undefined) this.open.set(job.jobId, span);
  }

  jobStarted(job: JobInfo, waitMs: number): void {
    if (this.open.size === 0) return; // no SDK, or nothing sampled: the common no-op
    const span = this.open.get(job.jobId);
    if (span === undefined) return;
    span.setAttribute(ATTR.waitMs, waitMs);
    this.running.add(span);
  }

  batchCommitted(size: number, commitMs: number): void {
    for (const span of this.running) {
      span.setAttribute(ATTR.batchSize, size);
      span.addEvent('commit', { [ATTR.batchSize]: size, [ATTR.commitMs]: commitMs });
    }
  }

  jobCompleted(job: JobInfo, _waitMs: number, runMs: number): void {
    const span = this.take(job);
    if (span === undefined) return;
    span.setAttribute(ATTR.runMs, runMs);
    span.setAttribute(ATTR.outcome, OUTCOME.completed);
    span.end();
  }

  jobFailed(job: JobInfo, error: unknown, ending: JobEnding): void {
    const span = this.take(job);
    if (span !== undefined) fail(span, OUTCOME[ending], error);
  }

  jobRejected(job: JobInfo, error: WriteCoordinatorError): void {
    // Refused in the submitter's call (no jobSubmitted before), or after waiting for room.
    const span = this.take(job) ?? this.start(job);
    if (span !== undefined) fail(span, OUTCOME.rejected, error);
  }

  private start(job: JobInfo): Span | undefined {
    if (!this.enabled()) return undefined;
    const span = this.tracer.startSpan(JOB_SPAN, START, context.active());
    if (!span.isRecording()) return undefined;
    span.setAttribute(ATTR.coordinator, this.coordinator);
    span.setAttribute(ATTR.jobId, job.jobId);
    if (job.label !== undefined) span.setAttribute(ATTR.label, job.label);
    return span;
  }

  private take(job: JobInfo): Span | undefined {
    if (this.open.size === 0) return undefined;
    const span = this.open.get(job.jobId);
    if (span === undefined) return undefined;
    this.open.delete(job.jobId);
    this.running.delete(span);
    return span;
  }
}

/** Ends a job's span as failed: outcome, error code, the exception, status ERROR. */
function fail(span: Span, outcome: string, error: unknown): void {
  const code = codeOf(error);
  span.setAttribute(ATTR.outcome, outcome);
  span.setAttribute(ATTR.errorCode, code);
  if (error instanceof Error) span.recordException(error);
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
  span.end();
}
