import { createHash, timingSafeEqual } from 'node:crypto';
import type { WriteChange } from '../changes/write-change';
import * as errors from '../errors';
import type { WriteCoordinatorError, WriteErrorCode } from '../errors';
import type { Frame } from './transport';

/**
 * @internal The cluster protocol between a secondary and the primary, carried as JSON frames by a
 * {@link ClusterTransport}. A secondary opens with `hello`; the primary answers `welcome` or an
 * `error` frame and closes. Then the secondary sends `request`, `cancel` and `ping` frames; the
 * primary sends `response`, `pong`, `change` and, when it steps down gracefully, `goodbye`.
 * Anything else (or anything malformed) is answered with an `error` frame and a closed channel.
 */
export const PROTOCOL_VERSION = 1;

/** A secondary's first frame. */
export interface HelloFrame extends Frame {
  type: 'hello';
  protocol: number;
  pid: number;
  /** Handler names and forwardable method names this secondary may forward, sorted. */
  handlers: string[];
  secret?: string;
  /** Whether this secondary re-emits the primary's changes (it has a publisher); absent: true. */
  changes?: boolean;
}

/** The primary's answer to an accepted `hello`. */
export interface WelcomeFrame extends Frame {
  type: 'welcome';
  protocol: number;
  pid: number;
  /** Identifies this primary's lifetime: change sequence numbers restart with it. */
  epoch: string;
  /** Sequence number of the last change this primary published (0: none yet). */
  seq: number;
  /** LiteFS: the primary's replication position (TXID) now. Also on `pong` frames. */
  txid?: number;
}

/** What a forwarded request asks the primary to run. */
export type ForwardedCall =
  { op: 'submit'; method: string; params?: unknown } | { op: 'call'; name: string; args: unknown[] };

/** A forwarded write. `id` correlates the response on this channel; `requestId` is the idempotency key. */
export interface RequestFrame extends Frame {
  type: 'request';
  id: number;
  requestId: string;
  call: ForwardedCall;
  /** Remaining deadline in ms when sent. */
  timeoutMs: number;
  label?: string;
  meta?: { source?: string; timestamp?: string };
}

/** The outcome of a request: `result` (a JSON value, absent for undefined) or a coded error. */
export interface ResponseFrame extends Frame {
  type: 'response';
  id: number;
  ok: boolean;
  result?: unknown;
  error?: WireError;
  /** LiteFS: the primary's replication position (TXID) after the write committed (read your writes). */
  txid?: number;
}

/** A committed change, in commit order. */
export interface ChangeFrame extends Frame {
  type: 'change';
  seq: number;
  change: WriteChange;
}

/** A coordinator error as it crosses a process. */
export interface WireError {
  code: WriteErrorCode;
  message: string;
  retryable: boolean;
  name: string;
}

/** Codes of `error` frames (protocol failures; the channel closes after one). */
export type ProtocolErrorCode =
  'PROTOCOL' | 'PROTOCOL_VERSION' | 'UNAUTHORIZED' | 'HANDLERS_MISMATCH' | 'HANDSHAKE_TIMEOUT' | 'SLOW_CONSUMER';

/** An `error` frame: why the channel is being closed. */
export interface ErrorFrame extends Frame {
  type: 'error';
  code: ProtocolErrorCode;
  message: string;
}

/** Builds an `error` frame. */
export function errorFrame(code: ProtocolErrorCode, message: string): ErrorFrame {
  return { type: 'error', code, message };
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
/** A channel-local request id: a non-negative safe integer. */
export const isId = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isName = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 256;

/** Why `frame` is not a valid `hello`, or undefined when it is one. */
export function helloProblem(frame: Frame): string | undefined {
  if (frame.type !== 'hello') return `expected a hello frame first, got '${frame.type.slice(0, 64)}'`;
  if (!Number.isInteger(frame.protocol)) return 'hello.protocol must be an integer';
  if (!isId(frame.pid)) return 'hello.pid must be a non-negative integer';
  if (!Array.isArray(frame.handlers) || !frame.handlers.every(isName))
    return 'hello.handlers must be an array of names';
  if (frame.secret !== undefined && typeof frame.secret !== 'string') return 'hello.secret must be a string';
  if (frame.changes !== undefined && typeof frame.changes !== 'boolean') return 'hello.changes must be a boolean';
  return undefined;
}

/**
 * Why `frame` is not a valid `request`, or undefined. `id` is reported apart: a request with a
 * usable id gets an error response; one without is a protocol error.
 */
export function requestProblem(frame: Frame): string | undefined {
  if (!isId(frame.id)) return 'request.id must be a non-negative integer';
  if (!isName(frame.requestId)) return 'request.requestId must be a non-empty string of at most 256 characters';
  if (typeof frame.timeoutMs !== 'number' || !(frame.timeoutMs > 0) || frame.timeoutMs > 2_147_483_647) {
    return 'request.timeoutMs must be a number of ms in (0, 2^31 − 1]';
  }
  if (frame.label !== undefined && typeof frame.label !== 'string') return 'request.label must be a string';
  if (frame.meta !== undefined && !isObject(frame.meta)) return 'request.meta must be an object';
  const call = frame.call;
  if (!isObject(call)) return 'request.call must be an object';
  if (call.op === 'submit') return isName(call.method) ? undefined : 'request.call.method must be a name';
  if (call.op === 'call') {
    if (!isName(call.name)) return 'request.call.name must be a name';
    return Array.isArray(call.args) ? undefined : 'request.call.args must be an array';
  }
  return `request.call.op must be 'submit' or 'call'`;
}

/** Compares secrets in constant time (their SHA-256 digests, so lengths leak nothing either). */
export function secretsMatch(expected: string | undefined, given: unknown): boolean {
  if (expected === undefined) return true;
  if (typeof given !== 'string') return false;
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(expected), digest(given));
}

/** The difference between two handler sets, for a `HANDLERS_MISMATCH` message; undefined when equal. */
export function handlersMismatch(primary: readonly string[], secondary: readonly string[]): string | undefined {
  const mine = new Set(primary);
  const theirs = new Set(secondary);
  const missingHere = [...theirs].filter((name) => !mine.has(name));
  const missingThere = [...mine].filter((name) => !theirs.has(name));
  if (missingHere.length === 0 && missingThere.length === 0) return undefined;
  const list = (names: string[]) => (names.length ? names.slice(0, 20).join(', ') : 'none');
  return (
    `the secondary's handlers differ from the primary's (a rolling upgrade?): only on the secondary: ` +
    `${list(missingHere)}; only on the primary: ${list(missingThere)}`
  );
}

/** An error as it crosses the process boundary: code, message, retryable, class name. */
export function toWireError(error: unknown): WireError {
  if (error instanceof errors.WriteCoordinatorError) {
    return { code: error.code, message: error.message, retryable: error.retryable, name: error.name };
  }
  const message = error instanceof Error ? error.message : String(error);
  return { code: 'INTERNAL', message, retryable: false, name: 'InternalError' };
}

/** The subclass of each code, so a forwarded error is the same class as a local one. */
const CLASS_OF: Partial<
  Record<WriteErrorCode, new (detail: string, options?: errors.WriteCoordinatorErrorOptions) => WriteCoordinatorError>
> = {
  QUEUE_FULL: errors.QueueFullError,
  CANCELLED: errors.CancelledError,
  TIMEOUT: errors.TimeoutError,
  DRAINING: errors.DrainingError,
  SHUTDOWN: errors.ShutdownError,
  METHOD_NOT_FOUND: errors.MethodNotFoundError,
  INVALID_PARAMS: errors.InvalidParamsError,
  CONFLICT: errors.ConflictError,
  BUSY: errors.BusyError,
  INTERNAL: errors.InternalError,
  COORDINATOR_NOT_READY: errors.CoordinatorNotReadyError,
  UNAVAILABLE: errors.UnavailableError,
};

/**
 * The error a forwarded caller receives: the class of its code, with the primary's message,
 * `code` and `retryable` exactly as the primary decided them.
 */
export function fromWireError(wire: unknown, context: errors.WriteCoordinatorErrorOptions): WriteCoordinatorError {
  const w = isObject(wire) ? wire : {};
  const code = (typeof w.code === 'string' ? w.code : 'INTERNAL') as WriteErrorCode;
  const message = typeof w.message === 'string' ? w.message : 'the primary answered with a malformed error';
  const Class = CLASS_OF[code];
  const error: WriteCoordinatorError = Class
    ? new Class('', context)
    : new errors.WriteCoordinatorError(code, message, w.retryable === true, context);
  Object.defineProperty(error, 'message', {
    value: `${message} (on the primary)`,
    enumerable: false,
    writable: true,
    configurable: true,
  });
  Object.defineProperty(error, 'retryable', { value: w.retryable === true, enumerable: true });
  return error;
}
