import {
  CancelledError,
  DrainingError,
  QueueFullError,
  ShutdownError,
  TimeoutError,
  WriteCoordinatorError,
} from '../errors';
import { EndReason, Job, Phase } from './job';
import { JobList } from './job-list';
import { LatencyWindow } from './latency-window';
import type {
  EnqueueOptions,
  JobContext,
  JobInfo,
  QueueMetrics,
  TakenJob,
  WriteQueueObserver,
  WriteQueueSettings,
  WriteQueueState,
} from './queue.types';

let nextQueueId = 0;

/**
 * Bounded FIFO with exactly one drain: jobs run one at a time, in the order they were accepted.
 * It knows nothing about databases or Nest; the coordinator gives each job a transaction.
 *
 * Deadlines and aborts follow API.md: a job cancelled or expired while waiting is removed at once
 * and never runs; one cancelled or expired while running has its caller rejected at once, its
 * signal aborted, and holds the drain until its function settles (its result is discarded and it
 * may not commit, see {@link JobContext.claimCommit}).
 */
export class WriteQueue {
  private readonly queue = new JobList<Job>();
  private readonly roomWaiters = new JobList<Job>();
  /** The one running job. Invariant: never more than one; only `pump()` sets it. */
  private active: Job | null = null;
  /** True while `pump()` expires the queue head (a nested pump must not start a job meanwhile). */
  private pumping = false;
  /** Jobs the running job took into its batch and has not settled yet. */
  private readonly taken = new Set<Job>();
  /** Completions of taken jobs, reported right after the running job's (batch order). */
  private completions: Array<() => void> = [];
  /** Callers of {@link whenArrival} waiting for the next job to enter the queue. */
  private arrivalWaiters: Array<() => void> = [];
  private stateValue: WriteQueueState = 'running';
  private stopped: { promise: Promise<void>; resolve: () => void } | undefined;
  private idleWaiters: Array<() => void> = [];
  private readonly idPrefix = `${(nextQueueId++).toString(36)}-`;
  private jobSeq = 0;

  private accepted = 0;
  private completed = 0;
  private failed = 0;
  private rejected = 0;
  private cancelled = 0;
  private timedOut = 0;
  private dropped = 0;
  private peakQueueDepth = 0;
  private readonly waitLatency = new LatencyWindow();
  private readonly runLatency = new LatencyWindow();

  constructor(
    private readonly settings: WriteQueueSettings,
    private readonly observer: WriteQueueObserver = {},
  ) {}

  /** Lifecycle state: `running`, then `draining` after {@link drain}, `stopped` when done. */
  get state(): WriteQueueState {
    return this.stateValue;
  }

  /**
   * Submits a job. Resolves with its value or rejects with its error (the same object), or with
   * a {@link WriteCoordinatorError} when it was refused, cancelled, timed out or dropped.
   */
  enqueue<T>(fn: (ctx: JobContext) => T | Promise<T>, options: EnqueueOptions = {}): Promise<T> {
    const jobId = this.nextJobId();
    const { signal, label } = options;
    const refusal = this.refusalFor(jobId, label, signal);
    if (refusal) return this.rejectRefused({ jobId, label }, refusal);

    const timeoutMs = options.timeoutMs ?? this.settings.timeoutMs;
    const now = performance.now();
    let job!: Job<T>;
    const promise = new Promise<T>((resolve, reject) => {
      job = new Job<T>(jobId, label, fn, now, signal, resolve, reject, options.batchable === true);
    });
    if (timeoutMs !== undefined) {
      job.deadlineAt = now + timeoutMs;
      job.timer = setTimeout(() => this.expire(job as Job), timeoutMs);
      job.expireLate = this.expireLate;
    }
    if (signal) {
      job.onAbort = () => this.cancel(job as Job);
      signal.addEventListener('abort', job.onAbort, { once: true });
    }
    this.notify('jobSubmitted', job as Job);

    if (this.queue.size < this.settings.capacity && this.roomWaiters.size === 0) {
      this.accept(job as Job);
    } else {
      job.phase = Phase.WaitingForRoom;
      this.roomWaiters.push(job as Job);
    }
    // A job started by accept() above already runs in this (the submitter's) context.
    if (job.phase === Phase.Queued || job.phase === Phase.WaitingForRoom) job.bindToSubmitter();
    return promise;
  }

  /**
   * Counts and reports a submission refused before it reached the queue (used by the
   * coordinator for refusals it decides itself, such as "not ready").
   */
  refuse<T = never>(label: string | undefined, makeError: (job: JobInfo) => WriteCoordinatorError): Promise<T> {
    const job = { jobId: this.nextJobId(), label };
    return this.rejectRefused(job, makeError(job));
  }

  /**
   * Refuses a submission because the queue no longer accepts work (`DRAINING` while draining,
   * `SHUTDOWN` once stopped), counted and reported like any refusal; undefined while it accepts.
   * For work the coordinator sends elsewhere (a cluster secondary's forwarded writes).
   */
  refuseIfClosed<T = never>(label: string | undefined): Promise<T> | undefined {
    if (this.stateValue === 'running') return undefined;
    return this.refuse(label, (job) => this.closedRefusal(job)!);
  }

  /** Resolves the next time the queue is empty and no job runs (at once if so already). */
  onIdle(): Promise<void> {
    if (this.isIdle) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Graceful stop: refuses new work with `DRAINING`, runs every job already queued (and every
   * submitter already waiting for room), then stops. Resolves once stopped.
   */
  drain(): Promise<void> {
    if (this.stateValue === 'running') this.stateValue = 'draining';
    const stopped = this.whenStopped();
    this.settleIfIdle();
    return stopped;
  }

  /**
   * Hard stop: refuses new work with `SHUTDOWN`, rejects every queued job and every submitter
   * waiting for room with `SHUTDOWN` (they never run), lets the running job finish. Resolves when
   * the running job has settled.
   */
  shutdown(): Promise<void> {
    const stopped = this.whenStopped();
    this.stateValue = 'stopped';
    for (let job = this.roomWaiters.shift(); job; job = this.roomWaiters.shift()) {
      this.settleRefused(job, new ShutdownError('shutdown() was called while it waited for room', job));
    }
    for (let job = this.queue.shift(); job; job = this.queue.shift()) {
      job.phase = Phase.Done;
      job.disarm();
      this.dropped++;
      const error = new ShutdownError('shutdown() was called while it was queued; it never ran', job);
      job.reject(error);
      this.notify('jobFailed', job, error, 'dropped');
    }
    this.settleIfIdle();
    return stopped;
  }

  /**
   * Lets the running job take the next queued job into its batch (group commit): only when the
   * head of the queue is batchable. The taken job counts as running until settled; it keeps its
   * deadline and signal (ending early while it runs rejects its caller at once, as for any
   * running job). Aborted or expired jobs are no longer in the queue, so they are never taken.
   */
  takeNext(): TakenJob | undefined {
    this.dropExpiredHead();
    const job = this.queue.peek();
    if (this.active === null || job === null || !job.batchable) return undefined;
    this.queue.shift();
    this.taken.add(job);
    this.admitFromRoom();
    const waitMs = this.begin(job);
    let settled = false;
    const settle = (ok: boolean, outcome: unknown) => {
      if (settled) return;
      settled = true;
      this.taken.delete(job);
      this.finish(job, ok, outcome, waitMs);
      this.settleIfIdle();
    };
    return {
      run: async () => job.run(),
      complete: (value) => this.completions.push(() => settle(true, value)),
      fail: (error) => settle(false, error),
      timeOut: (error) => this.endEarly(job, EndReason.TimedOut, () => error),
      jobId: job.jobId,
      label: job.label,
      deadlineAt: job.deadlineAt,
      onEndedEarly: (callback) => (job.endedEarly = callback),
    };
  }

  /** Resolves when a job enters the queue, or after `ms` (group commit waiting for more). */
  whenArrival(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.arrivalWaiters = this.arrivalWaiters.filter((waiter) => waiter !== done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.arrivalWaiters.push(done);
    });
  }

  /**
   * Last resort of a shutdown whose running job does not settle: rejects its caller with
   * `SHUTDOWN` and aborts its signal, so that no caller is left pending. The job can then never
   * commit; it counts as running until its work settles (then as cancelled). In a batch, this is
   * the member whose work is still running; the members waiting for the batch's COMMIT are then
   * answered by that COMMIT (the batch stops waiting for the abandoned member).
   * @returns false when no job is running, or when every running one already claimed its commit.
   */
  abandonRunning(): boolean {
    let abandoned = false;
    for (const job of this.active ? [this.active, ...this.taken] : []) {
      if (job.phase !== Phase.Running || job.endReason !== EndReason.None) continue;
      this.endEarly(
        job,
        EndReason.Cancelled,
        (ctx) => new ShutdownError('the application shut down while it ran, before it could commit', ctx),
      );
      abandoned = true;
    }
    return abandoned;
  }

  /** A consistent snapshot of counters, gauges and recent latencies. */
  metrics(): QueueMetrics {
    const now = performance.now();
    // The queue head was submitted before anyone still waiting for room.
    const oldest = this.queue.peek() ?? this.roomWaiters.peek();
    return {
      accepted: this.accepted,
      completed: this.completed,
      failed: this.failed,
      rejected: this.rejected,
      cancelled: this.cancelled,
      timedOut: this.timedOut,
      dropped: this.dropped,
      queueDepth: this.queue.size,
      maxQueue: this.settings.capacity,
      running: (this.active ? 1 : 0) + this.taken.size,
      peakQueueDepth: this.peakQueueDepth,
      waitingForRoom: this.roomWaiters.size,
      state: this.stateValue,
      runningForMs: this.active ? now - this.active.startedAt : 0,
      oldestWaitMs: oldest ? now - oldest.submittedAt : 0,
      waitMs: this.waitLatency.summary(),
      runMs: this.runLatency.summary(),
    };
  }

  private nextJobId(): string {
    return this.idPrefix + (++this.jobSeq).toString(36);
  }

  private rejectRefused<T>(job: JobInfo, error: WriteCoordinatorError): Promise<T> {
    this.rejected++;
    this.notify('jobRejected', job, error);
    return Promise.reject(error);
  }

  private refusalFor(
    jobId: string,
    label: string | undefined,
    signal: AbortSignal | undefined,
  ): WriteCoordinatorError | undefined {
    const ctx = { jobId, label };
    const closed = this.closedRefusal(ctx);
    if (closed) return closed;
    if (signal?.aborted) {
      return new CancelledError('its signal was already aborted', { ...ctx, cause: signal.reason });
    }
    if (this.settings.whenFull === 'reject' && this.queue.size >= this.settings.capacity) {
      return new QueueFullError(`${this.queue.size} of ${this.settings.capacity} slots are taken`, ctx);
    }
    return undefined;
  }

  /** `DRAINING` or `SHUTDOWN` for a submission the queue's state refuses; undefined while running. */
  private closedRefusal(ctx: JobInfo): WriteCoordinatorError | undefined {
    if (this.stateValue === 'draining') return new DrainingError('submit after drain() began', ctx);
    if (this.stateValue === 'stopped') return new ShutdownError('submit after the coordinator stopped', ctx);
    return undefined;
  }

  private accept(job: Job): void {
    job.phase = Phase.Queued;
    this.queue.push(job);
    this.accepted++;
    const depth = this.queue.size;
    if (depth > this.peakQueueDepth) this.peakQueueDepth = depth;
    this.notify('jobAccepted', job, depth);
    if (depth === this.settings.capacity) this.notify('queueSaturated', depth);
    if (this.arrivalWaiters.length > 0) for (const arrived of [...this.arrivalWaiters]) arrived();
    this.pump();
  }

  /** Starts the next job unless one is running. The only place that sets `active`. */
  private pump(): void {
    if (this.active !== null || this.pumping) return;
    // Expiring the head refills the queue from the room waiters, which pumps again: not from here.
    this.pumping = true;
    try {
      this.dropExpiredHead();
    } finally {
      this.pumping = false;
    }
    const job = this.queue.shift();
    if (job === null) return;
    this.active = job;
    this.admitFromRoom();
    void this.execute(job);
  }

  private admitFromRoom(): void {
    while (this.queue.size < this.settings.capacity) {
      const waiter = this.roomWaiters.shift();
      if (!waiter) return;
      this.accept(waiter);
    }
  }

  private async execute(job: Job): Promise<void> {
    const waitMs = this.begin(job);
    let ok = true;
    let outcome: unknown;
    try {
      outcome = await job.run();
    } catch (error) {
      ok = false;
      outcome = error;
    }
    this.active = null;
    this.finish(job, ok, outcome, waitMs);
    const completions = this.completions;
    this.completions = [];
    for (const complete of completions) complete();
    this.afterJob();
  }

  /** Marks a job as running and reports it; returns its queue wait. */
  private begin(job: Job): number {
    job.phase = Phase.Running;
    job.startedAt = performance.now();
    const waitMs = job.startedAt - job.submittedAt;
    this.waitLatency.record(waitMs);
    this.notify('jobStarted', job, waitMs);
    return waitMs;
  }

  /** Settles a job whose function ended, honouring an early end (deadline, abort) while it ran. */
  private finish(job: Job, ok: boolean, outcome: unknown, waitMs: number): void {
    job.phase = Phase.Done;
    job.disarm();
    const runMs = performance.now() - job.startedAt;
    this.runLatency.record(runMs);
    if (job.endReason === EndReason.TimedOut) {
      this.timedOut++;
      this.notify('jobFailed', job, ok ? new TimeoutError('deadline passed while running', job) : outcome, 'timedOut');
    } else if (job.endReason === EndReason.Cancelled) {
      this.cancelled++;
      this.notify('jobFailed', job, ok ? new CancelledError('aborted while running', job) : outcome, 'cancelled');
    } else if (ok) {
      this.completed++;
      job.resolve(outcome);
      this.notify('jobCompleted', job, waitMs, runMs);
    } else {
      this.failed++;
      job.reject(outcome);
      this.notify('jobFailed', job, outcome, 'failed');
    }
  }

  private afterJob(): void {
    this.pump();
    if (this.active !== null) return;
    this.notify('queueDrained');
    this.settleIfIdle();
  }

  /** {@link Job.expireLate}, shared by every job of this queue. */
  private readonly expireLate = (job: Job): void => {
    if (job.timer !== undefined) clearTimeout(job.timer);
    this.expire(job);
  };

  /**
   * Expires the jobs at the head of the queue whose deadline passed although their timer has not
   * fired yet (the event loop was busy): they must never start.
   */
  private dropExpiredHead(): void {
    for (let job = this.queue.peek(); job !== null; job = this.queue.peek()) {
      if (job.timer === undefined || performance.now() < job.deadlineAt!) return;
      this.expireLate(job);
    }
  }

  private expire(job: Job): void {
    job.timer = undefined;
    this.endEarly(job, EndReason.TimedOut, (ctx) => new TimeoutError(`its deadline passed while ${where(job)}`, ctx));
  }

  private cancel(job: Job): void {
    job.onAbort = undefined;
    this.endEarly(
      job,
      EndReason.Cancelled,
      (ctx) =>
        new CancelledError(`its signal aborted while ${where(job)}`, { ...ctx, cause: job.callerSignal?.reason }),
    );
  }

  /** Rejects the caller of a job that is cancelled or expired before it could commit. */
  private endEarly(job: Job, reason: EndReason, makeError: (ctx: JobInfo) => WriteCoordinatorError): void {
    switch (job.phase) {
      case Phase.WaitingForRoom:
        this.roomWaiters.remove(job);
        this.settleRefused(job, makeError(job));
        return;
      case Phase.Queued: {
        const error = makeError(job); // while the phase still says where it was
        this.queue.remove(job);
        job.phase = Phase.Done;
        job.disarm();
        if (reason === EndReason.TimedOut) this.timedOut++;
        else this.cancelled++;
        job.reject(error);
        this.notify('jobFailed', job, error, reason === EndReason.TimedOut ? 'timedOut' : 'cancelled');
        this.admitFromRoom();
        this.settleIfIdle();
        return;
      }
      case Phase.Running: {
        job.endReason = reason;
        job.disarm();
        const error = makeError(job);
        job.reject(error);
        job.abortRun(error);
        job.endedEarly?.(error);
        return;
      }
      default:
        // Committing or done: the outcome is already decided, the caller will get it.
        return;
    }
  }

  /** Rejects a submitter that never entered the queue (it counts only as rejected). */
  private settleRefused(job: Job, error: WriteCoordinatorError): void {
    job.phase = Phase.Done;
    job.disarm();
    this.rejected++;
    job.reject(error);
    this.notify('jobRejected', job, error);
  }

  private whenStopped(): Promise<void> {
    if (!this.stopped) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.stopped = { promise, resolve };
    }
    return this.stopped.promise;
  }

  /** Nothing runs (alone or in a batch) and nothing waits, in the queue or for room. */
  private get isIdle(): boolean {
    return this.active === null && this.taken.size === 0 && this.queue.size === 0 && this.roomWaiters.size === 0;
  }

  /** When nothing runs or waits: releases `onIdle()` callers and completes a drain or shutdown. */
  private settleIfIdle(): void {
    if (!this.isIdle) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
    if (this.stateValue === 'running') return;
    this.stateValue = 'stopped';
    this.stopped?.resolve();
  }

  /** Observers run after the state change; one that throws must never stall the drain. */
  private notify<K extends keyof WriteQueueObserver>(
    event: K,
    ...args: Parameters<NonNullable<WriteQueueObserver[K]>>
  ): void {
    const handler = this.observer[event] as ((...a: unknown[]) => void) | undefined;
    if (handler === undefined) return;
    try {
      handler.apply(this.observer, args);
    } catch {
      // Observers are reporting hooks; their failure must not change the outcome of any job.
    }
  }
}

function where(job: Job): string {
  switch (job.phase) {
    case Phase.WaitingForRoom:
      return 'it waited for room in a full queue; it never ran';
    case Phase.Queued:
      return 'it was queued; it never ran';
    default:
      return 'it was running; its work is aborted and will not be committed';
  }
}
