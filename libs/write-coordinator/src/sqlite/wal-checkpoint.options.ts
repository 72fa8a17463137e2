/**
 * When the coordinator checkpoints the write-ahead log itself (the `walCheckpoint` option), on top
 * of SQLite's own automatic checkpoints (`wal_autocheckpoint`, left on). Every field is optional.
 */
export interface WalCheckpointOptions {
  /**
   * Run a PASSIVE checkpoint on the writing connection once no job has committed for this many
   * ms and the queue is idle: it copies what readers allow back into the database file and never
   * waits for them, so that the next write can start the `-wal` file from its beginning again.
   * `false`: never.
   * @default 100
   */
  idleMs?: number | false;
  /**
   * Size of the `-wal` file past which the coordinator runs a TRUNCATE checkpoint before the next
   * job begins (between jobs, on the single drain): it copies every frame back, waits for the
   * readers still using the log to finish, and empties the file. Readers that hold a snapshot
   * for ever would otherwise let it grow without bound. `false`: no limit.
   * @default 67108864 (64 MiB)
   */
  maxWalBytes?: number | false;
  /**
   * How long, past the limit, the next job may be held while readers keep the TRUNCATE from
   * completing: it is retried with backoff (1 → 50 ms) without blocking the event loop (each
   * attempt runs with `busy_timeout` 0, so SQLite itself never waits for readers). Then writes go
   * on over the limit, counted in `metrics().wal.gaveUp`, and the limit is enforced again after as
   * long again.
   * @default 1000
   */
  waitMs?: number;
}

/** @internal {@link WalCheckpointOptions} after defaults and validation. */
export interface ResolvedWalCheckpoint {
  readonly idleMs: number | false;
  readonly maxWalBytes: number | false;
  readonly waitMs: number;
}

/** @internal The default of every field of {@link WalCheckpointOptions}. */
export const WAL_CHECKPOINT_DEFAULTS: ResolvedWalCheckpoint = Object.freeze({
  idleMs: 100,
  maxWalBytes: 64 * 1024 * 1024,
  waitMs: 1_000,
});
