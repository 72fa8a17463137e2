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
  /** This process became the primary or a secondary of its cluster. Payload {@link RoleChangedEvent}. */
  RoleChanged: 'write-coordinator.cluster.role-changed',
  /** A secondary lost its primary (connection closed) or the primary stopped answering. Payload {@link PrimaryLostEvent}. */
  PrimaryLost: 'write-coordinator.cluster.primary-lost',
  /** A secondary will never receive some changes of the primary (it was disconnected). Payload {@link ChangesMissedEvent}. */
  ChangesMissed: 'write-coordinator.cluster.changes-missed',
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

/** Payload of {@link WriteCoordinatorEvents.RoleChanged}. */
export interface RoleChangedEvent {
  coordinator: string;
  role: 'primary' | 'secondary';
  /** The role before (undefined at the first decision). */
  previous?: 'primary' | 'secondary';
  /** This process. */
  pid: number;
  /** The primary's pid when known. */
  primaryPid?: number;
}

/** Payload of {@link WriteCoordinatorEvents.PrimaryLost}. */
export interface PrimaryLostEvent {
  coordinator: string;
  /** The primary that was lost, when known. */
  primaryPid?: number;
  /** `the connection closed`, `unresponsive: …`, or the transport's error. */
  reason: string;
}

/** Payload of {@link WriteCoordinatorEvents.ChangesMissed}. */
export interface ChangesMissedEvent {
  coordinator: string;
  /** How many changes this process will never receive (at least this many when `exact` is false). */
  missed: number;
  /**
   * False after a failover without a goodbye: the old primary may have committed changes after
   * the last one that reached this process, and nobody can count them.
   */
  exact: boolean;
}
