import { DatabaseCopier, Snapshot } from './database-copy';
import { Position, TxData, formatPosition, hexTxID } from './node-files';
import type { NodeState } from './stand-in-node';

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

/** What {@link Replication} needs from the controller. */
export interface ReplicationHost {
  /** The database file name (the `db` of `tx` events). */
  readonly database: string;
  /** The position every node starts at (no tx log line exists for it). */
  readonly initial: Position;
  primary(): NodeState;
  nodes(): Iterable<NodeState>;
  /** Runs `operation` after every other controller operation, alone. */
  exclusive(operation: () => Promise<void>): Promise<void>;
}

/**
 * @internal The stand-in's asynchronous replication: reads the primary's tx log (its `tx` events),
 * and `delayMs` after a transaction copies one snapshot of the primary to every connected replica
 * whose `-pos` differs, then sets their `-pos` and sends one `tx` event per TXID they gained.
 * Rounds coalesce: at most one is waiting, and it copies the latest state.
 */
export class Replication {
  private readonly copier = new DatabaseCopier();
  /** The tx event data of every TXID of the current primary's history that the tx logs showed. */
  private readonly history = new Map<number, TxData>();
  private poller?: NodeJS.Timeout;
  private roundTimer?: NodeJS.Timeout;
  /** The first error of a background round. */
  private failed?: { error: unknown };

  constructor(
    private readonly host: ReplicationHost,
    private delayMs: number,
  ) {}

  /** Starts watching the primary's tx log (every 2 ms). */
  start(): void {
    this.poller ??= setInterval(() => {
      if (this.drainTxLog(this.host.primary()) > 0) this.schedule();
    }, 2);
  }

  /**
   * Throws the error a background round failed with, if one did.
   *
   * @throws {Error} that error.
   */
  throwIfFailed(): void {
    if (this.failed) throw this.failed.error;
  }

  /** Changes the delay; a round already waiting is re-timed with it. */
  setDelay(ms: number): void {
    this.delayMs = ms;
    if (this.roundTimer) {
      clearTimeout(this.roundTimer);
      this.roundTimer = undefined;
      this.schedule();
    }
  }

  /** Plans a round `delayMs` from now, unless one is planned already. */
  schedule(): void {
    if (this.roundTimer || !Number.isFinite(this.delayMs)) return;
    this.roundTimer = setTimeout(() => {
      this.roundTimer = undefined;
      this.host.exclusive(() => this.round()).catch((error: unknown) => (this.failed ??= { error }));
    }, this.delayMs);
  }

  /**
   * Brings `to` up to `from` now, whatever the delay (a promotion's catch-up). `from` must have
   * been demoted already: its snapshot is taken once its `-pos` stands still, without its lock.
   */
  async copy(from: NodeState, to: NodeState): Promise<void> {
    const snapshot = await this.copier.snapshot(from.node.databasePath, from.files, { demoted: true });
    await this.awaitHistory(from, snapshot.position.txID);
    await this.apply(to, snapshot);
  }

  /** Forgets the history after `txID`: a failover without catch-up lost those transactions. */
  forgetAfter(txID: number): void {
    for (const known of [...this.history.keys()]) if (known > txID) this.history.delete(known);
  }

  /** Stops polling and planning rounds (a round already running finishes) and closes connections. */
  stop(): void {
    clearInterval(this.poller);
    clearTimeout(this.roundTimer);
    this.roundTimer = undefined;
    this.delayMs = Number.POSITIVE_INFINITY;
  }

  /** Closes the copier's connections; call once no round runs any more. */
  close(): void {
    this.copier.close();
  }

  /** Reads a node's new tx log lines into the history and sends them as `tx` events on its stream. */
  private drainTxLog(state: NodeState): number {
    const lines = state.files.readTxLog().sort((a, b) => Number.parseInt(a.txID, 16) - Number.parseInt(b.txID, 16));
    for (const data of lines) {
      this.history.set(Number.parseInt(data.txID, 16), data);
      state.events.send({ type: 'tx', db: this.host.database, data });
    }
    return lines.length;
  }

  /** The agent logs a transaction just after its COMMIT: give the line up to 1 s to appear. */
  private async awaitHistory(state: NodeState, txID: number): Promise<void> {
    const deadline = Date.now() + 1000;
    while (!this.history.has(txID) && txID > this.host.initial.txID && Date.now() < deadline) {
      this.drainTxLog(state);
      if (!this.history.has(txID)) await sleep(1);
    }
  }

  private async round(): Promise<void> {
    const primary = this.host.primary();
    const target = formatPosition(primary.files.position());
    const behind = [...this.host.nodes()].filter(
      (state) => state !== primary && state.connected && formatPosition(state.files.position()) !== target,
    );
    if (behind.length === 0) return;
    const snapshot = await this.copier.snapshot(primary.node.databasePath, primary.files);
    await this.awaitHistory(primary, snapshot.position.txID);
    for (const state of behind) await this.apply(state, snapshot);
  }

  /** Copies `snapshot` into the node's database, then sets its `-pos` and sends its `tx` events. */
  private async apply(state: NodeState, snapshot: Snapshot): Promise<void> {
    const before = state.files.position();
    if (formatPosition(before) === formatPosition(snapshot.position)) return;
    await this.copier.restore(snapshot.image, state.node.databasePath);
    state.files.setPosition(snapshot.position);
    const last = snapshot.position.txID;
    // A node ahead of the snapshot, or on another history, gets one event: the TXID it is reset to.
    const first = before.txID < last ? before.txID + 1 : last;
    for (let txID = first; txID <= last; txID++) {
      const data = this.history.get(txID) ?? unloggedTx(txID, snapshot);
      state.events.send({ type: 'tx', db: this.host.database, data });
    }
  }
}

/**
 * The event data of a TXID the tx log never showed (the initial TXID, or a line not there 1 s
 * after its commit): the checksum is known for the snapshot's own TXID only.
 */
function unloggedTx(txID: number, snapshot: Snapshot): TxData {
  const header = snapshot.image.length >= 100 ? snapshot.image.readUInt16BE(16) : 4096;
  const pageSize = header === 1 ? 65536 : header;
  return {
    txID: hexTxID(txID),
    postApplyChecksum: txID === snapshot.position.txID ? snapshot.position.checksum : '0000000000000000',
    pageSize,
    commit: Math.ceil(snapshot.image.length / pageSize),
    timestamp: new Date().toISOString(),
  };
}
