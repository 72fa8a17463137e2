import type { EntityManager } from 'typeorm';
import type { WriteChange, WriteRequestMeta } from '../changes/write-change';
import type { ClusterLog } from './cluster-log';
import { InvalidOptionsError, InvalidParamsError, MethodNotFoundError, WriteCoordinatorError } from '../errors';
import type { JobInfo } from '../queue/queue.types';
import { jsonCopy, toCodedError, WriteHandlerRegistry } from '../submit/write-handler.registry';
import { requestProblem } from '../submit/write-request.validation';
import type { WriteJob, WriteWork } from '../transaction/write-job';
import type { ClusterHost } from './cluster-node';
import type { ForwardedCall } from './protocol';
import { fingerprintOf, RequestLog } from './request-log';

/** A `@SerializedWrite({ forward: true })` method bound to its instance, called with JSON arguments. */
export type ForwardableFn = (args: unknown[]) => unknown;

/** What {@link ForwardedWrites} needs from its coordinator. */
export interface ForwardedWritesDeps {
  readonly log: ClusterLog;
  readonly maxPayloadBytes: number;
  readonly requestsTable: string;
  readonly handlers: WriteHandlerRegistry;
  run<T>(work: WriteWork<T>, options: { timeoutMs?: number; signal?: AbortSignal; label?: string }): Promise<T>;
  refuse(label: string | undefined, makeError: (job: JobInfo) => WriteCoordinatorError): Promise<never>;
  /** Runs a `submit()` handler inside a job and publishes its request change after commit. */
  invokeHandler(
    method: string,
    params: unknown,
    meta: WriteRequestMeta | undefined,
    manager: EntityManager,
    job: WriteJob,
  ): Promise<unknown>;
  /** Re-emits a change of the primary on this process's publisher. */
  publish(change: WriteChange): void;
  /** Whether this process has a publisher at all. */
  hasPublisher(): boolean;
}

/**
 * @internal The coordinator's side of forwarding, as the primary sees it: runs a forwarded call
 * (a `submit()` request or a forwardable method) exactly once per request id — the id's outcome is
 * looked up, and recorded, inside the write's own transaction, and a copy arriving while the first
 * still runs joins it — and keeps the registry of forwardable methods.
 */
export class ForwardedWrites implements ClusterHost {
  private readonly forwardables = new Map<string, { fn: ForwardableFn; origin: string }>();
  private readonly running = new Map<
    string,
    { fingerprint: string; outcome: Promise<unknown>; join(signal: AbortSignal): Promise<unknown> }
  >();
  private readonly requests: RequestLog;

  constructor(private readonly deps: ForwardedWritesDeps) {
    this.requests = new RequestLog(deps.requestsTable);
  }

  get log(): ClusterLog {
    return this.deps.log;
  }

  /**
   * Registers a forwardable method under its stable name.
   * @throws {InvalidOptionsError} when the name is taken.
   */
  register(name: string, fn: ForwardableFn, origin: string): void {
    const existing = this.forwardables.get(name);
    if (existing) {
      throw new InvalidOptionsError(
        `@SerializedWrite({ forward: true, name: '${name}' })`,
        `a name used once per coordinator (already on ${existing.origin})`,
        origin,
        'SerializedWrite',
      );
    }
    this.forwardables.set(name, { fn, origin });
  }

  /** Whether a forwardable method is registered under `name`. */
  has(name: string): boolean {
    return this.forwardables.has(name);
  }

  handlerNames(): string[] {
    return [
      ...this.deps.handlers.names().map((method) => `submit:${method}`),
      ...[...this.forwardables.keys()].map((name) => `call:${name}`),
    ].sort();
  }

  /**
   * Runs `call` once per `requestId`: a request id already recorded answers with its recorded
   * result (without running); one still running is joined; a reused id with another request is
   * refused with `INVALID_PARAMS`. Malformed or refused params are refused before queueing.
   */
  execute(
    call: ForwardedCall,
    requestId: string,
    options: { timeoutMs: number; signal: AbortSignal; label?: string; meta?: Omit<WriteRequestMeta, 'requestId'> },
  ): Promise<unknown> {
    const label = options.label ?? (call.op === 'submit' ? call.method : call.name);
    const fingerprint = fingerprintOf(call);
    // A copy of a request still running joins it. Another request reusing the id is queued all the
    // same: its job finds the id recorded (refused) or not (the first failed: it may run).
    const joined = this.running.get(requestId);
    if (joined?.fingerprint === fingerprint) return joined.join(options.signal);
    let work: (manager: EntityManager, job: WriteJob) => Promise<unknown>;
    if (call.op === 'submit') {
      const problem = requestProblem({ method: call.method, params: call.params }, this.deps.maxPayloadBytes);
      const refused = problem === undefined ? this.deps.handlers.refusal(call.method, call.params) : undefined;
      if (problem !== undefined || refused !== undefined) {
        return this.deps.refuse(
          label,
          (job) => new InvalidParamsError(problem ?? refused!.detail, { ...job, cause: refused?.cause }),
        );
      }
      const meta = { ...options.meta, requestId };
      work = (manager, job) => this.deps.invokeHandler(call.method, call.params, meta, manager, job);
    } else {
      work = (_manager, job) => this.invokeForwardable(call.name, call.args, job, label);
    }
    // One job for every copy: it is cancelled only once every caller waiting on it has aborted.
    const waiters = new Waiters();
    const outcome = this.deps.run(
      async (manager, job) => {
        const seen = this.requests.lookup(job, requestId);
        if (seen) {
          if (seen.fingerprint !== fingerprint) throw reused(requestId, { jobId: job.jobId, label });
          return seen.result;
        }
        const result = await work(manager, job);
        this.requests.record(job, requestId, fingerprint, result);
        return result;
      },
      { timeoutMs: options.timeoutMs, signal: waiters.signal, label },
    );
    waiters.add(options.signal);
    const entry = { fingerprint, outcome, join: (signal: AbortSignal) => (waiters.add(signal), outcome) };
    const forget = () => {
      waiters.clear();
      if (this.running.get(requestId) === entry) this.running.delete(requestId);
    };
    outcome.then(forget, forget);
    if (!joined) this.running.set(requestId, entry);
    return outcome;
  }

  prepare(): Promise<void> {
    return this.deps.run((_manager, job) => this.requests.ensure(job), { label: 'cluster: requests table' });
  }

  async prune(before: number): Promise<void> {
    await this.deps.run((_manager, job) => this.requests.pruneBefore(job, before), {
      label: 'cluster: prune request ids',
    });
  }

  publishRemote(change: WriteChange): void {
    this.deps.publish(change);
  }

  wantsRemoteChanges(): boolean {
    return this.deps.hasPublisher();
  }

  private async invokeForwardable(name: string, args: unknown[], job: WriteJob, label: string): Promise<unknown> {
    const ctx = { jobId: job.jobId, label };
    const entry = this.forwardables.get(name);
    if (!entry) {
      const known = [...this.forwardables.keys()].join(', ') || 'none';
      throw new MethodNotFoundError(
        `no @SerializedWrite({ forward: true }) method is named '${name}' (known: ${known})`,
        ctx,
      );
    }
    try {
      return jsonCopy(await entry.fn(args), this.deps.maxPayloadBytes, ctx);
    } catch (error) {
      throw toCodedError(error, ctx);
    }
  }
}

function reused(requestId: string, job: { jobId?: string; label?: string }): InvalidParamsError {
  return new InvalidParamsError(
    `request id '${requestId}' was already used for a different request; nothing was written`,
    job,
  );
}

/**
 * The callers waiting on one running request (copies sent on several channels, by several
 * secondaries): its job's signal aborts once every one of them has aborted, never on one alone.
 */
class Waiters {
  private readonly controller = new AbortController();
  private readonly listening = new Map<AbortSignal, () => void>();
  private waiting = 0;

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  add(signal: AbortSignal): void {
    if (signal.aborted || this.listening.has(signal)) return this.settle();
    this.waiting++;
    const onAbort = () => {
      this.listening.delete(signal);
      this.waiting--;
      this.settle();
    };
    this.listening.set(signal, onAbort);
    signal.addEventListener('abort', onAbort, { once: true });
  }

  clear(): void {
    for (const [signal, onAbort] of this.listening) signal.removeEventListener('abort', onAbort);
    this.listening.clear();
  }

  private settle(): void {
    if (this.waiting === 0) this.controller.abort();
  }
}
