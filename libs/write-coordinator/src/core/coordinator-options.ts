import { DataSource } from 'typeorm';
import { InvalidOptionsError } from '../errors';
import type { ChangePublisher } from '../changes/write-change';
import type { TopicMapping } from '../changes/change-topics';
import type { WhenFull } from '../queue/queue.types';
import type { CoordinatorInstrumentation } from './instrumentation';
import type { SynchronousLevel } from '../sqlite/sqlite-pragmas';
import type { OutsideWriteMode } from '../typeorm/write-router';
import { ResolvedWalCheckpoint, WAL_CHECKPOINT_DEFAULTS, WalCheckpointOptions } from '../sqlite/wal-checkpoint.options';
import {
  CLUSTER_DEFAULTS,
  ClusterOptions,
  HttpForwardingOptions,
  ResolvedClusterOptions,
} from '../cluster/cluster.options';

export type { WalCheckpointOptions } from '../sqlite/wal-checkpoint.options';
export type { ClusterOptions, ClusterRoleOption } from '../cluster/cluster.options';
export type { SynchronousLevel } from '../sqlite/sqlite-pragmas';
export type { OutsideWriteMode } from '../typeorm/write-router';

/** @internal The name of a coordinator when none is given. */
export const DEFAULT_COORDINATOR_NAME = 'default';

/**
 * Options of one coordinator, given to `WriteCoordinatorModule.forRoot()` or returned by the
 * `forRootAsync()` factory. Every field is optional.
 */
export interface WriteCoordinatorOptions {
  /**
   * Name of the coordinator. Several coordinators (one per DataSource) may coexist; inject a named
   * one with `@InjectWriteCoordinator(name)`.
   * @default 'default'
   */
  name?: string;
  /**
   * The TypeORM DataSource whose writes this coordinator serialises: the instance itself, or the
   * name it was registered under with `TypeOrmModule.forRoot({ name })`.
   * @default the default DataSource of `TypeOrmModule.forRoot()`
   */
  dataSource?: DataSource | string;
  /**
   * Capacity of the queue of waiting jobs (the running job is not counted). `<= 0` means 256.
   * @default 256
   */
  queueSize?: number;
  /**
   * What a submission does when the queue is full: `'wait'` for room (natural backpressure,
   * honouring its signal and deadline) or `'reject'` at once with `QUEUE_FULL`.
   * @default 'wait'
   */
  whenFull?: WhenFull;
  /**
   * Default deadline of a job in ms, counted from submission. A job past it while waiting never
   * runs; one past it while running is rolled back, never committed. Per-call `timeoutMs` wins.
   * @default undefined (no deadline)
   */
  timeoutMs?: number;
  /**
   * Register the module globally, so feature modules need not import it.
   * @default false
   */
  isGlobal?: boolean;
  /**
   * On application shutdown the coordinator drains (finishes every queued job) for at most this
   * many ms, then shuts down (rejects what is still queued with `SHUTDOWN`).
   * @default 10000
   */
  shutdownGraceMs?: number;
  /**
   * On SIGTERM (what orchestrators send), how long the health indicator reports the instance down
   * (503, "not ready") while the app keeps serving every request, so that load balancers take it
   * out of rotation before it stops accepting connections and drains. Only a SIGTERM shutdown
   * waits: SIGINT (Ctrl-C) and `app.close()` skip it. With several coordinators the largest wins.
   * @default 5000
   */
  readinessDelayMs?: number;
  /**
   * When the app has an HTTP server (read through `HttpAdapterHost`), let the coordinator manage its
   * shutdown: responses carry `Connection: close` from the signal on; after the readiness delay the
   * server stops accepting connections and its idle keep-alive connections are closed; connections
   * still open `shutdownGraceMs + 1 s` later are closed, so the process exits within
   * `readinessDelayMs + shutdownGraceMs + 1 s`. `false` leaves the HTTP server to Nest alone.
   * @default true
   */
  gracefulHttpShutdown?: boolean;
  /**
   * Receives an after-commit notification for every committed `submit()` request, in commit
   * order (the seed's change publisher). Its failures are logged, never fail the write.
   * @default publishes `WriteCoordinatorEvents.Change` on EventEmitter2 when the app has one
   */
  publisher?: ChangePublisher;
  /**
   * Writes issued outside a job: `'serialize'`, `'warn'`, `'throw'` or `'off'`
   * (see {@link OutsideWriteMode}).
   * @default 'serialize'
   */
  writesOutsideJobs?: OutsideWriteMode;
  /**
   * Serve reads issued outside a job from a separate read-only connection on the same WAL
   * database, so they see the last committed state and never a running job's uncommitted rows.
   * Needs a database file (not `:memory:`).
   * @default true
   */
  readIsolation?: boolean;
  /**
   * `PRAGMA synchronous` of the writing connection, applied and verified at bootstrap.
   * `FULL` (default) makes each commit durable; `NORMAL` in WAL mode may lose the last commits on
   * power loss (never on a process crash) and commits faster.
   * @default 'FULL'
   */
  synchronous?: SynchronousLevel;
  /**
   * `PRAGMA foreign_keys` of the writing connection, applied and verified at bootstrap.
   * @default true
   */
  foreignKeys?: boolean;
  /**
   * `PRAGMA busy_timeout` of both connections: how long SQLite itself waits (blocking the event
   * loop) on one attempt to take a lock held by another process. Keep it small; waiting longer is
   * the job of `busyBudgetMs`, which does not block.
   * @default 10
   */
  busyTimeoutMs?: number;
  /**
   * How long a job may wait in total for the write lock when another process holds it, retrying
   * `BEGIN IMMEDIATE` with exponential backoff without blocking the event loop; then it fails
   * with `BUSY` (retryable, nothing written).
   * @default 5000
   */
  busyBudgetMs?: number;
  /**
   * Topic of the change published for a committed `submit()` request: a map from method name
   * to topic, or a function returning the topic (`undefined` falls back to the default). By
   * default `CreateSession` becomes `db.session.created` (the seed's convention) and any other
   * method name is its own topic.
   * @default the seed's convention
   */
  topics?: TopicMapping;
  /**
   * Largest `submit()` params and handler result, in bytes of JSON. Larger params are refused
   * with `INVALID_PARAMS` before queueing; a larger result fails the job with `INTERNAL` and
   * nothing is written. Requests may cross a process boundary; keep them small.
   * @default 1048576 (1 MiB)
   */
  maxPayloadBytes?: number;
  /**
   * Group commit: the most jobs one transaction may carry. The running job takes the batchable
   * jobs already queued behind it into its transaction, each in its own savepoint, and one COMMIT
   * (one fsync at `synchronous=FULL`) ends them all. A job that throws rolls back only its
   * savepoint; the others are resolved only after the COMMIT. `1` turns it off.
   * @default 64
   */
  maxBatchSize?: number;
  /**
   * Group commit: how long a batch may wait, once no job is queued behind it, for more jobs to
   * arrive before its COMMIT (ms). Raises throughput when callers arrive just apart, at the cost
   * of that much latency for every job of the batch. `0`: commit as soon as the queue is empty.
   * @default 0
   */
  batchWaitMs?: number;
  /**
   * Group commit under network traffic: whether a batch whose queue is empty lets the event loop
   * run once (`setImmediate`) before its COMMIT, so that requests already waiting on sockets can
   * queue their jobs and join it. better-sqlite3 is synchronous: without this, a job that only
   * touches the database runs from BEGIN to COMMIT in one turn of the event loop, and requests
   * arriving over HTTP never find a job to join.
   * - `'auto'`: yield only while a COMMIT costs much more than a yield (an fsync at `FULL` does;
   *   a COMMIT at `NORMAL` in WAL mode usually does not), measured as the coordinator runs;
   *   yield again only while yields keep bringing jobs.
   * - `'always'`: yield whenever the queue is empty before a COMMIT (same rule for repeating).
   * - `'never'`: commit as soon as the queue is empty (before 0.2).
   * A batch whose earliest member deadline is less than 10 ms away (or less than four times what
   * recent yields took) commits without yielding: a yield cannot be cut short. Inert when
   * `maxBatchSize` is 1.
   * @default 'auto'
   */
  batchYield?: BatchYield;
  /**
   * The coordinator's own WAL checkpoints, on top of SQLite's automatic ones: PASSIVE once the
   * queue is idle, TRUNCATE between jobs once the `-wal` file is past `maxWalBytes`, so that
   * readers in other connections cannot starve checkpoints and let it grow without bound (see
   * {@link WalCheckpointOptions}). `false` leaves checkpoints to SQLite alone.
   * @default { idleMs: 100, maxWalBytes: 67108864, waitMs: 1000 }
   */
  walCheckpoint?: WalCheckpointOptions | false;
  /**
   * Metrics and tracing: each instrumentation is told of every job and commit of this coordinator
   * (`WriteCoordinatorPrometheus`, `WriteCoordinatorTracing`; see docs/observability.md).
   * @default [] (none: no per-job cost)
   */
  instrumentation?: readonly CoordinatorInstrumentation[];
  /**
   * Several processes on one database file: one elected primary runs the writes, the others
   * forward `submit()` and `@SerializedWrite({ forward: true })` calls to it (see docs/cluster.md).
   * Absent: every process writes through its own coordinator, meeting the others at SQLite's lock.
   * @default undefined (off)
   */
  cluster?: ClusterOptions;
}

/** When a group-commit batch lets the event loop run before its COMMIT (see `batchYield`). */
export type BatchYield = 'auto' | 'always' | 'never';

/** @internal Options after defaults and validation; everything downstream reads this type. */
export interface ResolvedWriteCoordinatorOptions {
  readonly name: string;
  readonly dataSource: DataSource | string | undefined;
  readonly queueSize: number;
  readonly whenFull: WhenFull;
  readonly timeoutMs: number | undefined;
  readonly isGlobal: boolean;
  readonly shutdownGraceMs: number;
  readonly readinessDelayMs: number;
  readonly gracefulHttpShutdown: boolean;
  readonly publisher: ChangePublisher | undefined;
  readonly writesOutsideJobs: OutsideWriteMode;
  readonly readIsolation: boolean;
  readonly synchronous: SynchronousLevel;
  readonly foreignKeys: boolean;
  readonly busyTimeoutMs: number;
  readonly busyBudgetMs: number;
  readonly topics: TopicMapping | undefined;
  readonly maxPayloadBytes: number;
  readonly maxBatchSize: number;
  readonly batchWaitMs: number;
  readonly batchYield: BatchYield;
  readonly walCheckpoint: ResolvedWalCheckpoint | false;
  readonly instrumentation: readonly CoordinatorInstrumentation[];
  readonly cluster: ResolvedClusterOptions | undefined;
}

/** The default value of every option. */
export const WRITE_COORDINATOR_DEFAULTS = Object.freeze({
  name: DEFAULT_COORDINATOR_NAME,
  dataSource: undefined,
  queueSize: 256,
  whenFull: 'wait',
  timeoutMs: undefined,
  isGlobal: false,
  shutdownGraceMs: 10_000,
  readinessDelayMs: 5_000,
  gracefulHttpShutdown: true,
  publisher: undefined,
  writesOutsideJobs: 'serialize',
  readIsolation: true,
  synchronous: 'FULL',
  foreignKeys: true,
  busyTimeoutMs: 10,
  busyBudgetMs: 5_000,
  topics: undefined,
  maxPayloadBytes: 1_048_576,
  maxBatchSize: 64,
  batchWaitMs: 0,
  batchYield: 'auto',
  walCheckpoint: WAL_CHECKPOINT_DEFAULTS,
  instrumentation: [],
  cluster: undefined,
} as const satisfies ResolvedWriteCoordinatorOptions);

type Check = (value: unknown) => string | undefined;

const nonEmptyString: Check = (v) => (typeof v === 'string' && v.trim() !== '' ? undefined : 'a non-empty string');
const integer: Check = (v) => (Number.isInteger(v) ? undefined : 'an integer');
/** Longest delay a Node timer honours (2^31 − 1 ms, about 24.8 days); a longer one fires after 1 ms. */
const MAX_TIMER_MS = 2_147_483_647;
const timerRange: Check = (v) =>
  (v as number) <= MAX_TIMER_MS ? undefined : `at most ${MAX_TIMER_MS} ms (the longest delay a Node timer honours)`;
const positiveFinite: Check = (v) =>
  typeof v === 'number' && Number.isFinite(v) && v > 0 ? timerRange(v) : 'a finite number of ms greater than 0';
const nonNegativeFinite: Check = (v) =>
  typeof v === 'number' && Number.isFinite(v) && v >= 0 ? timerRange(v) : 'a finite number of ms, 0 or more';
const nonNegativeInteger: Check = (v) =>
  Number.isInteger(v) && (v as number) >= 0 ? undefined : 'an integer, 0 or more';
const boolean: Check = (v) => (typeof v === 'boolean' ? undefined : 'a boolean');
const oneOf =
  (...values: string[]): Check =>
  (v) =>
    values.includes(v as string)
      ? undefined
      : values
          .map((value) => `'${value}'`)
          .join(', ')
          .replace(/, ([^,]*)$/, ' or $1');

/** One validator per option; an option missing here is unknown and refused (typos fail loudly). */
const CHECKS: Record<keyof WriteCoordinatorOptions, Check> = {
  name: nonEmptyString,
  dataSource: (v) =>
    v instanceof DataSource || (typeof v === 'string' && v.trim() !== '')
      ? undefined
      : 'a TypeORM DataSource or the non-empty name it was registered under',
  queueSize: integer,
  whenFull: oneOf('wait', 'reject'),
  timeoutMs: positiveFinite,
  isGlobal: boolean,
  shutdownGraceMs: nonNegativeFinite,
  readinessDelayMs: nonNegativeFinite,
  gracefulHttpShutdown: boolean,
  publisher: (v) =>
    typeof v === 'object' && v !== null && typeof (v as ChangePublisher).publish === 'function'
      ? undefined
      : 'an object with a publish(change) method',
  writesOutsideJobs: oneOf('serialize', 'warn', 'throw', 'off'),
  readIsolation: boolean,
  synchronous: oneOf('OFF', 'NORMAL', 'FULL', 'EXTRA'),
  foreignKeys: boolean,
  busyTimeoutMs: nonNegativeInteger,
  busyBudgetMs: nonNegativeFinite,
  topics: (v) =>
    typeof v === 'function' ||
    (typeof v === 'object' &&
      v !== null &&
      !Array.isArray(v) &&
      Object.values(v).every((t) => typeof t === 'string' && t !== ''))
      ? undefined
      : 'a function (method) => topic, or an object mapping method names to non-empty topic strings',
  batchWaitMs: nonNegativeFinite,
  batchYield: oneOf('auto', 'always', 'never'),
  maxBatchSize: (v) => (Number.isInteger(v) && (v as number) >= 1 ? undefined : 'an integer, 1 or more'),
  maxPayloadBytes: (v) =>
    Number.isInteger(v) && (v as number) > 0 ? undefined : 'an integer number of bytes, 1 or more',
  walCheckpoint: (v) =>
    v === false || (typeof v === 'object' && v !== null && !Array.isArray(v))
      ? undefined
      : 'false or an object { idleMs?, maxWalBytes?, waitMs? }',
  instrumentation: (v) =>
    Array.isArray(v) && v.every((i) => typeof (i as CoordinatorInstrumentation | null)?.instrument === 'function')
      ? undefined
      : 'an array of instrumentations (objects with an instrument(coordinator) method)',
  cluster: (v) =>
    typeof v === 'object' && v !== null && !Array.isArray(v)
      ? undefined
      : 'an object { role?, socketPath?, secret?, … } (absent: no cluster)',
};

/** The fields of `cluster`, checked and named as `cluster.<field>`. */
const CLUSTER_CHECKS: Record<keyof ClusterOptions, Check> = {
  role: oneOf('auto', 'primary', 'secondary'),
  socketPath: nonEmptyString,
  lockPath: nonEmptyString,
  secret: nonEmptyString,
  heartbeatMs: positiveFinite,
  retryMs: positiveFinite,
  forwardTimeoutMs: positiveFinite,
  dedupeWindowMs: positiveFinite,
  pruneIntervalMs: positiveFinite,
  handshakeTimeoutMs: positiveFinite,
  requestsTable: (v) =>
    typeof v === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(v)
      ? undefined
      : 'a table name (letters, digits and _, not starting with a digit)',
  primary: (v) =>
    isObject(v) && ['lock', 'litefs', 'static'].includes(v.strategy as string)
      ? undefined
      : "an object { strategy: 'lock' | 'litefs' | 'static', … }",
  http: (v) => (isObject(v) ? undefined : 'an object'),
  readYourWritesMs: (v) => (v === false ? undefined : positiveFinite(v) && `${positiveFinite(v)}, or false`),
};

/** A port number: an integer in [0, 65535] (0: any free port, for tests). */
const port: Check = (v) =>
  Number.isInteger(v) && (v as number) >= 0 && (v as number) <= 65_535 ? undefined : 'an integer port in [0, 65535]';
const pemLike: Check = (v) =>
  (typeof v === 'string' && v.trim() !== '') || Buffer.isBuffer(v) ? undefined : 'a PEM string or Buffer';

/** The fields of each `cluster.primary` strategy, named `cluster.primary.<field>`. */
const STRATEGY_CHECKS: Record<string, Record<string, Check>> = {
  lock: { strategy: () => undefined },
  litefs: {
    strategy: () => undefined,
    mountDir: nonEmptyString,
    eventsUrl: (v) =>
      v === false || isHttpUrl(v) ? undefined : 'an http: URL (LiteFS serves it on localhost), or false',
    pollMs: positiveFinite,
  },
  static: { strategy: () => undefined, primary: nonEmptyString, hostname: nonEmptyString },
};

/** The fields of `cluster.http`, named `cluster.http.<field>`. */
const HTTP_CHECKS: Record<keyof HttpForwardingOptions, Check> = {
  port,
  host: nonEmptyString,
  path: (v) => (typeof v === 'string' && /^\/[\x21-\x7e]*$/.test(v) ? undefined : "a URL path starting with '/'"),
  tls: (v) => (isObject(v) ? undefined : 'an object { key, cert, ca? }'),
  url: (v) => (typeof v === 'function' ? undefined : 'a function (hostname) => URL string'),
};
const TLS_CHECKS: Record<string, Check> = { key: pemLike, cert: pemLike, ca: pemLike };

/** Validates `cluster.primary` and `cluster.http`, and what the strategies need of the rest. */
function validateStrategy(value: ClusterOptions, context: string): void {
  const strategy = value.primary?.strategy ?? 'lock';
  if (value.primary !== undefined) {
    validateOptions(STRATEGY_CHECKS[strategy], value.primary, context, 'cluster.primary.');
    if (strategy === 'static') required(value.primary, ['primary'], 'cluster.primary.', context);
  }
  if (value.http !== undefined) {
    validateOptions(HTTP_CHECKS, value.http, context, 'cluster.http.');
    if (value.http.tls !== undefined) {
      validateOptions(TLS_CHECKS, value.http.tls, context, 'cluster.http.tls.');
      required(value.http.tls, ['key', 'cert'], 'cluster.http.tls.', context);
    }
  }
  if (strategy === 'lock') return;
  // Between hosts: the forwarding port is reachable from the network.
  if (value.secret === undefined) {
    throw new InvalidOptionsError(
      'cluster.secret',
      `a shared secret (the '${strategy}' strategy forwards writes between hosts over HTTP)`,
      undefined,
      context,
    );
  }
  if (!/^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(value.secret)) {
    throw new InvalidOptionsError(
      'cluster.secret',
      'printable ASCII without spaces at either end (it travels in an HTTP Authorization header)',
      value.secret,
      context,
    );
  }
  if (value.role !== undefined && value.role !== 'auto') {
    throw new InvalidOptionsError(
      'cluster.role',
      `'auto' (the '${strategy}' strategy decides the primary)`,
      value.role,
      context,
    );
  }
}

/** @throws {InvalidOptionsError} naming the first of `fields` that `value` lacks. */
function required(value: object, fields: string[], prefix: string, context: string): void {
  for (const field of fields) {
    const received = (value as Record<string, unknown>)[field];
    if (received === undefined) throw new InvalidOptionsError(prefix + field, 'a value (required)', received, context);
  }
}

function isHttpUrl(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  try {
    const url = new URL(value);
    return url.protocol === 'http:';
  } catch {
    return false;
  }
}

/** Validates the fields of a `cluster` object and fills in its defaults. */
function resolveCluster(value: ClusterOptions | undefined, context: string): ResolvedClusterOptions | undefined {
  if (value === undefined || resolved.has(value)) return value as ResolvedClusterOptions | undefined;
  validateOptions(CLUSTER_CHECKS, value, context, 'cluster.');
  validateStrategy(value, context);
  const result = Object.freeze({ ...CLUSTER_DEFAULTS, ...withoutUndefined(value) });
  resolved.add(result);
  return result;
}

/** The fields of `walCheckpoint`, checked and named as `walCheckpoint.<field>`. */
const WAL_CHECKS: Record<keyof WalCheckpointOptions, Check> = {
  idleMs: (v) => (v === false ? undefined : positiveFinite(v) && `${positiveFinite(v)}, or false`),
  maxWalBytes: (v) =>
    v === false || (Number.isInteger(v) && (v as number) > 0)
      ? undefined
      : 'an integer number of bytes, 1 or more, or false',
  waitMs: nonNegativeFinite,
};

/** Validates the fields of a `walCheckpoint` object and fills in its defaults. */
function resolveWalCheckpoint(value: WalCheckpointOptions | false, context: string): ResolvedWalCheckpoint | false {
  if (value === false || resolved.has(value)) return value as ResolvedWalCheckpoint | false;
  validateOptions(WAL_CHECKS, value, context, 'walCheckpoint.');
  const result = Object.freeze({ ...WAL_CHECKPOINT_DEFAULTS, ...withoutUndefined(value) });
  resolved.add(result);
  return result;
}

/**
 * Merges options with {@link WRITE_COORDINATOR_DEFAULTS} and validates them.
 *
 * @throws {InvalidOptionsError} naming the field, the expectation and the received value.
 */
export function resolveWriteCoordinatorOptions(
  options: WriteCoordinatorOptions | undefined = {},
  context = 'WriteCoordinatorModule',
): ResolvedWriteCoordinatorOptions {
  if (resolved.has(options as object)) return options as ResolvedWriteCoordinatorOptions;
  validateOptions(CHECKS, options, context);
  const merged = { ...WRITE_COORDINATOR_DEFAULTS, ...withoutUndefined(options) };
  const result = Object.freeze({
    ...merged,
    queueSize: merged.queueSize <= 0 ? WRITE_COORDINATOR_DEFAULTS.queueSize : merged.queueSize,
    walCheckpoint: resolveWalCheckpoint(merged.walCheckpoint, context),
    cluster: resolveCluster(merged.cluster, context),
  });
  resolved.add(result);
  return result;
}

/** Options objects this module produced (validated once; resolving them again returns them). */
const resolved = new WeakSet<object>();

/**
 * Validates per-call {@link WriteOptions}-style fields with the same messages as module options.
 *
 * @internal
 * @throws {InvalidOptionsError}
 */
export function validateCallOptions(
  options: { timeoutMs?: unknown; signal?: unknown; label?: unknown },
  context: string,
): void {
  const timeoutExpected = options.timeoutMs === undefined ? undefined : positiveFinite(options.timeoutMs);
  if (timeoutExpected) throw new InvalidOptionsError('timeoutMs', timeoutExpected, options.timeoutMs, context);
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal)) {
    throw new InvalidOptionsError('signal', 'an AbortSignal', options.signal, context);
  }
  if (options.label !== undefined && typeof options.label !== 'string') {
    throw new InvalidOptionsError('label', 'a string', options.label, context);
  }
}

/** @internal A validator: `undefined` when `value` is valid, else what was expected. */
export type OptionCheck = (value: unknown) => string | undefined;

/**
 * @internal The validators of the module options, for the other option tables (the health
 * indicator's thresholds), so every range check and message is written once.
 */
export const OPTION_CHECKS = Object.freeze({
  positiveFinite,
  nonNegativeFinite,
  ratio: ((v) => (typeof v === 'number' && v > 0 && v <= 1 ? undefined : 'a number in (0, 1]')) satisfies OptionCheck,
});

/**
 * @internal Validates an options object against its table: an object (unless `prefix` names a
 * field already checked to be one), no field missing from `checks` (typos fail loudly), every
 * defined field accepted by its check. Errors name the field (`prefix` + name), the expectation
 * and the received value, with `context`. The module options, `walCheckpoint` and the
 * observability entries' options all go through it.
 * @throws {InvalidOptionsError}
 */
export function validateOptions<K extends string>(
  checks: Record<K, OptionCheck>,
  options: unknown,
  context: string,
  prefix = '',
): asserts options is Partial<Record<K, unknown>> {
  if (prefix === '' && (typeof options !== 'object' || options === null || Array.isArray(options))) {
    throw new InvalidOptionsError('options', 'an object', options, context);
  }
  for (const [field, value] of Object.entries(options as object)) {
    const check = (checks as Record<string, OptionCheck | undefined>)[field];
    const expected = check
      ? value !== undefined && check(value)
      : `one of the known options (${Object.keys(checks).join(', ')})`;
    if (expected) throw new InvalidOptionsError(prefix + field, expected, value, context);
  }
}

/**
 * @internal Validates the defined fields of `values` against `checks`, with the module options'
 * messages (field, expectation, value, prefixed by `context`); fields without a check are let
 * through (see {@link validateOptions} to refuse them).
 * @throws {InvalidOptionsError}
 */
export function validateFields<K extends string>(
  checks: Record<K, OptionCheck>,
  values: Partial<Record<K, unknown>>,
  context: string,
): void {
  for (const field of Object.keys(checks) as K[]) {
    const value = values[field];
    if (value === undefined) continue;
    const expected = checks[field](value);
    if (expected) throw new InvalidOptionsError(field, expected, value, context);
  }
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** A plain object (not null, not an array). */
function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
