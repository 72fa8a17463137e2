import { dirname } from 'node:path';
import type { ClusterLog } from './cluster-log';
import type { ClusterParts } from './cluster-node';
import { HTTP_FORWARDING_DEFAULTS, LITEFS_DEFAULTS, ResolvedClusterOptions } from './cluster.options';
import { HttpTransport } from './http-transport';
import { LiteFsElection } from './litefs-election';
import { LiteFsEvents } from './litefs-events';
import { LiteFsPosition } from './litefs-position';
import { LockElection } from './lock-election';
import type { PrimaryElection } from './primary-election';
import { PrimaryLock, primaryLockPath } from './primary-lock';
import { defaultSocketPath, UnixSocketTransport } from './unix-socket-transport';

/**
 * @internal The parts of a cluster node for its `primary` strategy: `lock` → the primary lock and
 * a Unix socket; `litefs` → LiteFS's event stream and `.primary`, HTTP between hosts, the `-pos`
 * position (read your writes, lag); `static` → a fixed primary, HTTP between hosts.
 *
 * @throws {PrimaryLockError} when the lock file cannot be opened (`lock`).
 * @throws {InvalidOptionsError} for an unusable events URL (`litefs`).
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
  let election: PrimaryElection;
  let position: LiteFsPosition | undefined;
  if (strategy.strategy === 'litefs') {
    const mountDir = strategy.mountDir ?? dirname(databasePath);
    const eventsUrl = strategy.eventsUrl ?? LITEFS_DEFAULTS.eventsUrl;
    const events = eventsUrl === false ? undefined : new LiteFsEvents({ url: eventsUrl, log });
    const pollMs = strategy.pollMs ?? LITEFS_DEFAULTS.pollMs;
    election = new LiteFsElection({ mountDir, events, pollMs, log });
    position = new LiteFsPosition({ databasePath, mountDir, events, log });
  } else {
    throw new Error(`the '${strategy.strategy}' strategy is not available`);
  }
  const given = options.http ?? {};
  const http = {
    port: given.port ?? HTTP_FORWARDING_DEFAULTS.port,
    host: given.host ?? HTTP_FORWARDING_DEFAULTS.host,
    path: given.path ?? HTTP_FORWARDING_DEFAULTS.path,
    tls: given.tls,
    url: given.url,
  };
  const scheme = http.tls ? 'https' : 'http';
  const url = http.url ?? ((hostname: string) => `${scheme}://${hostname}:${http.port}${http.path}`);
  const transport = new HttpTransport({
    port: http.port,
    host: http.host,
    path: http.path,
    ...(http.tls ? { tls: http.tls } : {}),
    secret: options.secret!,
    maxFrameBytes,
    target: () => {
      const view = election.view();
      return view.kind === 'replica' && view.primary !== undefined ? url(view.primary) : undefined;
    },
  });
  return { election, transport, ...(position ? { position } : {}) };
}
