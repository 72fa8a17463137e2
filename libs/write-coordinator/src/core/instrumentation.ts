import type { WriteQueueObserver } from '../queue/queue.types';
import type { CoordinatorMetrics } from './coordinator';

/**
 * What a coordinator reports to an observer: the queue's job lifecycle (every event of
 * {@link WriteQueueObserver}) plus each committed transaction. Every method is optional; a method an
 * observer leaves out costs nothing.
 */
export interface CoordinatorObserver extends WriteQueueObserver {
  /**
   * A transaction committed: `size` jobs in it (1 without group commit), its COMMIT took
   * `commitMs`. Called before those jobs' callers are answered (before their `jobCompleted`).
   */
  batchCommitted?(size: number, commitMs: number): void;
}

/** The coordinator as an instrumentation sees it. */
export interface InstrumentedCoordinator {
  /** Name of the coordinator (the label of its metrics). */
  readonly name: string;
  /** A consistent snapshot of its counters and gauges (read it at scrape time, not per job). */
  metrics(): CoordinatorMetrics;
}

/**
 * Metrics or tracing added to a coordinator through its `instrumentation` option (the library's
 * Prometheus exporter and OpenTelemetry tracing are two). Each coordinator given it calls
 * {@link instrument} once, from its constructor.
 *
 * @example
 * const coordinator = new Coordinator({ instrumentation: [new WriteCoordinatorPrometheus({ registry })] });
 */
export interface CoordinatorInstrumentation {
  /**
   * Called once per coordinator, while it is being constructed (its `metrics()` works only once
   * the constructor returned: call it later, e.g. at scrape time).
   * @returns the observer the coordinator reports its jobs and commits to. An observer that
   *   throws never changes the outcome of a job.
   */
  instrument(coordinator: InstrumentedCoordinator): CoordinatorObserver;
}

const EVENTS = [
  'jobSubmitted',
  'jobAccepted',
  'jobStarted',
  'jobCompleted',
  'jobFailed',
  'jobRejected',
  'queueSaturated',
  'queueDrained',
  'batchCommitted',
] as const satisfies ReadonlyArray<keyof CoordinatorObserver>;

/**
 * @internal One observer that tells every given observer, in order; each one is shielded from the
 * others' exceptions. An event nobody observes stays undefined (the queue then skips it); with a
 * single observer, that observer itself is returned.
 */
export function combineObservers(
  observers: ReadonlyArray<CoordinatorObserver | undefined>,
): CoordinatorObserver | undefined {
  const present = observers.filter((observer): observer is CoordinatorObserver => observer !== undefined);
  if (present.length <= 1) return present[0];
  type Handler = (a?: unknown, b?: unknown, c?: unknown) => void;
  const combined: Record<string, Handler> = {};
  for (const event of EVENTS) {
    const handlers = present
      .filter((observer) => observer[event] !== undefined)
      .map((observer) => (observer[event] as Handler).bind(observer));
    if (handlers.length === 0) continue;
    // The caller (the queue, reportCommit) shields the last handler; each one before it is shielded
    // here, so that it cannot keep the others from hearing of the job. No event has more than three
    // arguments: a fixed arity spares an array per call.
    const last = handlers.pop()!;
    const first = handlers;
    combined[event] =
      first.length === 0
        ? last
        : (a, b, c) => {
            for (const handler of first) {
              try {
                handler(a, b, c);
              } catch {
                // A reporting hook: the others still hear of the job.
              }
            }
            last(a, b, c);
          };
  }
  return combined as CoordinatorObserver;
}

/** Instrumentations of this library: their observers get the queue's job records as they are. */
const trusted = new WeakSet<CoordinatorInstrumentation>();

/**
 * @internal Marks one of this library's own instrumentations: its observer is handed the queue's
 * job records directly, as the Nest event bridge is, instead of a copy of each job's id and label
 * per event (a copy per event costs more than the exporter itself on the drain's hot path).
 */
export function trustInstrumentation(instrumentation: CoordinatorInstrumentation): void {
  trusted.add(instrumentation);
}

/** @internal True for an instrumentation of this library (see {@link trustInstrumentation}). */
export function isTrustedInstrumentation(instrumentation: CoordinatorInstrumentation): boolean {
  return trusted.has(instrumentation);
}

/** @internal Tells `observer` of a commit; an observer that throws never reaches the transaction layer. */
export function reportCommit(observer: CoordinatorObserver | undefined, size: number, commitMs: number): void {
  if (observer?.batchCommitted === undefined) return;
  try {
    observer.batchCommitted(size, commitMs);
  } catch {
    // A reporting hook: the batch is committed whatever it does.
  }
}
