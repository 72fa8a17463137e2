import type { WriteErrorCode } from './errors';
/**
 * Names of the events a coordinator emits through EventEmitter2 (when the app registered
 * `EventEmitterModule.forRoot()`). Listen with `@OnEvent(WriteCoordinatorEvents.JobFailed)`.
 */
export const WriteCoordinatorEvents = Object.freeze({
  /** A job entered the queue. Payload {@link JobAcceptedEvent}. */
  JobAccepted: 'write-coordinator.job.accepted',
  /** A job began running. Payload {@link JobStartedEvent}. */
  JobStarted: 'write-coordinator.job.started',
  /** A job's transaction committed. Payload {@link JobCompletedEvent}. */
  JobCompleted: 'write-coordinator.job.completed',
  /** A job ended without commit (threw, cancelled, timed out, dropped). Payload {@link JobFailedEvent}. */
  JobFailed: 'write-coordinator.job.failed',
  /** A submission was refused before entering the queue. Payload {@link JobRejectedEvent}. */
  JobRejected: 'write-coordinator.job.rejected',
  /** The queue reached its capacity. Payload {@link QueueSaturatedEvent}. */
  QueueSaturated: 'write-coordinator.queue.saturated',
  /** The queue became empty after work. Payload {@link QueueDrainedEvent}. */
  QueueDrained: 'write-coordinator.queue.drained',
  /** A `submit()` request committed (default change publisher). Payload {@link WriteChange}. */
  Change: 'write-coordinator.change',
} as const);

/** Union of the event names. */
export type WriteCoordinatorEventName = (typeof WriteCoordinatorEvents)[keyof typeof WriteCoordinatorEvents];

/** Fields every job event carries. */
export interface JobEventBase {
  /** Name of the coordinator. */
  coordinator: string;
  /** Id of the job, unique within the process. */
  jobId: string;
  /** The label given to the job, if any. */
  label?: string;
}

/** Payload of {@link WriteCoordinatorEvents.JobAccepted}. */
export interface JobAcceptedEvent extends JobEventBase {
  /** Jobs waiting, this one included. */
  queueDepth: number;
}

/** Payload of {@link WriteCoordinatorEvents.JobStarted}. */
export interface JobStartedEvent extends JobEventBase {
  /** Time from submission to start. */
  waitMs: number;
}

/** Payload of {@link WriteCoordinatorEvents.JobCompleted}. */
export interface JobCompletedEvent extends JobEventBase {
  waitMs: number;
  /** Time from start to commit. */
  runMs: number;
}

/** Payload of {@link WriteCoordinatorEvents.JobFailed}. */
export interface JobFailedEvent extends JobEventBase {
  /** The error the caller received (or, for a job whose caller was already rejected, its own). */
  error: unknown;
  /** The error's code when it is a `WriteCoordinatorError`. */
  code?: WriteErrorCode;
}

/** Payload of {@link WriteCoordinatorEvents.JobRejected}. */
export interface JobRejectedEvent extends JobEventBase {
  /** Why it was refused: `QUEUE_FULL`, `DRAINING`, `SHUTDOWN`, `CANCELLED`, `COORDINATOR_NOT_READY`, … */
  code: WriteErrorCode;
  error: unknown;
}

/** Payload of {@link WriteCoordinatorEvents.QueueSaturated}. */
export interface QueueSaturatedEvent {
  coordinator: string;
  queueDepth: number;
}

/** Payload of {@link WriteCoordinatorEvents.QueueDrained}. */
export interface QueueDrainedEvent {
  coordinator: string;
}
