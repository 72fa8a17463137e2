import type { EntityManager } from 'typeorm';
import {
  BusyError,
  ConflictError,
  InternalError,
  InvalidOptionsError,
  MethodNotFoundError,
  WriteCoordinatorError,
} from '../errors';
import { isBusy, isConflict, sqliteCode } from '../sqlite/sqlite-error';
import { jsonSize } from './write-request.validation';
import type { WriteJob } from '../transaction/write-job';

/** A `@WriteHandler` method bound to its instance. */
export type WriteHandlerFn = (params: unknown, manager: EntityManager) => unknown;

/** @internal Maps `submit()` methods to handlers and turns every failure into a coded error. */
export class WriteHandlerRegistry {
  private readonly handlers = new Map<
    string,
    { fn: WriteHandlerFn; validate?: (params: unknown) => boolean; origin: string }
  >();

  /** Names of the registered methods. */
  names(): string[] {
    return [...this.handlers.keys()];
  }

  /** @throws {InvalidOptionsError} when the method already has a handler. */
  register(method: string, fn: WriteHandlerFn, origin: string, validate?: (params: unknown) => boolean): void {
    const existing = this.handlers.get(method);
    if (existing) {
      throw new InvalidOptionsError(
        `@WriteHandler('${method}')`,
        `registered once per coordinator (already on ${existing.origin})`,
        origin,
        'WriteHandler',
      );
    }
    this.handlers.set(method, { fn, validate, origin });
  }

  /**
   * Why the handler of `method` refuses `params` (its `validate` returned false or threw), or
   * undefined when it accepts them. Asked before the request is queued, so a refusal is counted
   * as rejected and never reaches the queue. A method with no handler is not refused here: it
   * fails in its job with `METHOD_NOT_FOUND` (accepted, then failed, as in the seed).
   */
  refusal(method: string, params: unknown): { detail: string; cause?: unknown } | undefined {
    const entry = this.handlers.get(method);
    if (!entry?.validate) return undefined;
    try {
      if (entry.validate(params) === true) return undefined;
      return { detail: `validate() of ${entry.origin} refused them` };
    } catch (error) {
      return { detail: `validate() of ${entry.origin} threw`, cause: error };
    }
  }

  /**
   * Runs the handler (its params already passed {@link refusal}) and hands a JSON copy of its
   * result to `onResult`. Runs inside the job's transaction, so a failure here (including an
   * unserialisable result or an `InvalidParamsError` thrown by the handler) writes nothing.
   */
  async invoke(
    method: string,
    params: unknown,
    manager: EntityManager,
    job: WriteJob,
    maxResultBytes: number,
    onResult: (copy: unknown) => void,
  ): Promise<unknown> {
    const ctx = { jobId: job.jobId, label: method };
    const entry = this.handlers.get(method);
    if (!entry) {
      const known = [...this.handlers.keys()].join(', ') || 'none';
      throw new MethodNotFoundError(`no @WriteHandler('${method}') is registered (known: ${known})`, ctx);
    }
    try {
      const copy = jsonCopy(await entry.fn(params, manager), maxResultBytes, ctx);
      onResult(copy);
      return copy;
    } catch (error) {
      throw toCodedError(error, ctx);
    }
  }
}

/** @internal A JSON copy of a result, refused when it is not JSON or larger than `maxBytes`. */
export function jsonCopy(value: unknown, maxBytes: number, ctx: { jobId: string; label: string }): unknown {
  if (value === undefined) return undefined;
  const size = jsonSize(value);
  if (typeof size === 'string') {
    throw new InternalError(`the handler result is not JSON-serialisable (${size}); nothing was written`, ctx);
  }
  if (size > maxBytes) {
    throw new InternalError(
      `the handler result is ${size} bytes as JSON, more than maxPayloadBytes (${maxBytes}); nothing was written`,
      ctx,
    );
  }
  return JSON.parse(JSON.stringify(value)) as unknown;
}

/** @internal A coded error for what a handler threw (SQLite constraint → `CONFLICT`, busy → `BUSY`). */
export function toCodedError(error: unknown, ctx: { jobId: string; label: string }): WriteCoordinatorError {
  if (error instanceof WriteCoordinatorError) return error;
  const code = sqliteCode(error);
  const message = error instanceof Error ? error.message : String(error);
  const options = { ...ctx, cause: error };
  if (isConflict(code)) return new ConflictError(message, options);
  if (isBusy(code)) return new BusyError(message, options);
  return new InternalError(message, options);
}
