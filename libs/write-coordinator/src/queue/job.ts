import type { ListNode } from './job-list';
import type { JobContext, JobInfo } from './queue.types';

/** @internal Where a job is in its life. */
export enum Phase {
  WaitingForRoom,
  Queued,
  Running,
  Committing,
  Done,
}

/** @internal Why a job's caller was answered before its work ended. */
export enum EndReason {
  None,
  Cancelled,
  TimedOut,
}

/** @internal One submission: its settlement, deadline, signal and place in the lists. */
export class Job<T = unknown> implements ListNode<Job>, JobContext, JobInfo {
  prev: Job | null = null;
  next: Job | null = null;
  phase = Phase.Queued;
  /** Set when the caller was rejected while the job was running; the result is then discarded. */
  endReason = EndReason.None;
  startedAt = 0;
  deadlineAt: number | undefined = undefined;
  timer: ReturnType<typeof setTimeout> | undefined = undefined;
  /** Expires the job at once (its deadline passed before its timer could fire). */
  expireLate: ((job: Job) => void) | undefined = undefined;
  /** Told when the caller is rejected while the job runs (see {@link TakenJob.onEndedEarly}). */
  endedEarly: ((error: unknown) => void) | undefined = undefined;
  onAbort: (() => void) | undefined = undefined;
  private controller: AbortController | undefined = undefined;
  /** Set by {@link bindToSubmitter}: calling it runs the job's function. */
  start: (() => void) | undefined = undefined;
  /** Set by {@link bindToSubmitter}: the function's result once {@link start} is called. */
  outcome: Promise<T> | undefined = undefined;

  constructor(
    readonly jobId: string,
    readonly label: string | undefined,
    readonly fn: (ctx: JobContext) => T | Promise<T>,
    readonly submittedAt: number,
    readonly callerSignal: AbortSignal | undefined,
    readonly resolve: (value: T) => void,
    readonly reject: (error: unknown) => void,
    readonly batchable: boolean,
  ) {}

  /**
   * Called in the submitter's async context for a job that cannot start at once. The continuation
   * is attached here, so the function later runs in that context rather than in whichever context
   * drives the drain (request-scoped CLS and trace context stay the caller's).
   */
  bindToSubmitter(): void {
    this.outcome = new Promise<void>((start) => (this.start = start)).then(() => this.fn(this));
  }

  /** Runs the function: directly when it starts in the submitter's own call, else through the binding. */
  run(): T | Promise<T> {
    if (this.start === undefined) return this.fn(this);
    this.start();
    return this.outcome!;
  }

  /** Created lazily: most jobs never look at their signal. */
  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    return this.controller.signal;
  }

  abortRun(reason: unknown): void {
    this.controller ??= new AbortController();
    this.controller.abort(reason);
  }

  claimCommit(): boolean {
    // A deadline whose timer could not fire yet (the event loop was busy, e.g. synchronous work)
    // is still a deadline: the job is expired now rather than committed late.
    if (this.timer !== undefined && performance.now() >= this.deadlineAt!) this.expireLate?.(this as Job);
    if (this.endReason !== EndReason.None || this.phase === Phase.Done) return false;
    this.phase = Phase.Committing;
    this.disarm();
    return true;
  }

  get ended(): boolean {
    return this.phase === Phase.Done || this.endReason !== EndReason.None;
  }

  disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.onAbort) this.callerSignal?.removeEventListener('abort', this.onAbort);
    this.timer = undefined;
    this.onAbort = undefined;
  }
}
