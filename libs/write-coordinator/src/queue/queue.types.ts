import type { WriteCoordinatorError } from '../errors';
import type { LatencySummary } from './latency-window';

/** What a submitter does when the queue is at capacity. */
export type WhenFull = 'wait' | 'reject';

/** Lifecycle state of a queue (and of the coordinator around it). */
export type WriteQueueState = 'running' | 'draining' | 'stopped';

/** @internal Settings of a {@link WriteQueue}, already validated. */
export interface WriteQueueSettings {
  /** Capacity of the queue of waiting jobs (> 0). */
  capacity: number;
  whenFull: WhenFull;
  /** Default deadline of a job in ms from submission; undefined = none. */
  timeoutMs: number | undefined;
}

/** Per-job options accepted by the queue. */
export interface EnqueueOptions {
  /** Aborting it cancels the job (see API.md, Deadlines and cancellation). */
  signal?: AbortSignal;
  /** Deadline in ms from submission; overrides the queue default. */
  timeoutMs?: number;
  /** Free-form label carried in events, errors and metrics. */
  label?: string;
  /** The running job may take this one into its batch ({@link WriteQueue.takeNext}). */
  batchable?: boolean;
}

/**
 * @internal A queued job taken by the running job into its batch: the taker runs it, then
 * settles it (after its batch committed, or at once when it failed).
 */
export interface TakenJob {
  /** Runs the job's function, in its submitter's async context. */
  run(): Promise<unknown>;
  /** Settles the job as committed with this value (or as cancelled/timed out if it ended early). */
  complete(value: unknown): void;
  /** Settles the job as failed with this error. */
  fail(error: unknown): void;
  /**
   * Ends the job's run with this `TIMEOUT` now, as if its deadline had passed: its caller is
   * rejected, its signal aborted, {@link onEndedEarly} called; it counts as timed out.
   */
  timeOut(error: WriteCoordinatorError): void;
  /** Id and label of the job. */
  readonly jobId: string;
  readonly label: string | undefined;
  /** When the job must be answered at the latest (`performance.now()` time), if it has a deadline. */
  readonly deadlineAt: number | undefined;
  /**
   * Called once if the job's caller is rejected while it runs (deadline, abort, shutdown): the
   * taker may then stop waiting for its work (see {@link TransactionScope}'s batches).
   */
  onEndedEarly(callback: (error: unknown) => void): void;
}

/** @internal What a job function receives from the queue. */
export interface JobContext {
  readonly jobId: string;
  readonly label: string | undefined;
  /** Aborted when the job is cancelled or passes its deadline while running. */
  readonly signal: AbortSignal;
  /** When the job must be answered at the latest (`performance.now()` time), if it has a deadline. */
  readonly deadlineAt: number | undefined;
  /**
   * Claims the right to commit. Returns false when the caller was already rejected (cancelled or
   * timed out): the job must then not commit. After `true` the job can no longer be cancelled or
   * time out, so a commit that has begun is always reported to its caller.
   */
  claimCommit(): boolean;
  /** True once the job's caller has been answered (its outcome is decided; its work may still run). */
  readonly ended: boolean;
}

/** @internal Identity of a job as seen by observers. */
export interface JobInfo {
  readonly jobId: string;
  readonly label: string | undefined;
}

/** Which counter of {@link QueueMetrics} an accepted job that ended without commit counts in. */
export type JobEnding = 'failed' | 'cancelled' | 'timedOut' | 'dropped';

/**
 * @internal Receives the queue's state changes, always after the state is updated. The queue
 * shields itself from observers that throw.
 */
export interface WriteQueueObserver {
  /** A submission not refused at once, in the submitter's own call (it is accepted or waits for room next). */
  jobSubmitted?(job: JobInfo): void;
  jobAccepted?(job: JobInfo, queueDepth: number): void;
  jobStarted?(job: JobInfo, waitMs: number): void;
  jobCompleted?(job: JobInfo, waitMs: number, runMs: number): void;
  jobFailed?(job: JobInfo, error: unknown, ending: JobEnding): void;
  jobRejected?(job: JobInfo, error: WriteCoordinatorError): void;
  queueSaturated?(queueDepth: number): void;
  queueDrained?(): void;
}

/** A consistent snapshot of a queue's counters and gauges. */
export interface QueueMetrics {
  /** Jobs that entered the queue. */
  accepted: number;
  /** Jobs whose work returned (and, for the coordinator, whose transaction committed). */
  completed: number;
  /** Jobs whose work threw (rolled back). */
  failed: number;
  /** Submissions refused before entering the queue, whatever their code. */
  rejected: number;
  /** Accepted jobs cancelled by their signal, while waiting or while running. */
  cancelled: number;
  /** Accepted jobs that passed their deadline, while waiting or while running. */
  timedOut: number;
  /** Queued jobs rejected by `shutdown()`; they never ran. */
  dropped: number;
  /** Jobs waiting in the queue now (never above `maxQueue`). */
  queueDepth: number;
  /** Capacity of the queue. */
  maxQueue: number;
  /** 1 while a job runs, else 0. */
  running: number;
  /** Highest `queueDepth` seen. */
  peakQueueDepth: number;
  /** Submitters blocked by a full queue under `whenFull: 'wait'` (not yet accepted). */
  waitingForRoom: number;
  /** Lifecycle state. */
  state: WriteQueueState;
  /** How long the running job has been running, in ms (0 when idle). */
  runningForMs: number;
  /** How long the oldest waiting job (or blocked submitter) has waited, in ms (0 when none). */
  oldestWaitMs: number;
  /** Time from submission to start, over recent jobs. */
  waitMs: LatencySummary;
  /** Time from start to settlement, over recent jobs. */
  runMs: LatencySummary;
}
