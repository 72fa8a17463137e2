import { basename, dirname } from 'node:path';
import type { ClusterLog } from './cluster-log';
import type { ClusterParts } from './cluster-node';
import { HTTP_FORWARDING_DEFAULTS, LITEFS_DEFAULTS, ResolvedClusterOptions } from './cluster.options';
import { LockElection } from './lock-election';
import { PrimaryLock, primaryLockPath } from './primary-lock';
import { defaultSocketPath, UnixSocketTransport } from './unix-socket-transport';

/**
 * @internal The parts of a cluster node for its `primary` strategy: `lock` → the primary lock and
 * a Unix socket; `litefs` → LiteFS's events and `.primary`, HTTP between hosts, the `-pos`
 * position; `static` → a fixed primary, HTTP between hosts.
 *
 * @throws {PrimaryLockError} when the lock file cannot be opened (`lock`).
 */
export function clusterParts(
  options: ResolvedClusterOptions,
  databasePath: string,
  maxFrameBytes: number,
  log: ClusterLog,
): ClusterParts {
  const strategy = options.primary;
  if (strategy.strategy === 'lock') {
    return {
      election: new LockElection(PrimaryLock.open(options.lockPath ?? primaryLockPath(databasePath))),
      transport: new UnixSocketTransport({
        path: options.socketPath ?? defaultSocketPath(databasePath),
        maxFrameBytes,
      }),
    };
  }
  void basename;
  void dirname;
  void HTTP_FORWARDING_DEFAULTS;
  void LITEFS_DEFAULTS;
  void log;
  throw new Error('TODO');
}
