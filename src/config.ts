import { join, resolve } from 'node:path';

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
}

/** Reads {@link DemoConfig} from `env`, failing with a clear message on a malformed number. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): DemoConfig {
  return {
    port: integer(env, 'PORT', 3000),
    databasePath: resolve(env.DATABASE_PATH ?? join('data', 'ledger.db')),
    writeTimeoutMs: integer(env, 'WRITE_TIMEOUT_MS', 10_000),
    writeQueueSize: integer(env, 'WRITE_QUEUE_SIZE', 1024),
    readinessDelayMs: integer(env, 'READINESS_DELAY_MS', 5_000),
    shutdownGraceMs: integer(env, 'SHUTDOWN_GRACE_MS', 10_000),
  };
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
