import { hostname } from 'node:os';
import { InvalidOptionsError } from '../errors';
import { StaticElection } from './static-election';

describe('StaticElection', () => {
  it('is the primary on the host named primary, and claims it', async () => {
    const election = new StaticElection({ primary: 'db-1', hostname: 'db-1' });
    const changes: unknown[] = [];
    await election.start(() => changes.push(election.view()), 1_000);
    expect(election.view()).toEqual({ kind: 'primary' });
    expect(election.claim()).toBe(true);
    expect(election.strategy).toBe('static');
    expect(election.writesNeedPrimary).toBe(true);
    election.release();
    election.stop();
    expect(changes).toEqual([]);
  });

  it('is a replica of the primary on every other host, and never claims', async () => {
    const election = new StaticElection({ primary: 'db-1', hostname: 'db-2' });
    await election.start(() => undefined, 1_000);
    expect(election.view()).toEqual({ kind: 'replica', primary: 'db-1' });
    expect(election.claim()).toBe(false);
  });

  it("defaults hostname to the OS's", () => {
    expect(new StaticElection({ primary: hostname() }).view()).toEqual({ kind: 'primary' });
    expect(new StaticElection({ primary: `${hostname()}-other` }).hostname).toBe(hostname());
  });

  it('refuses an empty primary or hostname', () => {
    expect(() => new StaticElection({ primary: '' })).toThrow(InvalidOptionsError);
    expect(() => new StaticElection({ primary: 'db-1', hostname: '' })).toThrow(/cluster.primary.hostname must be/);
  });
});
