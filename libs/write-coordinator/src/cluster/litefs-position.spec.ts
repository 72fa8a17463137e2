import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  NdjsonEventsServer,
  recordingLog,
  startNdjsonEventsServer,
  waitUntil,
} from '../../../../test/fixtures/ndjson-events-server';
import { tempDir } from '../../../../test/fixtures/temp-sqlite';
import { LiteFsEvents } from './litefs-events';
import { LiteFsPosition, LiteFsPositionOptions, parseLiteFsPosition } from './litefs-position';

const hex = (n: number) => n.toString(16).padStart(16, '0');
const tx = (db: string, txid: number) => ({
  type: 'tx',
  db,
  data: { txID: hex(txid), postApplyChecksum: 'ce552e44f23fbbdd', pageSize: 4096, commit: 2, timestamp: '' },
});
const timers = () => process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('parseLiteFsPosition', () => {
  it.each([
    ['00000000002df417/ce552e44f23fbbdd\n', { txid: 0x2df417, checksum: 'ce552e44f23fbbdd' }],
    ['0000000000000001/CE552E44F23FBBDD', { txid: 1, checksum: 'ce552e44f23fbbdd' }],
    ['001fffffffffffff/0000000000000000\n', { txid: Number.MAX_SAFE_INTEGER, checksum: '0000000000000000' }],
    ['0020000000000000/0000000000000000\n', undefined],
    ['2df417/ce552e44f23fbbdd\n', undefined],
    ['00000000002df417/ce552e44\n', undefined],
    ['00000000002df417\n', undefined],
    ['00000000002df417/ce552e44f23fbbdd\n\n', undefined],
    [' 00000000002df417/ce552e44f23fbbdd', undefined],
    ['', undefined],
  ])('%j → %p', (text, expected) => {
    expect(parseLiteFsPosition(text)).toEqual(expected);
  });
});

describe('LiteFsPosition', () => {
  let tmp: ReturnType<typeof tempDir>;
  let log: ReturnType<typeof recordingLog>;
  let position: LiteFsPosition | undefined;
  let server: NdjsonEventsServer | undefined;
  let events: LiteFsEvents | undefined;

  beforeEach(() => {
    tmp = tempDir('wc-litefs-position-');
    log = recordingLog();
  });
  afterEach(async () => {
    position?.stop();
    events?.stop();
    await server?.close();
    position = events = server = undefined;
    tmp.cleanup();
  });

  const writePos = (txid: number) => writeFileSync(join(tmp.dir, 'app.db-pos'), `${hex(txid)}/ce552e44f23fbbdd\n`);
  const make = (options: Partial<LiteFsPositionOptions> = {}) =>
    (position = new LiteFsPosition({ databasePath: join(tmp.dir, 'app.db'), log, ...options }));
  async function withEvents(): Promise<LiteFsEvents> {
    server = await startNdjsonEventsServer();
    events = new LiteFsEvents({ url: server.url, log });
    events.subscribe({});
    await waitUntil(() => events!.connected, 5_000, 'the stream');
    return events;
  }

  describe('current()', () => {
    it('reads <mountDir>/<db>-pos: undefined while absent, then the TXID', async () => {
      const p = make();
      expect(p.path).toBe(join(tmp.dir, 'app.db-pos'));
      expect(p.current()).toBeUndefined();
      writePos(0x27);
      await sleep(5);
      expect(p.current()).toBe(0x27);
      expect(log.lines).toEqual([]);
    });

    it('is undefined for a malformed file, warned once', async () => {
      writeFileSync(join(tmp.dir, 'app.db-pos'), 'garbage');
      const p = make();
      expect(p.current()).toBeUndefined();
      await sleep(5);
      expect(p.current()).toBeUndefined();
      expect(log.lines).toEqual([expect.stringContaining('malformed content "garbage"')]);
    });

    it('reuses a read for cacheMs, and takes the TXID of a tx event of its database at once', async () => {
      writePos(1);
      const e = await withEvents();
      const p = make({ events: e, cacheMs: 60_000 });
      expect(p.current()).toBe(1);
      writePos(2);
      await sleep(20);
      expect(p.current()).toBe(1);
      server!.send(tx('other.db', 9));
      server!.send(tx('app.db', 3));
      await waitUntil(() => p.current() === 3, 5_000, 'the tx event');
    });

    it('tracks lastAdvanceAt: moves when the TXID grows, not when it stays', async () => {
      writePos(1);
      const p = make();
      const createdAt = p.lastAdvanceAt;
      p.current();
      const first = p.lastAdvanceAt;
      expect(first).toBeGreaterThanOrEqual(createdAt);
      await sleep(10);
      p.current();
      expect(p.lastAdvanceAt).toBe(first);
      writePos(2);
      await sleep(10);
      p.current();
      expect(p.lastAdvanceAt).toBeGreaterThan(first);
    });
  });

  describe('waitFor()', () => {
    it('resolves true at once when the TXID is already reached', async () => {
      writePos(5);
      await expect(make().waitFor(5, 1_000)).resolves.toBe(true);
    });

    it('resolves on a tx event alone (the file is not polled in time)', async () => {
      writePos(5);
      const e = await withEvents();
      const p = make({ events: e, pollMs: 60_000 });
      const waiting = p.waitFor(7, 60_000);
      let settled = false;
      void waiting.then(() => (settled = true));
      server!.send(tx('app.db', 6));
      server!.send(tx('other.db', 7));
      await waitUntil(() => p.current() === 6, 5_000, 'the first tx event');
      await sleep(50);
      expect(settled).toBe(false);
      server!.send(tx('app.db', 7));
      await expect(waiting).resolves.toBe(true);
    });

    it('resolves on polling the file alone (no event stream)', async () => {
      writePos(5);
      const p = make();
      const waiting = p.waitFor(7, 60_000);
      let settled = false;
      void waiting.then(() => (settled = true));
      writePos(6);
      await sleep(50);
      expect(settled).toBe(false);
      writePos(8);
      await expect(waiting).resolves.toBe(true);
    });

    it('resolves false after timeoutMs, on abort, and for an already aborted signal', async () => {
      writePos(5);
      const p = make();
      await expect(p.waitFor(6, 50)).resolves.toBe(false);
      const controller = new AbortController();
      const waiting = p.waitFor(6, 60_000, controller.signal);
      controller.abort();
      await expect(waiting).resolves.toBe(false);
      await expect(p.waitFor(6, 60_000, controller.signal)).resolves.toBe(false);
      await expect(p.waitFor(6, 0)).resolves.toBe(false);
    });

    it('serves many waiters with one timer, and each still gets its own outcome', async () => {
      writePos(1);
      const p = make();
      const before = timers();
      const waits = Array.from({ length: 100 }, (_, i) => p.waitFor(2 + (i % 2), i % 2 === 0 ? 60_000 : 100));
      expect(timers()).toBe(before + 1);
      writePos(2);
      const outcomes = await Promise.all(waits);
      expect(outcomes.filter((reached, i) => reached === (i % 2 === 0))).toHaveLength(100);
    });

    it('stop() resolves every waiter with false and leaves no timer', async () => {
      writePos(1);
      const p = make();
      const before = timers();
      const waits = [p.waitFor(2, 60_000), p.waitFor(3, 60_000)];
      expect(timers()).toBe(before + 1);
      p.stop();
      expect(timers()).toBe(before);
      await expect(Promise.all(waits)).resolves.toEqual([false, false]);
      p.stop();
      await expect(p.waitFor(2, 60_000)).resolves.toBe(false);
    });
  });
});
