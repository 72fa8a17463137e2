import cluster, { Worker } from 'node:cluster';
import { once } from 'node:events';
import { Logger } from '@nestjs/common';

const logger = new Logger('ClusterMaster');

/**
 * The master process of `WORKERS` > 1 (node:cluster): forks `workers` copies of the demo, which
 * share the HTTP port (the master hands each new connection to one of them) and the database file.
 * The first worker is forked alone and the others once it listens, so that exactly one process
 * creates the schema (TypeORM `synchronize`) on a new file. A worker that dies without being asked
 * to is logged and replaced. SIGTERM or SIGINT is passed on to every worker (each drains as the
 * single-process demo does); the master exits when they all have. The master never opens the
 * database: it runs no Nest application.
 */
export async function runClusterMaster(workers: number): Promise<void> {
  let stopping = false;
  const fork = (): Worker => {
    const worker = cluster.fork();
    let listened = false;
    worker.once('listening', () => (listened = true));
    worker.once('exit', (code, signal) => {
      if (stopping) return;
      const how = signal ?? `exit code ${code}`;
      if (!listened) {
        // Not replaced: a worker that cannot start would be forked again and again.
        logger.error(`worker ${worker.process.pid} failed to start (${how}); not replaced`);
        if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(1);
        return;
      }
      logger.warn(`worker ${worker.process.pid} died (${how}); forking a replacement`);
      fork();
    });
    return worker;
  };

  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    const alive = Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined && !w.isDead());
    logger.log(`${signal}: stopping ${alive.length} worker(s)`);
    // A terminal's Ctrl-C reaches every worker already (same process group); a `kill` reaches the master only.
    for (const worker of alive) worker.process.kill(signal);
    void Promise.all(alive.map((w) => (w.isDead() ? undefined : once(w, 'exit')))).then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  const first = fork();
  await Promise.race([once(first, 'listening'), once(first, 'exit')]);
  for (let i = 1; i < workers && !stopping; i++) fork();
  logger.log(`${workers} workers forked (master pid ${process.pid})`);
}
