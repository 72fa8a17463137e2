/**
 * Primary resolution by configuration: one named host is the primary, for good. No lease and no
 * failover: moving the primary means changing `cluster.primary.primary` on every host and
 * restarting them. Useful for a fixed pair of hosts, or any replication that is not LiteFS.
 */
import { hostname as osHostname } from 'node:os';
import { InvalidOptionsError } from '../errors';
import { PrimaryElection, PrimaryView } from './primary-election';

/** Construction options of {@link StaticElection} (the `static` strategy's options). */
export interface StaticElectionOptions {
  /** The primary's hostname. */
  readonly primary: string;
  /** This host's name. @default os.hostname() */
  readonly hostname?: string;
}

/**
 * The `static` strategy of {@link PrimaryElection}: primary when this host's name equals
 * `primary`, otherwise a replica of `primary`. The view never changes.
 *
 * @example
 * const election = new StaticElection({ primary: 'db-1' });
 * election.view(); // { kind: 'primary' } on db-1, { kind: 'replica', primary: 'db-1' } elsewhere
 */
export class StaticElection implements PrimaryElection {
  /** @inheritdoc */
  readonly strategy = 'static' as const;
  /** @inheritdoc */
  readonly writesNeedPrimary = true;
  /** This host's name as compared with `primary`. */
  readonly hostname: string;
  private readonly current: PrimaryView;

  /** @throws {InvalidOptionsError} when `primary` or `hostname` is not a non-empty string. */
  constructor(options: StaticElectionOptions) {
    const hostname = options.hostname ?? osHostname();
    if (typeof options.primary !== 'string' || options.primary === '') {
      throw new InvalidOptionsError('cluster.primary.primary', 'a non-empty hostname', options.primary);
    }
    if (typeof hostname !== 'string' || hostname === '') {
      throw new InvalidOptionsError('cluster.primary.hostname', 'a non-empty hostname', hostname);
    }
    this.hostname = hostname;
    this.current =
      hostname === options.primary
        ? Object.freeze({ kind: 'primary' })
        : Object.freeze({ kind: 'replica', primary: options.primary });
  }

  /** Resolves at once: the view is known from the configuration and never changes (`onChange` is never called). */
  start(_onChange: () => void, _settleMs: number): Promise<void> {
    return Promise.resolve();
  }

  /** @inheritdoc */
  view(): PrimaryView {
    return this.current;
  }

  /** True exactly on the configured primary. */
  claim(): boolean {
    return this.current.kind === 'primary';
  }

  /** Nothing to give up. */
  release(): void {}

  /** Nothing to stop. */
  stop(): void {}
}
