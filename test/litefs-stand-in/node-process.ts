import { ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import type { StandInNode } from './stand-in';

const WORKER = join(__dirname, 'worker.cjs');

/** An error `worker.cjs` answered with (a SqliteError's code and message). */
export class WorkerError extends Error {
  constructor(
    readonly code: string | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'WorkerError';
  }
}

interface Reply {
  id?: number;
  ready?: boolean;
  value?: unknown;
  error?: { code?: string; message: string };
}

/**
 * A real child process of one node running `worker.cjs` with the node's environment (so the agent is
 * preloaded): the tests' stand-in for an application on that node.
 */
export class NodeProcess {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();

  private constructor(private readonly child: ChildProcess) {
    child.on('message', (reply: Reply) => {
      const waiter = reply.id === undefined ? undefined : this.pending.get(reply.id);
      if (!waiter || reply.id === undefined) return;
      this.pending.delete(reply.id);
      if (reply.error) waiter.reject(new WorkerError(reply.error.code, reply.error.message));
      else waiter.resolve(reply.value);
    });
    child.on('exit', (code, signal) => {
      const error = new Error(`worker exited (${String(code ?? signal)})`);
      for (const waiter of this.pending.values()) waiter.reject(error);
      this.pending.clear();
    });
  }

  /** Starts the worker on `node` and waits until its database is open. */
  static async start(node: StandInNode, journalMode: 'wal' | 'delete' = 'wal'): Promise<NodeProcess> {
    const config = { database: node.databasePath, journalMode, posPath: node.posPath };
    const child = fork(WORKER, [], {
      env: { ...process.env, ...node.env, STAND_IN_WORKER: JSON.stringify(config) },
      execArgv: [],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const [first] = (await Promise.race([
      once(child, 'message'),
      once(child, 'exit').then(([code]) => {
        throw new Error(`worker on ${node.name} exited (${String(code)}) before it was ready`);
      }),
    ])) as [Reply];
    if (!first.ready) throw new Error(`worker on ${node.name}: unexpected first message`);
    return new NodeProcess(child);
  }

  /**
   * Runs one command of `worker.cjs` (`run`, `all`, `exec`, `transaction`, `transfers`, `sumLoop`).
   *
   * @throws {WorkerError} with the SQLite error code when the command failed there.
   */
  call<T = unknown>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      this.child.send({ id, op, args });
    });
  }

  /** Closes the database and waits for the process to exit (killed after 5 s). */
  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, 'exit');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    this.child.disconnect();
    await exited;
    clearTimeout(timer);
  }
}
