import type { JobEnding } from '../../queue/queue.types';

/** Name of the tracer (the instrumentation scope) of the write coordinator's spans. */
export const TRACER_NAME = 'nestjs-sqlite-write-coordinator';

/** Name of the span of every job. */
export const JOB_SPAN = 'write_coordinator.job';

export { UNCODED } from '../error-code';

/** Attributes of a job's span (and of its `commit` event). */
export const ATTR = {
  /** Name of the coordinator. */
  coordinator: 'write_coordinator.name',
  jobId: 'write_coordinator.job.id',
  /** The job's label (`WriteOptions.label`, a `@SerializedWrite` label, the `submit()` method). */
  label: 'write_coordinator.job.label',
  /** Time from submission to start (ms); absent when it never started. */
  waitMs: 'write_coordinator.job.wait_ms',
  /** Time from start to settlement (ms), on a committed job. */
  runMs: 'write_coordinator.job.run_ms',
  /** Jobs in the transaction that committed this one (1 without group commit). */
  batchSize: 'write_coordinator.batch.size',
  /** Duration of the COMMIT (ms), on the `commit` event. */
  commitMs: 'write_coordinator.commit_ms',
  /** `completed`, `failed`, `cancelled`, `timed_out`, `dropped` or `rejected`. */
  outcome: 'write_coordinator.job.outcome',
  /** The error's `code` (`CONFLICT`, `TIMEOUT`, …; `UNCODED` for an error of the work itself). */
  errorCode: 'write_coordinator.error.code',
} as const;

/** Values of {@link ATTR.outcome}. */
export const OUTCOME: Record<JobEnding | 'completed' | 'rejected', string> = {
  completed: 'completed',
  failed: 'failed',
  cancelled: 'cancelled',
  timedOut: 'timed_out',
  dropped: 'dropped',
  rejected: 'rejected',
};
