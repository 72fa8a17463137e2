import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import Database from 'better-sqlite3';
import { NodeEventStream, PrimaryInfo } from './event-stream';
import { NodeFiles, Position, formatPosition } from './node-files';
import { Replication } from './replication';
import type { NodeState, StandInNode } from './stand-in-node';

export type { StandInNode } from './stand-in-node';

/** The preload agent a node's processes load (`node --require <AGENT_PATH>`). */
export const AGENT_PATH = join(__dirname, 'agent.cjs');

/** How to start a {@link LiteFsStandIn}. */
export interface LiteFsStandInOptions {
  /** Directory that receives one mount directory per node (`<root>/<node>`). */
  root: string;
  /** The nodes' hostnames. */
  nodes: readonly string[];
  /** The node that is the primary at start. */
  primary: string;
  /** The database file name in every mount. @default 'app.db' */
  database?: string;
  /** How long a committed transaction waits before it is copied to the replicas. @default 50 */
  replicationDelayMs?: number;
  /** The journal mode the database is created in (when it does not exist yet). @default 'wal' */
  journalMode?: 'wal' | 'delete';
}

const INITIAL: Position = {
  txID: 1,
  checksum: createHash('sha256').update('litefs stand-in').digest('hex').slice(0, 16),
};
const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

/**
 * TEST DOUBLE of a LiteFS cluster (superfly/litefs) on one machine, for tests only: see README.md in
 * this directory for what it imitates and where it differs. Runs in the test process; the nodes'
 * application processes load `agent.cjs`.
 */
export class LiteFsStandIn {
  private readonly replication: Replication;
  /** Promotions, (dis)connections and replication rounds run one at a time, in this chain. */
  private operations: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly states: Map<string, NodeState>,
    private primaryName: string,
    database: string,
    delayMs: number,
  ) {
    this.replication = new Replication(
      {
        database,
        initial: INITIAL,
        primary: () => this.state(this.primaryName),
        nodes: () => this.states.values(),
        exclusive: (operation) => this.exclusive(operation),
      },
      delayMs,
    );
  }

  /**
   * Creates the mount directories, the database (on the primary if absent, copied to the replicas
   * that lack it), the `-pos` files (TXID 1), the role and `.primary` files, and one events server
   * per node; then replicates every transaction committed on the primary.
   *
   * @throws {Error} if the node names are not unique or `primary` is not one of them.
   */
  static async start(options: LiteFsStandInOptions): Promise<LiteFsStandIn> {
    const database = options.database ?? 'app.db';
    if (new Set(options.nodes).size !== options.nodes.length || !options.nodes.includes(options.primary)) {
      throw new Error(`litefs stand-in: nodes must be unique and include the primary (${options.primary})`);
    }
    const mountOf = (name: string) => resolve(options.root, name);
    for (const name of options.nodes) mkdirSync(mountOf(name), { recursive: true });
    const origin = join(mountOf(options.primary), database);
    if (!existsSync(origin)) {
      const db = new Database(origin);
      db.pragma(`journal_mode = ${options.journalMode ?? 'wal'}`);
      db.close();
    }
    const states = new Map<string, NodeState>();
    const standIn = new LiteFsStandIn(states, options.primary, database, options.replicationDelayMs ?? 50);
    for (const name of options.nodes) {
      const mountDir = mountOf(name);
      const databasePath = join(mountDir, database);
      if (!existsSync(databasePath)) copyFileSync(origin, databasePath);
      const files = new NodeFiles(mountDir, database);
      if (!existsSync(files.posPath)) files.setPosition(INITIAL);
      files.startTxLog();
      const events = await NodeEventStream.listen(() => standIn.primaryInfo(name));
      const env = { LITEFS_STAND_IN_MOUNT: mountDir, NODE_OPTIONS: `--require "${AGENT_PATH}"` };
      const { posPath, primaryPath } = files;
      const node = { name, mountDir, databasePath, posPath, primaryPath, eventsUrl: events.url, env };
      states.set(name, { node, files, events, connected: true });
    }
    for (const state of states.values()) {
      state.files.setRole(state.node.name === options.primary ? 'primary' : 'replica');
      state.files.setPrimaryFile(state.node.name === options.primary ? undefined : options.primary);
    }
    standIn.replication.start();
    return standIn;
  }

  /** The current primary's hostname. */
  get primary(): string {
    return this.primaryName;
  }

  /**
   * One node's paths, events URL and process environment.
   *
   * @throws {Error} for an unknown node.
   */
  node(name: string): StandInNode {
    return this.state(name).node;
  }

  /** The node's `-pos` now. */
  position(name: string): Position {
    return this.state(name).files.position();
  }

  /** Changes the replication delay; a round already waiting is re-timed with it. */
  setDelay(ms: number): void {
    this.replication.setDelay(ms);
  }

  /**
   * Makes `name` the primary. The old primary refuses writes at once (a transaction it has open
   * fails at COMMIT). With `catchUp` (LiteFS's clean handover) the new primary first receives every
   * transaction the old one committed, so TXIDs go on increasing; without it (an unclean failover)
   * it keeps what it had and the transactions it lacked are lost on every node, the old primary
   * included, whose database and `-pos` are overwritten by the next replication round. Then the
   * role and `.primary` files change and every connected node's stream gets a `primaryChange`.
   *
   * @throws {Error} for an unknown node, or if the old primary's write lock stays taken for 10 s.
   */
  promote(name: string, { catchUp = true }: { catchUp?: boolean } = {}): Promise<void> {
    return this.exclusive(async () => {
      const next = this.state(name);
      const old = this.state(this.primaryName);
      if (next === old) return;
      old.files.setRole('replica');
      if (catchUp) await this.replication.copy(old, next);
      else this.replication.forgetAfter(next.files.position().txID);
      this.primaryName = name;
      next.connected = true;
      next.files.startTxLog();
      next.files.setPrimaryFile(undefined);
      next.files.setRole('primary');
      for (const state of this.states.values()) {
        if (state !== next && state.connected) state.files.setPrimaryFile(name);
      }
      for (const state of this.states.values()) {
        if (state.connected) state.events.send({ type: 'primaryChange', data: this.primaryInfo(state.node.name) });
      }
      this.replication.schedule();
    });
  }

  /**
   * Cuts a replica off from the primary: no `.primary`, a `primaryChange` with hostname "", and no
   * replication until {@link reconnect}.
   *
   * @throws {Error} for an unknown node or the primary.
   */
  disconnect(name: string): Promise<void> {
    return this.exclusive(async () => {
      const state = this.state(name);
      if (name === this.primaryName) throw new Error(`litefs stand-in: ${name} is the primary; promote another node`);
      if (!state.connected) return;
      state.connected = false;
      state.files.setPrimaryFile(undefined);
      state.events.send({ type: 'primaryChange', data: this.primaryInfo(name) });
    });
  }

  /**
   * Connects a cut-off replica again: `.primary` back, a `primaryChange` naming the primary, and
   * replication resumes.
   *
   * @throws {Error} for an unknown node.
   */
  reconnect(name: string): Promise<void> {
    return this.exclusive(async () => {
      const state = this.state(name);
      if (state.connected) return;
      state.connected = true;
      state.files.setPrimaryFile(this.primaryName);
      state.events.send({ type: 'primaryChange', data: this.primaryInfo(name) });
      this.replication.schedule();
    });
  }

  /**
   * Resolves when every connected replica's `-pos` equals the primary's.
   *
   * @throws {Error} after `timeoutMs`, or with the error a background replication round failed with.
   */
  async waitForReplication({ timeoutMs = 10_000 }: { timeoutMs?: number } = {}): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.replication.throwIfFailed();
      const target = formatPosition(this.position(this.primaryName));
      const behind = [...this.states.values()].filter(
        (state) => state.connected && formatPosition(state.files.position()) !== target,
      );
      if (behind.length === 0) return;
      if (Date.now() > deadline) {
        const at = behind.map((state) => `${state.node.name} at ${formatPosition(state.files.position()).trim()}`);
        throw new Error(`litefs stand-in: replicas not at ${target.trim()} after ${timeoutMs} ms: ${at.join(', ')}`);
      }
      this.replication.schedule();
      await sleep(5);
    }
  }

  /** Stops replicating, ends the event streams and closes the servers. The files stay. */
  async stop(): Promise<void> {
    this.replication.stop();
    await this.operations;
    await Promise.all([...this.states.values()].map((state) => state.events.close()));
    this.replication.close();
  }

  private primaryInfo(name: string): PrimaryInfo {
    if (name === this.primaryName) return { isPrimary: true, hostname: name };
    return { isPrimary: false, hostname: this.state(name).connected ? this.primaryName : '' };
  }

  private state(name: string): NodeState {
    const state = this.states.get(name);
    if (!state) throw new Error(`litefs stand-in: no node ${name} (nodes: ${[...this.states.keys()].join(', ')})`);
    return state;
  }

  private exclusive<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.operations.then(operation);
    this.operations = result.catch(() => undefined);
    return result;
  }
}
