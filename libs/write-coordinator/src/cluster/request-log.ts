import { createHash } from 'node:crypto';
import type { WriteJob } from '../transaction/write-job';
import type { ForwardedCall } from './protocol';

/** What the primary remembers of a request it applied. */
export interface RecordedOutcome {
  /** Digest of the request (operation, name, arguments): a reused id with another request is refused. */
  fingerprint: string;
  /** The JSON result returned to the caller (undefined for none). */
  result: unknown;
}

/**
 * @internal The exactly-once table: request id → fingerprint and outcome, written in the same
 * transaction as the request's own writes (so an outcome is recorded if and only if the write
 * committed), read before running a request, pruned in the background. Statements go through the
 * job's raw fast path (prepared once, no TypeORM on the way).
 */
export class RequestLog {
  private readonly select: string;
  private readonly insert: string;
  private readonly prune: string;

  constructor(private readonly table: string) {
    this.select = `SELECT fingerprint, result FROM "${table}" WHERE request_id = ?`;
    this.insert = `INSERT INTO "${table}" (request_id, fingerprint, result, created_at) VALUES (?, ?, ?, ?)`;
    this.prune = `DELETE FROM "${table}" WHERE created_at < ?`;
  }

  /** Creates the table (and its pruning index) if it does not exist yet. */
  ensure(job: WriteJob): void {
    job
      .statement(
        `CREATE TABLE IF NOT EXISTS "${this.table}" (request_id TEXT PRIMARY KEY NOT NULL, ` +
          `fingerprint TEXT NOT NULL, result TEXT, created_at INTEGER NOT NULL) WITHOUT ROWID`,
      )
      .run();
    job.statement(`CREATE INDEX IF NOT EXISTS "${this.table}_created_at" ON "${this.table}" (created_at)`).run();
  }

  /** The recorded outcome of `requestId`, or undefined when it never committed (or was pruned). */
  lookup(job: WriteJob, requestId: string): RecordedOutcome | undefined {
    const row = job.statement(this.select).get(requestId) as { fingerprint: string; result: string | null } | undefined;
    if (!row) return undefined;
    return {
      fingerprint: row.fingerprint,
      result: row.result === null ? undefined : (JSON.parse(row.result) as unknown),
    };
  }

  /** Records the outcome of `requestId`, inside the job's transaction. */
  record(job: WriteJob, requestId: string, fingerprint: string, result: unknown): void {
    job
      .statement(this.insert)
      .run(requestId, fingerprint, result === undefined ? null : JSON.stringify(result), Date.now());
  }

  /** Deletes outcomes recorded before `before` (ms since the epoch); returns how many. */
  pruneBefore(job: WriteJob, before: number): number {
    return job.statement(this.prune).run(before).changes;
  }
}

/** The digest of a forwarded call that a reused request id must match. */
export function fingerprintOf(call: ForwardedCall): string {
  const body = call.op === 'submit' ? ['submit', call.method, call.params ?? null] : ['call', call.name, call.args];
  return createHash('sha256').update(JSON.stringify(body)).digest('base64url').slice(0, 22);
}
