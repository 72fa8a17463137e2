import { join, resolve } from 'node:path';
import type { SynchronousLevel } from 'nestjs-sqlite-write-coordinator';

/**
 * How a group-commit batch yields to the event loop before its COMMIT (the coordinator's
 * `batchYield` option, issue 11). The demo passes it through only when `WRITE_BATCH_YIELD` is set,
 * so a library without that option keeps working.
 */
export type DemoBatchYield = 'auto' | 'always' | 'never';

/** Settings of the demo service, read once from the environment. */
export interface DemoConfig {
  /** HTTP port. Env `PORT`, default 3000. */
  port: number;
  /** SQLite file. Env `DATABASE_PATH`, default `./data/ledger.db`. */
  databasePath: string;
  /** Deadline of one write in ms. Env `WRITE_TIMEOUT_MS`, default 10000. */
  writeTimeoutMs: number;
  /** Capacity of the write queue. Env `WRITE_QUEUE_SIZE`, default 1024. */
  writeQueueSize: number;
  /** On SIGTERM, how long `/health` answers 503 while the demo keeps serving (ms). Env `READINESS_DELAY_MS`, default 5000. */
  readinessDelayMs?: number;
  /** How long shutdown waits for queued writes (ms). Env `SHUTDOWN_GRACE_MS`, default 10000. */
  shutdownGraceMs?: number;
  /** `PRAGMA synchronous` of the writing connection. Env `WRITE_SYNCHRONOUS`, default: the coordinator's (`FULL`). */
  writeSynchronous?: SynchronousLevel;
  /** Group commit: most jobs per transaction, `1` turns it off. Env `WRITE_MAX_BATCH_SIZE`, default: the coordinator's (64). */
  writeMaxBatchSize?: number;
  /** Group commit's yield before COMMIT. Env `WRITE_BATCH_YIELD`, default: not passed (the coordinator's own). */
  writeBatchYield?: DemoBatchYield;
  /**
   * Processes serving the demo on one port and one database file (node:cluster). Env `WORKERS`,
   * default 1: a single process, no cluster. More than 1: a master process forks that many workers
   * and restarts one that dies; it never opens the database itself.
   */
  workers?: number;
  /**
   * The coordinator's `cluster` option: one elected primary runs the writes, the other processes
   * forward theirs to it. Env `WRITE_CLUSTER` (`1` or `0`), default on when `WORKERS` > 1. `0` with
   * several workers gives every worker its own coordinator, meeting the others at SQLite's lock.
   */
  writeCluster?: boolean;
  /** Several hosts (docs/multi-host.md): set when `WRITE_PRIMARY` is. */
  hosts?: HostsConfig;
}

/**
 * Several hosts, each with its own database file (LiteFS): how the primary is found and where the
 * others forward their writes. Env `WRITE_PRIMARY` (`litefs` or `static`) turns it on.
 */
export interface HostsConfig {
  /** `litefs`: LiteFS decides; `static`: `WRITE_STATIC_PRIMARY` is the primary. Env `WRITE_PRIMARY`. */
  strategy: 'litefs' | 'static';
  /** Shared by every host. Env `WRITE_SECRET` (required). */
  secret: string;
  /** The port the primary listens on for forwarded writes. Env `WRITE_FORWARD_PORT`, default 20210. */
  forwardPort: number;
  /** LiteFS's event stream. Env `LITEFS_EVENTS_URL`, default LiteFS's (`http://localhost:20202/events`). */
  eventsUrl?: string;
  /** `static`: the primary's hostname. Env `WRITE_STATIC_PRIMARY` (required with `static`). */
  staticPrimary?: string;
  /** This host's name. Env `WRITE_HOSTNAME`, default the OS's. */
  hostname?: string;
  /**
   * Where each host's app and forwarding endpoint are, when the hosts are not reachable by name on
   * the default ports (several "hosts" on one machine: tests). Env `WRITE_HOSTS`, JSON
   * `{ "<hostname>": { "app": "http://127.0.0.1:3001", "forward": "http://127.0.0.1:20211/_write-coordinator" } }`.
   */
  addresses?: Record<string, { app: string; forward: string }>;
  /**
   * Every write route works on every host: `PrimaryForwardingInterceptor` replays write requests
   * on the primary host. Env `FORWARD_HTTP` (`1` or `0`), default `1`.
   */
  forwardHttp: boolean;
}

/** Reads {@link DemoConfig} from `env`, failing with a clear message on a malformed value. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): DemoConfig {
  return {
    port: integer(env, 'PORT', 3000),
    databasePath: resolve(env.DATABASE_PATH ?? join('data', 'ledger.db')),
    writeTimeoutMs: integer(env, 'WRITE_TIMEOUT_MS', 10_000),
    writeQueueSize: integer(env, 'WRITE_QUEUE_SIZE', 1024),
    readinessDelayMs: integer(env, 'READINESS_DELAY_MS', 5_000),
    shutdownGraceMs: integer(env, 'SHUTDOWN_GRACE_MS', 10_000),
    writeSynchronous: oneOf(env, 'WRITE_SYNCHRONOUS', ['OFF', 'NORMAL', 'FULL', 'EXTRA'] as const),
    writeMaxBatchSize: positiveInteger(env, 'WRITE_MAX_BATCH_SIZE'),
    writeBatchYield: oneOf(env, 'WRITE_BATCH_YIELD', ['auto', 'always', 'never'] as const),
    ...cluster(env),
    ...hosts(env),
  };
}

function hosts(env: NodeJS.ProcessEnv): Pick<DemoConfig, 'hosts'> {
  const strategy = oneOf(env, 'WRITE_PRIMARY', ['litefs', 'static'] as const);
  if (strategy === undefined) return {};
  const secret = required(env, 'WRITE_SECRET', `WRITE_PRIMARY=${strategy}`);
  const staticPrimary =
    strategy === 'static' ? required(env, 'WRITE_STATIC_PRIMARY', 'WRITE_PRIMARY=static') : undefined;
  let addresses: HostsConfig['addresses'];
  if (env.WRITE_HOSTS) {
    try {
      addresses = JSON.parse(env.WRITE_HOSTS) as HostsConfig['addresses'];
    } catch {
      throw new Error(
        `WRITE_HOSTS must be JSON { "<hostname>": { "app": url, "forward": url } } (received '${env.WRITE_HOSTS}')`,
      );
    }
  }
  return {
    hosts: {
      strategy,
      secret,
      forwardPort: integer(env, 'WRITE_FORWARD_PORT', 20210),
      ...(env.LITEFS_EVENTS_URL ? { eventsUrl: env.LITEFS_EVENTS_URL } : {}),
      ...(staticPrimary ? { staticPrimary } : {}),
      ...(env.WRITE_HOSTNAME ? { hostname: env.WRITE_HOSTNAME } : {}),
      ...(addresses ? { addresses } : {}),
      forwardHttp: (oneOf(env, 'FORWARD_HTTP', ['0', '1'] as const) ?? '1') === '1',
    },
  };
}

function required(env: NodeJS.ProcessEnv, name: string, because: string): string {
  const raw = env[name];
  if (raw === undefined || raw === '') throw new Error(`${name} is required with ${because}`);
  return raw;
}

function cluster(env: NodeJS.ProcessEnv): Pick<DemoConfig, 'workers' | 'writeCluster'> {
  const workers = positiveInteger(env, 'WORKERS') ?? 1;
  const writeCluster = oneOf(env, 'WRITE_CLUSTER', ['0', '1'] as const);
  return { workers, writeCluster: writeCluster === undefined ? workers > 1 : writeCluster === '1' };
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    throw new Error(`${name} must be a non-negative integer (received '${raw}')`);
  }
  return value;
}

function positiveInteger(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`${name} must be an integer, 1 or more (received '${raw}')`);
  }
  return value;
}

function oneOf<T extends string>(env: NodeJS.ProcessEnv, name: string, values: readonly T[]): T | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  if (!(values as readonly string[]).includes(raw)) {
    throw new Error(`${name} must be one of ${values.join(', ')} (received '${raw}')`);
  }
  return raw as T;
}
