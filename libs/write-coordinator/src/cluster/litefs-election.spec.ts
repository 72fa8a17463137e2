import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  NdjsonEventsServer,
  recordingLog,
  startNdjsonEventsServer,
  waitUntil,
} from '../../../../test/fixtures/ndjson-events-server';
import { tempDir } from '../../../../test/fixtures/temp-sqlite';
import { LiteFsElection } from './litefs-election';
import { LiteFsEvents } from './litefs-events';
import { PrimaryView } from './primary-election';

const init = (isPrimary: boolean, hostname: string) => ({ type: 'init', data: { isPrimary, hostname } });
const change = (isPrimary: boolean, hostname: string) => ({ type: 'primaryChange', data: { isPrimary, hostname } });

describe('LiteFsElection', () => {
  let tmp: ReturnType<typeof tempDir>;
  let server: NdjsonEventsServer;
  let log: ReturnType<typeof recordingLog>;
  let events: LiteFsEvents | undefined;
  let election: LiteFsElection | undefined;
  let views: PrimaryView[];

  beforeEach(async () => {
    tmp = tempDir('wc-litefs-election-');
    server = await startNdjsonEventsServer();
    log = recordingLog();
    views = [];
  });
  afterEach(async () => {
    election?.stop();
    events?.stop();
    election = events = undefined;
    await server.close();
    tmp.cleanup();
  });

  const setPrimaryFile = (hostname: string) => writeFileSync(join(tmp.dir, '.primary'), `${hostname}\n`);
  const removePrimaryFile = () => rmSync(join(tmp.dir, '.primary'), { force: true });

  /** An election on the test server's stream (or on none), recording every view it reports. */
  function electionOn(url: string | false, pollMs = 20): LiteFsElection {
    events = url === false ? undefined : new LiteFsEvents({ url, log, minBackoffMs: 10, maxBackoffMs: 40 });
    election = new LiteFsElection({ mountDir: tmp.dir, events, pollMs, log });
    return election;
  }
  const start = (e: LiteFsElection, settleMs = 2_000) => e.start(() => views.push(e.view()), settleMs);

  describe('when the event stream is up', () => {
    it('is the primary when init says so, and start() resolves then', async () => {
      const e = electionOn(server.url);
      const started = start(e, 60_000);
      await server.waitForAccepted(1);
      await waitUntil(() => server.open === 1, 5_000, 'the stream');
      server.send(init(true, 'node-a'));
      await started;
      expect(e.view()).toEqual({ kind: 'primary' });
      expect(e.claim()).toBe(true);
      // The first read of .primary (absent, stream not yet heard) is reported too: unknown, never primary.
      expect(views).toEqual([
        { kind: 'unknown', reason: expect.stringContaining('primary or cut off?') },
        { kind: 'primary' },
      ]);
    });

    it('follows primaryChange: replica of the named host, primary, unknown when no primary is known', async () => {
      const e = electionOn(server.url);
      const started = start(e);
      await waitUntil(() => server.open === 1, 5_000, 'the stream');
      server.send(init(false, 'node-a'));
      await started;
      expect(e.view()).toEqual({ kind: 'replica', primary: 'node-a' });
      expect(e.claim()).toBe(false);
      views.length = 0;
      server.send(change(true, 'node-b'));
      await waitUntil(() => views.length === 1, 5_000, 'promotion');
      server.send(change(false, ''));
      await waitUntil(() => views.length === 2, 5_000, 'cut off');
      server.send(change(false, 'node-c'));
      await waitUntil(() => views.length === 3, 5_000, 'a new primary');
      expect(views).toEqual([
        { kind: 'primary' },
        { kind: 'unknown', reason: expect.stringContaining('LiteFS knows no primary') },
        { kind: 'replica', primary: 'node-c' },
      ]);
      expect(e.claim()).toBe(false);
    });

    it('trusts the stream over .primary while the stream is up', async () => {
      setPrimaryFile('stale-host');
      const e = electionOn(server.url);
      const started = start(e);
      await waitUntil(() => server.open === 1, 5_000, 'the stream');
      server.send(init(true, 'node-a'));
      await started;
      await waitUntil(() => e.view().kind === 'primary', 5_000, 'primary');
    });

    it('follows a stream that ends and comes back', async () => {
      const e = electionOn(server.url);
      const started = start(e);
      await waitUntil(() => server.open === 1, 5_000, 'the stream');
      server.send(init(true, 'node-a'));
      await started;
      server.endAll();
      await server.waitForAccepted(2);
      await waitUntil(() => server.open === 1, 5_000, 'the stream again');
      server.send(init(false, 'node-b'));
      await waitUntil(() => e.view().kind === 'replica', 5_000, 'replica');
      expect(e.view()).toEqual({ kind: 'replica', primary: 'node-b' });
      server.send(change(true, 'node-b'));
      await waitUntil(() => e.claim(), 5_000, 'primary again');
    });
  });

  describe('when the event stream is down', () => {
    it('never says primary from a missing .primary alone, and start() settles with unknown', async () => {
      server.status = 503;
      const e = electionOn(server.url);
      await start(e, 150);
      expect(e.view()).toEqual({
        kind: 'unknown',
        reason: "no .primary and LiteFS's event stream is unreachable: primary or cut off?",
      });
      await server.waitForAccepted(3);
      expect(e.claim()).toBe(false);
      expect(views.every((view) => view.kind !== 'primary')).toBe(true);
    });

    it('with no stream configured, reads .primary: replica when present, unknown when absent', async () => {
      const e = electionOn(false);
      await start(e, 100);
      expect(e.view()).toEqual({
        kind: 'unknown',
        reason: 'no .primary and no event stream configured (eventsUrl: false): primary or cut off?',
      });
      setPrimaryFile('node-a');
      await waitUntil(() => e.view().kind === 'replica', 5_000, 'replica');
      expect(e.view()).toEqual({ kind: 'replica', primary: 'node-a' });
      removePrimaryFile();
      await waitUntil(() => e.view().kind === 'unknown', 5_000, 'unknown');
      expect(views.map((view) => view.kind)).toEqual(['unknown', 'replica', 'unknown']);
    });

    it('starts as a replica from .primary before the stream answers', async () => {
      server.status = 503;
      setPrimaryFile('node-a');
      const e = electionOn(server.url);
      await start(e, 60_000);
      expect(e.view()).toEqual({ kind: 'replica', primary: 'node-a' });
    });

    it('stays primary after the stream drops only because the last event said primary', async () => {
      const e = electionOn(server.url);
      const started = start(e);
      await waitUntil(() => server.open === 1, 5_000, 'the stream');
      server.send(init(true, 'node-a'));
      await started;
      server.status = 503;
      server.endAll();
      await server.waitForAccepted(3);
      expect(e.view()).toEqual({ kind: 'primary' });
      // Demoted while the stream is down: LiteFS connects to the new primary and writes .primary.
      setPrimaryFile('node-b');
      await waitUntil(() => e.view().kind === 'replica', 5_000, 'replica');
      expect(e.view()).toEqual({ kind: 'replica', primary: 'node-b' });
      // The stream comes back and says replica; then it drops again and node-b is lost: unknown.
      server.status = 200;
      await waitUntil(() => server.open === 1, 5_000, 'the stream again');
      server.send(init(false, 'node-b'));
      await waitUntil(() => e.view().kind === 'replica', 5_000, 'replica from the stream');
      server.status = 503;
      server.endAll();
      removePrimaryFile();
      await waitUntil(() => e.view().kind === 'unknown', 5_000, 'unknown');
      expect(e.view()).toEqual({ kind: 'unknown', reason: expect.stringContaining('primary or cut off?') });
      expect(e.claim()).toBe(false);
    });

    it('does not take the primary role from a replica whose stream dropped and whose .primary vanished', async () => {
      const e = electionOn(server.url);
      const started = start(e);
      await waitUntil(() => server.open === 1, 5_000, 'the stream');
      server.send(init(false, 'node-a'));
      await started;
      server.status = 503;
      server.endAll();
      await server.waitForAccepted(4);
      await waitUntil(() => e.view().kind === 'unknown', 5_000, 'unknown');
      expect(views.map((view) => view.kind)).toEqual(['unknown', 'replica', 'unknown']);
    });
  });

  it('after the stream comes back, does not reuse what the old stream said before the new init', async () => {
    const e = electionOn(server.url);
    const started = start(e);
    await waitUntil(() => server.open === 1, 5_000, 'the stream');
    server.send(init(false, 'node-a'));
    await started;
    server.endAll();
    await server.waitForAccepted(2);
    await waitUntil(() => events!.connected, 5_000, 'connected again');
    expect(e.view()).toEqual({ kind: 'unknown', reason: expect.stringContaining('primary or cut off?') });
    server.send(init(false, 'node-b'));
    await waitUntil(() => e.view().kind === 'replica', 5_000, 'replica');
    expect(e.view()).toEqual({ kind: 'replica', primary: 'node-b' });
  });

  it('stop() resolves a pending start, stops polling and reporting, and is idempotent', async () => {
    const e = electionOn(false, 10);
    const started = start(e, 60_000);
    e.stop();
    await started;
    e.stop();
    setPrimaryFile('node-a');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(views).toEqual([]);
    expect(e.view().kind).toBe('unknown');
  });
});
