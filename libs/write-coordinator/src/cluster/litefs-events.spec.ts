import { createServer, Socket } from 'node:net';
import {
  NdjsonEventsServer,
  recordingLog,
  startNdjsonEventsServer,
  waitUntil,
} from '../../../../test/fixtures/ndjson-events-server';
import { InvalidOptionsError } from '../errors';
import { LiteFsEvent, LiteFsEvents, LiteFsEventsOptions, parseLiteFsTxid } from './litefs-events';

const init = (isPrimary: boolean, hostname: string) => ({ type: 'init', data: { isPrimary, hostname } });
const tx = (db: string, txID: string) => ({
  type: 'tx',
  db,
  data: { txID, postApplyChecksum: 'ce552e44f23fbbdd', pageSize: 4096, commit: 2, timestamp: '2026-01-01T00:00:00Z' },
});

/** A port nobody listens on (taken, then freed). */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as { port: number }).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

describe('LiteFsEvents', () => {
  let server: NdjsonEventsServer;
  let events: LiteFsEvents | undefined;
  let log: ReturnType<typeof recordingLog>;
  let received: LiteFsEvent[];
  let connections: boolean[];

  beforeEach(async () => {
    server = await startNdjsonEventsServer();
    log = recordingLog();
    received = [];
    connections = [];
  });
  afterEach(async () => {
    events?.stop();
    events = undefined;
    await server.close();
  });

  function subscribe(url = server.url, options: Partial<LiteFsEventsOptions> = {}) {
    events = new LiteFsEvents({ url, log, ...options });
    return events.subscribe({
      event: (event) => received.push(event),
      connection: (connected) => connections.push(connected),
    });
  }

  it('delivers init, tx and primaryChange events in order, typed, and ignores unknown types', async () => {
    subscribe();
    await waitUntil(() => server.open === 1, 5_000, 'the stream');
    await waitUntil(() => events!.connected, 5_000, 'connected');
    server.send(init(true, 'node-a'));
    server.send({ type: 'somethingNew', data: { x: 1 } });
    server.send(tx('app.db', '0000000000000027'));
    server.send({ type: 'primaryChange', data: { isPrimary: false, hostname: 'node-b' } });
    server.send({ type: 'primaryChange', data: { isPrimary: false } });
    await waitUntil(() => received.length === 4, 5_000, 'four events');
    expect(received).toEqual([
      { type: 'init', isPrimary: true, hostname: 'node-a' },
      { type: 'tx', db: 'app.db', txid: 0x27 },
      { type: 'primaryChange', isPrimary: false, hostname: 'node-b' },
      { type: 'primaryChange', isPrimary: false, hostname: '' },
    ]);
    expect(connections).toEqual([true]);
    expect(log.lines.filter((line) => line.startsWith('warn'))).toEqual([]);
  });

  it('reassembles lines split across chunks, even inside a multi-byte character', async () => {
    subscribe();
    await waitUntil(() => server.open === 1, 5_000, 'the stream');
    const line = Buffer.from(
      JSON.stringify(init(false, 'nœud-b')) + '\n' + JSON.stringify(tx('app.db', '00000000000000ff')),
    );
    const cut = line.indexOf(Buffer.from('œ')) + 1;
    server.send(line.subarray(0, 5));
    await new Promise((resolve) => setTimeout(resolve, 20));
    server.send(line.subarray(5, cut));
    await new Promise((resolve) => setTimeout(resolve, 20));
    server.send(line.subarray(cut));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(received).toEqual([{ type: 'init', isPrimary: false, hostname: 'nœud-b' }]);
    server.send('\n');
    await waitUntil(() => received.length === 2, 5_000, 'the second event');
    expect(received[1]).toEqual({ type: 'tx', db: 'app.db', txid: 255 });
  });

  it('skips malformed JSON and malformed events, warning once per connection, and keeps reading', async () => {
    subscribe();
    await waitUntil(() => server.open === 1, 5_000, 'the stream');
    server.send('this is not json\n');
    server.send('{"type":"init","data":{"hostname":"x"}}\n');
    server.send(tx('app.db', 'zz'));
    server.send(tx('app.db', 'ffffffffffffffff'));
    server.send('[1,2]\n\n');
    server.send(init(true, 'node-a'));
    await waitUntil(() => received.length === 1, 5_000, 'the good event');
    expect(received).toEqual([{ type: 'init', isPrimary: true, hostname: 'node-a' }]);
    expect(log.lines.filter((line) => line.startsWith('warn'))).toHaveLength(1);

    server.endAll();
    await waitUntil(() => connections.length === 3, 5_000, 'a reconnection');
    server.send('garbage again\n');
    server.send(init(true, 'node-a'));
    await waitUntil(() => received.length === 2, 5_000, 'the event after reconnecting');
    const warnings = log.lines.filter((line) => line.startsWith('warn'));
    expect(warnings.filter((line) => line.includes('not JSON'))).toHaveLength(2);
  });

  it('skips a line over 64 KiB sent in pieces, and reads the next one', async () => {
    subscribe();
    await waitUntil(() => server.open === 1, 5_000, 'the stream');
    const piece = 'x'.repeat(16 * 1024);
    server.send('{"type":"init","data":{"isPrimary":true,"hostname":"');
    for (let i = 0; i < 6; i++) server.send(piece);
    server.send('"}}\n');
    server.send(init(false, 'node-c'));
    await waitUntil(() => received.length === 1, 5_000, 'the event after the long line');
    expect(received).toEqual([{ type: 'init', isPrimary: false, hostname: 'node-c' }]);
    expect(log.lines.filter((line) => line.includes('longer than 65536 bytes'))).toHaveLength(1);
  });

  it('reconnects when the stream ends, and follows the new stream', async () => {
    subscribe();
    await waitUntil(() => server.open === 1, 5_000, 'the stream');
    server.send(init(true, 'node-a'));
    await waitUntil(() => received.length === 1, 5_000, 'init');
    server.endAll();
    await waitUntil(() => !events!.connected, 5_000, 'disconnected');
    await server.waitForAccepted(2);
    await waitUntil(() => events!.connected, 5_000, 'reconnected');
    server.send(init(false, 'node-b'));
    await waitUntil(() => received.length === 2, 5_000, 'the second init');
    expect(received[1]).toEqual({ type: 'init', isPrimary: false, hostname: 'node-b' });
    expect(connections).toEqual([true, false, true]);
    expect(log.lines.filter((line) => line.startsWith('warn'))).toEqual([
      expect.stringContaining('the stream ended; reconnecting'),
    ]);
  });

  it('keeps retrying while nothing listens, and connects once the server is back', async () => {
    const port = await freePort();
    subscribe(`http://127.0.0.1:${port}/events`, { minBackoffMs: 10, maxBackoffMs: 40 });
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(events!.connected).toBe(false);
    expect(log.lines.filter((line) => line.startsWith('warn'))).toHaveLength(1);
    const late = await startNdjsonEventsServer(port);
    try {
      await waitUntil(() => events!.connected, 5_000, 'connected to the late server');
      late.send(init(true, 'node-a'));
      await waitUntil(() => received.length === 1, 5_000, 'init');
      expect(log.lines).toContainEqual(expect.stringContaining('connected again'));
    } finally {
      events!.stop();
      await late.close();
    }
  });

  it('treats a non-200 answer as a failure and retries, backing off', async () => {
    server.status = 503;
    subscribe(server.url, { minBackoffMs: 50, maxBackoffMs: 2_000 });
    await server.waitForAccepted(3);
    expect(events!.connected).toBe(false);
    expect(connections).toEqual([]);
    // 50 + 100 + 200 + 400 ms of backoff: far fewer attempts than a 50 ms loop would make in 1 s.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(server.accepted).toBeLessThanOrEqual(8);
    server.status = 200;
    await waitUntil(() => events!.connected, 5_000, 'connected after the 503s');
  });

  it('replays the last role event of the open stream to a late subscriber, and only to it', async () => {
    subscribe();
    await waitUntil(() => events!.connected, 5_000, 'connected');
    server.send(init(true, 'node-a'));
    server.send(tx('app.db', '0000000000000001'));
    server.send({ type: 'primaryChange', data: { isPrimary: false, hostname: 'node-b' } });
    await waitUntil(() => received.length === 3, 5_000, 'three events');
    const late: LiteFsEvent[] = [];
    events!.subscribe({ event: (event) => late.push(event) });
    expect(late).toEqual([{ type: 'primaryChange', isPrimary: false, hostname: 'node-b' }]);
    expect(received).toHaveLength(3);

    server.endAll();
    await waitUntil(() => !events!.connected, 5_000, 'disconnected');
    const afterDrop: LiteFsEvent[] = [];
    events!.subscribe({ event: (event) => afterDrop.push(event) });
    expect(afterDrop).toEqual([]);
  });

  it('keeps calling the other listeners when one throws', async () => {
    events = new LiteFsEvents({ url: server.url, log });
    events.subscribe({
      event: () => {
        throw new Error('boom');
      },
    });
    events.subscribe({ event: (event) => received.push(event) });
    await waitUntil(() => server.open === 1, 5_000, 'the stream');
    server.send(init(true, 'node-a'));
    await waitUntil(() => received.length === 1, 5_000, 'init');
    expect(log.lines).toContainEqual(expect.stringContaining('a listener threw Error: boom'));
  });

  it('closes the stream when the last listener leaves', async () => {
    events = new LiteFsEvents({ url: server.url, log });
    const first = events.subscribe({});
    const second = events.subscribe({});
    await waitUntil(() => server.open === 1, 5_000, 'the stream');
    first();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(server.open).toBe(1);
    second();
    await waitUntil(() => server.open === 0, 5_000, 'the stream closed');
    expect(events.connected).toBe(false);
  });

  it('leaves no socket and no pending retry behind after stop(), whether connected or waiting to retry', async () => {
    subscribe(server.url, { minBackoffMs: 20, maxBackoffMs: 20 });
    await waitUntil(() => events!.connected, 5_000, 'connected');
    events!.stop();
    expect(events!.connected).toBe(false);
    await waitUntil(() => server.open === 0, 5_000, 'the server to see the stream close');

    server.status = 500;
    subscribe(server.url, { minBackoffMs: 100, maxBackoffMs: 100 });
    await waitUntil(() => log.lines.some((line) => line.includes('HTTP 500')), 5_000, 'the failed attempt');
    const attempts = server.accepted;
    events!.stop();
    events!.stop();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(server.accepted).toBe(attempts);
    expect(connections).toEqual([true]);
    // close() resolves only once every socket is closed: nothing of the client's is left open.
    await server.close();
    server = await startNdjsonEventsServer();
  });

  it('gives up on an attempt that gets no answer, retries, and stop() ends a pending attempt', async () => {
    const sockets: Socket[] = [];
    const closed = new Set<Socket>();
    const silent = createServer((socket) => {
      sockets.push(socket);
      socket.on('close', () => closed.add(socket)).resume();
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    try {
      events = new LiteFsEvents({
        url: `http://127.0.0.1:${port}/events`,
        log,
        connectTimeoutMs: 50,
        minBackoffMs: 10,
      });
      events.subscribe({});
      await waitUntil(() => sockets.length >= 2, 5_000, 'a second attempt');
      expect(log.lines).toContainEqual(expect.stringContaining('no answer within 50 ms'));
      events.stop();
      const attempts = sockets.length;
      await waitUntil(
        () => sockets.every((socket) => socket.readableEnded || socket.destroyed),
        5_000,
        'closed sockets',
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(sockets.length).toBe(attempts);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it('refuses a URL that is not http:', () => {
    expect(() => new LiteFsEvents({ url: 'https://localhost:20202/events', log })).toThrow(InvalidOptionsError);
    expect(() => new LiteFsEvents({ url: 'not a url', log })).toThrow(/eventsUrl must be an http: URL/);
  });
});

describe('parseLiteFsTxid', () => {
  it.each([
    ['0000000000000027', 0x27],
    ['00000000002df417', 0x2df417],
    ['001FFFFFFFFFFFFF', Number.MAX_SAFE_INTEGER],
    ['0020000000000000', undefined],
    ['ffffffffffffffff', undefined],
    ['27', undefined],
    ['000000000000002g', undefined],
    ['0000000000000027\n', undefined],
  ])('%j → %p', (hex, expected) => {
    expect(parseLiteFsTxid(hex)).toBe(expected);
  });
});
