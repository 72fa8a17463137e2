import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { FRAME_HEADER_BYTES, FrameDecoder, encodeFrame } from './frame-codec';
import { FrameError } from './frame-error';
import { HTTP_UPGRADE_PROTOCOL, HttpTransport, type HttpTransportOptions } from './http-transport';
import type { Frame, FrameChannel, FrameServer } from './transport';
import { closed, frames } from './__fixtures__/channel-frames';

/** Real HTTP(S) servers and clients on loopback; the TLS pair is a committed self-signed fixture. */
const MAX = 2048;
const SECRET = 's3cret token';
const PATH = '/_write-coordinator';
const fixture = (name: string): Buffer => fs.readFileSync(path.join(__dirname, '__fixtures__', name));
const TLS = { key: fixture('localhost.key.pem'), cert: fixture('localhost.cert.pem') };

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A transport on 127.0.0.1, any free port, knowing no primary unless `target` is given. */
function transport(options: Partial<HttpTransportOptions> = {}): HttpTransport {
  return new HttpTransport({
    port: 0,
    host: '127.0.0.1',
    path: PATH,
    secret: SECRET,
    maxFrameBytes: MAX,
    target: () => undefined,
    ...options,
  });
}

/** A channel the server accepted, with every frame it received from the start. */
interface Accepted {
  channel: FrameChannel;
  received: Frame[];
  closed: Promise<Error | undefined>;
}

/** Listens and records what the server accepts, attaching listeners inside `onChannel`. */
async function listen(options: Partial<HttpTransportOptions> = {}): Promise<{
  server: FrameServer;
  port: number;
  url: string;
  accepted: Accepted[];
  next: () => Promise<Accepted>;
}> {
  const accepted: Accepted[] = [];
  const waiting: ((accepted: Accepted) => void)[] = [];
  const t = transport(options);
  const server = await t.listen((channel) => {
    const received: Frame[] = [];
    channel.onFrame((frame) => received.push(frame));
    const entry = { channel, received, closed: closed(channel) };
    accepted.push(entry);
    waiting.shift()?.(entry);
  });
  cleanups.push(() => server.close());
  const port = Number(new URL(server.address).port);
  let taken = 0;
  const next = (): Promise<Accepted> =>
    taken < accepted.length
      ? Promise.resolve(accepted[taken++]!)
      : new Promise((resolve) => waiting.push((entry) => (taken++, resolve(entry))));
  return { server, port, url: server.address, accepted, next };
}

/** A client transport aimed at `url`. */
function clientFor(url: string, options: Partial<HttpTransportOptions> = {}): HttpTransport {
  return transport({ target: () => url, ...options });
}

/** Resolves once `predicate` holds (polled), or fails after `ms`: a liveness bound, not a speed check. */
async function until(predicate: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A plain HTTP request (no upgrade): status, headers and JSON body. */
function plainRequest(
  port: number,
  options: http.RequestOptions & { body?: string },
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: unknown }> {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port, agent: false, ...options }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () =>
        resolve({
          status: response.statusCode ?? 0,
          headers: response.headers,
          body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown,
        }),
      );
    });
    request.on('error', reject);
    request.end(options.body);
  });
}

/**
 * A raw TCP client: sends `bytes`, reads the HTTP head of the answer, then (after a 101) frames, or
 * (after a refusal) the body, until the socket closes.
 */
function rawClient(
  port: number,
  bytes: Buffer,
): {
  socket: net.Socket;
  head: Promise<{ status: number; text: string }>;
  frames: Promise<Frame[]>;
  body: Promise<string>;
} {
  const socket = net.createConnection({ host: '127.0.0.1', port, allowHalfOpen: true });
  const decoder = new FrameDecoder(1 << 20);
  const received: Frame[] = [];
  const body: Buffer[] = [];
  let buffered: Buffer | undefined = Buffer.alloc(0);
  let upgraded = false;
  let resolveHead!: (head: { status: number; text: string }) => void;
  const head = new Promise<{ status: number; text: string }>((resolve) => (resolveHead = resolve));
  const onPayload = (chunk: Buffer): void => {
    if (upgraded) received.push(...decoder.push(chunk));
    else body.push(chunk);
  };
  socket.on('data', (chunk: Buffer) => {
    if (buffered === undefined) return onPayload(chunk);
    buffered = Buffer.concat([buffered, chunk]);
    const end = buffered.indexOf('\r\n\r\n');
    if (end < 0) return;
    const text = buffered.subarray(0, end).toString('latin1');
    const status = Number(text.split(' ')[1]);
    upgraded = status === 101;
    resolveHead({ status, text });
    onPayload(buffered.subarray(end + 4));
    buffered = undefined;
  });
  socket.on('error', () => undefined);
  // Like an HTTP client: once the server ended, end too (the socket then closes).
  socket.on('end', () => socket.end());
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.write(bytes);
  return {
    socket,
    head,
    frames: closed.then(() => received),
    body: closed.then(() => Buffer.concat(body).toString('utf8')),
  };
}

function upgradeRequest(extraHeaders: string[] = [], requestPath = PATH): string {
  return [
    `GET ${requestPath} HTTP/1.1`,
    'Host: 127.0.0.1',
    'Connection: Upgrade',
    `Upgrade: ${HTTP_UPGRADE_PROTOCOL}`,
    ...extraHeaders,
    '',
    '',
  ].join('\r\n');
}

function rawFrame(body: string, length?: number): Buffer {
  const bytes = Buffer.from(body, 'utf8');
  const header = Buffer.alloc(FRAME_HEADER_BYTES);
  header.writeUInt32BE(length ?? bytes.length, 0);
  return Buffer.concat([header, bytes]);
}

/** A raw TCP server standing in for a primary; `onSocket` decides what it answers. */
async function rawServer(onSocket: (socket: net.Socket) => void): Promise<{ port: number; sockets: net.Socket[] }> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
    onSocket(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return { port: (server.address() as net.AddressInfo).port, sockets };
}

/** A free port: bound, then released. */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('HttpTransport', () => {
  describe('when the secret matches', () => {
    it('carries frames both ways over the upgraded connection and names its peers', async () => {
      const server = await listen();
      expect(server.url).toBe(`http://127.0.0.1:${server.port}${PATH}`);
      expect(server.port).toBeGreaterThan(0);
      const client = await clientFor(server.url).connect(2_000);
      const peer = await server.next();
      expect(client.peer).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${server.port}#\\d+$`));
      expect(peer.channel.peer).toMatch(/^http:\/\/127\.0\.0\.1:\d+#\d+$/);

      const sent = Array.from({ length: 2_000 }, (_, seq) => ({ type: 'seq', seq, text: '日本語 🦀' }));
      const atClient = frames(client, sent.length);
      for (const frame of sent) client.send(frame);
      for (const frame of sent) peer.channel.send(frame);
      await until(() => peer.received.length === sent.length);
      expect(peer.received).toEqual(sent);
      expect(await atClient).toEqual(sent);

      client.close();
      expect(await peer.closed).toBeUndefined();
    });

    it('delivers frames the server sends right after the 101, in the same write', async () => {
      const t = transport();
      const server = await t.listen((channel) => {
        channel.send({ type: 'welcome', n: 1 });
        channel.send({ type: 'welcome', n: 2 });
      });
      cleanups.push(() => server.close());
      const client = await clientFor(server.address).connect(2_000);
      expect(await frames(client, 2)).toEqual([
        { type: 'welcome', n: 1 },
        { type: 'welcome', n: 2 },
      ]);
      client.close();
    });

    it('delivers frames that arrive in the same TCP packet as a 101 from the primary', async () => {
      const { port } = await rawServer((socket) =>
        socket.once('data', () =>
          socket.write(
            Buffer.concat([
              Buffer.from(
                `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${HTTP_UPGRADE_PROTOCOL}\r\n\r\n`,
              ),
              encodeFrame({ type: 'welcome', seq: 7 }, MAX),
              encodeFrame({ type: 'change', seq: 8 }, MAX),
            ]),
          ),
        ),
      );
      const client = await clientFor(`http://127.0.0.1:${port}${PATH}`).connect(2_000);
      expect(await frames(client, 2)).toEqual([
        { type: 'welcome', seq: 7 },
        { type: 'change', seq: 8 },
      ]);
      client.close();
    });

    it('delivers frames that arrive in the same TCP packet as the upgrade request', async () => {
      const server = await listen();
      const raw = rawClient(
        server.port,
        Buffer.concat([
          Buffer.from(upgradeRequest([`Authorization: Bearer ${SECRET}`])),
          encodeFrame({ type: 'hello', n: 1 }, MAX),
          encodeFrame({ type: 'hello', n: 2 }, MAX),
        ]),
      );
      expect((await raw.head).status).toBe(101);
      const peer = await server.next();
      await until(() => peer.received.length === 2);
      expect(peer.received).toEqual([
        { type: 'hello', n: 1 },
        { type: 'hello', n: 2 },
      ]);
      raw.socket.end();
      expect(await peer.closed).toBeUndefined();
    });

    it('keeps an upgraded connection open past the request timeout, which still cuts slow plain requests', async () => {
      const server = await listen({ requestTimeoutMs: 200 });
      const client = await clientFor(server.url).connect(2_000);
      const peer = await server.next();
      const slow = rawClient(server.port, Buffer.from(`GET ${PATH} HTTP/1.1\r\nHost: x\r\n`));
      // The slow request (headers never finished) is answered 408 and closed within a generous bound.
      expect((await slow.head).status).toBe(408);
      await slow.body;
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect(client.closed).toBe(false);
      const atClient = frames(client, 1);
      peer.channel.send({ type: 'pong' });
      expect(await atClient).toEqual([{ type: 'pong' }]);
      client.send({ type: 'ping' });
      await until(() => peer.received.length === 1);
      client.close();
    });
  });

  describe('when the request is refused', () => {
    it('answers a wrong secret with 401 and never hands a channel over', async () => {
      const server = await listen();
      const error = await clientFor(server.url, { secret: 'not the secret' })
        .connect(2_000)
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'UNAUTHORIZED' });
      expect((error as Error).message).toContain(`the primary at ${server.url} refused the connection: 401`);
      expect((error as Error).message).toContain('wrong secret');
      expect(server.accepted).toEqual([]);
    });

    it('answers a missing secret with 401 and a JSON body, then closes the connection', async () => {
      const server = await listen();
      const raw = rawClient(server.port, Buffer.from(upgradeRequest()));
      const head = await raw.head;
      expect(head.status).toBe(401);
      expect(head.text).toMatch(/content-type: application\/json/i);
      expect(JSON.parse(await raw.body)).toEqual({
        code: 'UNAUTHORIZED',
        message: expect.stringContaining('missing credentials'),
      });
      expect(raw.socket.destroyed).toBe(true);
      expect(server.accepted).toEqual([]);
    });

    it('answers a plain POST on the path with 426 and a JSON body explaining the upgrade', async () => {
      const server = await listen();
      const answer = await plainRequest(server.port, {
        method: 'POST',
        path: PATH,
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ type: 'request', id: 1 }),
      });
      expect(answer.status).toBe(426);
      expect(answer.headers.upgrade).toBe(HTTP_UPGRADE_PROTOCOL);
      expect(answer.body).toEqual({
        code: 'UPGRADE_REQUIRED',
        message: expect.stringContaining(`Upgrade: ${HTTP_UPGRADE_PROTOCOL}`),
      });
      expect(server.accepted).toEqual([]);
    });

    it('answers any other path with 404, plain or upgrade', async () => {
      const server = await listen();
      const plain = await plainRequest(server.port, { method: 'GET', path: '/elsewhere?x=1' });
      expect(plain).toMatchObject({ status: 404, body: { code: 'NOT_FOUND' } });
      const elsewhere = `http://127.0.0.1:${server.port}/elsewhere`;
      const error = await clientFor(elsewhere)
        .connect(2_000)
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'EHTTP404' });
      expect((error as Error).message).toContain(
        `${elsewhere} refused the connection: 404 Not Found: nothing at "/elsewhere"`,
      );
      expect(server.accepted).toEqual([]);
    });

    it.each([
      [400, 'BAD_UPGRADE', 'GET', 'websocket', `upgrades only to ${HTTP_UPGRADE_PROTOCOL}`],
      [405, 'METHOD_NOT_ALLOWED', 'POST', HTTP_UPGRADE_PROTOCOL, 'with GET (received POST)'],
    ])('answers %i (%s) to a %s upgrade to %s', async (status, code, method, token, message) => {
      const server = await listen();
      const raw = rawClient(
        server.port,
        Buffer.from(
          [
            `${method} ${PATH} HTTP/1.1`,
            'Host: x',
            'Connection: Upgrade',
            `Upgrade: ${token}`,
            `Authorization: Bearer ${SECRET}`,
            '',
            '',
          ].join('\r\n'),
        ),
      );
      expect((await raw.head).status).toBe(status);
      expect(JSON.parse(await raw.body)).toEqual({ code, message: expect.stringContaining(message) });
      expect(server.accepted).toEqual([]);
    });

    it('rejects with the status and the text of a body that is not JSON, reading at most 64 KiB of it', async () => {
      // A broken proxy: 502 and a body that never ends.
      const { port } = await rawServer((socket) =>
        socket.once('data', () => {
          socket.write('HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n');
          const chunk = 'upstream unreachable '.repeat(1_000);
          const pump = (): void => {
            while (!socket.destroyed && socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`));
            if (!socket.destroyed) socket.once('drain', pump);
          };
          pump();
        }),
      );
      const error = await clientFor(`http://127.0.0.1:${port}${PATH}`)
        .connect(10_000)
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'EHTTP502' });
      expect((error as Error).message).toMatch(/refused the connection: 502 Bad Gateway: upstream unreachable/);
      expect((error as Error).message.length).toBeLessThan(1_200);
    });

    it('rejects a 101 to another protocol with EPROTO', async () => {
      const { port } = await rawServer((socket) =>
        socket.once('data', () =>
          socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n'),
        ),
      );
      await expect(clientFor(`http://127.0.0.1:${port}${PATH}`).connect(2_000)).rejects.toMatchObject({
        code: 'EPROTO',
        message: expect.stringContaining('switched to protocol "websocket"'),
      });
    });
  });

  describe('when a connecting node breaks the frame format after the upgrade', () => {
    it.each([
      ['oversized', rawFrame('', MAX + 1)],
      ['malformed', rawFrame('{not json')],
      ['not-an-object', rawFrame('[1,2]')],
    ])('answers %s with a PROTOCOL error frame and closes the channel with a FrameError', async (reason, bad) => {
      const server = await listen();
      const raw = rawClient(
        server.port,
        Buffer.concat([
          Buffer.from(upgradeRequest([`Authorization: Bearer ${SECRET}`])),
          encodeFrame({ type: 'ok' }, MAX),
        ]),
      );
      expect((await raw.head).status).toBe(101);
      const peer = await server.next();
      await until(() => peer.received.length === 1);
      raw.socket.write(bad);
      const error = await peer.closed;
      expect(error).toBeInstanceOf(FrameError);
      expect((error as FrameError).reason).toBe(reason);
      expect(await raw.frames).toEqual([
        { type: 'error', code: 'PROTOCOL', reason, message: (error as FrameError).message },
      ]);
      expect(peer.received).toEqual([{ type: 'ok' }]);
    });

    it('answers a frame cut off by the end of the connection with a PROTOCOL error (truncated)', async () => {
      const server = await listen();
      const raw = rawClient(server.port, Buffer.from(upgradeRequest([`Authorization: Bearer ${SECRET}`])));
      expect((await raw.head).status).toBe(101);
      const peer = await server.next();
      raw.socket.end(encodeFrame({ type: 'cut' }, MAX).subarray(0, 6));
      const error = await peer.closed;
      expect(error).toMatchObject({ reason: 'truncated' });
      expect(await raw.frames).toEqual([
        expect.objectContaining({ type: 'error', code: 'PROTOCOL', reason: 'truncated' }),
      ]);
    });
  });

  describe('when the primary breaks the frame format', () => {
    it('closes the connecting side with a FrameError when the primary sends garbage', async () => {
      const { port } = await rawServer((socket) =>
        socket.once('data', () =>
          socket.write(
            Buffer.concat([
              Buffer.from(
                `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${HTTP_UPGRADE_PROTOCOL}\r\n\r\n`,
              ),
              rawFrame('', MAX + 1),
            ]),
          ),
        ),
      );
      const client = await clientFor(`http://127.0.0.1:${port}${PATH}`).connect(2_000);
      expect(await closed(client)).toMatchObject({ name: 'FrameError', reason: 'oversized' });
    });

    it("answers a frame cut off by the primary's end with a PROTOCOL error before closing", async () => {
      const answered: Buffer[] = [];
      let answerDone!: () => void;
      const answer = new Promise<void>((resolve) => (answerDone = resolve));
      const { port } = await rawServer((socket) => {
        let upgraded = false;
        socket.on('data', (chunk: Buffer) => {
          if (upgraded) return void answered.push(chunk);
          upgraded = true;
          socket.end(
            Buffer.concat([
              Buffer.from(
                `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${HTTP_UPGRADE_PROTOCOL}\r\n\r\n`,
              ),
              encodeFrame({ type: 'welcome' }, MAX),
              encodeFrame({ type: 'cut' }, MAX).subarray(0, 7),
            ]),
          );
        });
        socket.on('close', () => answerDone());
      });
      const client = await clientFor(`http://127.0.0.1:${port}${PATH}`).connect(2_000);
      const seen: Frame[] = [];
      client.onFrame((frame) => seen.push(frame));
      expect(await closed(client)).toMatchObject({ name: 'FrameError', reason: 'truncated' });
      await answer;
      expect(seen).toEqual([{ type: 'welcome' }]);
      expect(new FrameDecoder(MAX).push(Buffer.concat(answered))).toEqual([
        expect.objectContaining({ type: 'error', code: 'PROTOCOL', reason: 'truncated' }),
      ]);
    });
  });

  describe('close()', () => {
    it('closes every upgraded channel, resolves, is idempotent, and refuses later connections', async () => {
      const server = await listen();
      const clients = await Promise.all([1, 2, 3].map(() => clientFor(server.url).connect(2_000)));
      await until(() => server.accepted.length === 3);
      const clientsClosed = clients.map(closed);
      const first = server.server.close();
      expect(server.server.close()).toBe(first);
      await first;
      await Promise.all(clientsClosed);
      expect(clients.every((client) => client.closed)).toBe(true);
      expect(server.accepted.every(({ channel }) => channel.closed)).toBe(true);
      await expect(clientFor(server.url).connect(2_000)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    });
  });

  describe('connect()', () => {
    it('rejects with ENOPRIMARY when no primary is known', async () => {
      await expect(transport().connect(1_000)).rejects.toMatchObject({
        code: 'ENOPRIMARY',
        message: expect.stringContaining('no primary is known'),
      });
    });

    it('rejects with ETIMEDOUT and drops the connection when the primary never answers', async () => {
      let hungUp = false;
      const { port, sockets } = await rawServer((socket) => {
        // Reads (so it sees the client's end) and never answers.
        socket.resume();
        socket.on('close', () => (hungUp = true));
      });
      await expect(clientFor(`http://127.0.0.1:${port}${PATH}`).connect(300)).rejects.toMatchObject({
        code: 'ETIMEDOUT',
        message: expect.stringContaining('no answer within 300 ms'),
      });
      expect(sockets).toHaveLength(1);
      await until(() => hungUp);
    });

    it('keeps the errno code when nobody listens, the host is unknown or the target is not a URL', async () => {
      const port = await freePort();
      await expect(clientFor(`http://127.0.0.1:${port}${PATH}`).connect(2_000)).rejects.toMatchObject({
        code: 'ECONNREFUSED',
        message: expect.stringContaining(`cannot connect to the primary at http://127.0.0.1:${port}${PATH}`),
      });
      await expect(clientFor(`http://node-b.invalid:20210${PATH}`).connect(5_000)).rejects.toMatchObject({
        code: 'ENOTFOUND',
      });
      await expect(clientFor('node-b:20210').connect(2_000)).rejects.toMatchObject({ code: 'ERR_INVALID_URL' });
    });

    it('never puts credentials of the target URL in its errors', async () => {
      const port = await freePort();
      const error = await clientFor(`http://user:hunter2@127.0.0.1:${port}${PATH}`)
        .connect(2_000)
        .catch((e: unknown) => e as Error);
      expect(error).toMatchObject({ code: 'ECONNREFUSED' });
      expect((error as Error).message).not.toContain('hunter2');
    });
  });

  describe('listen()', () => {
    it('rejects with EADDRINUSE when the port is taken', async () => {
      const taken = await listen();
      await expect(transport({ port: taken.port }).listen(() => undefined)).rejects.toMatchObject({
        code: 'EADDRINUSE',
        message: expect.stringContaining(`cannot listen on http://127.0.0.1:${taken.port}${PATH}: `),
      });
    });
  });

  describe('with TLS', () => {
    it('carries frames over HTTPS for a client that trusts the certificate', async () => {
      const server = await listen({ host: 'localhost', tls: TLS });
      expect(server.url).toBe(`https://localhost:${server.port}${PATH}`);
      const client = await clientFor(server.url, { tls: { ...TLS, ca: TLS.cert } }).connect(5_000);
      const peer = await server.next();
      expect(client.peer).toBe(`https://localhost:${server.port}#${client.peer.split('#')[1]}`);
      const atClient = frames(client, 1);
      client.send({ type: 'ping', over: 'tls' });
      peer.channel.send({ type: 'pong', over: 'tls' });
      expect(await atClient).toEqual([{ type: 'pong', over: 'tls' }]);
      await until(() => peer.received.length === 1);
      expect(peer.received).toEqual([{ type: 'ping', over: 'tls' }]);
      client.close();
      expect(await peer.closed).toBeUndefined();
    });

    it('refuses a primary whose certificate the client cannot verify', async () => {
      const server = await listen({ host: 'localhost', tls: TLS });
      await expect(clientFor(server.url).connect(5_000)).rejects.toMatchObject({
        code: expect.stringMatching(/SELF_SIGNED|UNABLE_TO_VERIFY/),
      });
      expect(server.accepted).toEqual([]);
    });
  });

  describe('constructor', () => {
    it.each<[string, Partial<HttpTransportOptions>, RegExp]>([
      ['a port out of range', { port: 70_000 }, /port must be an integer from 0 to 65535/],
      ['an empty host', { host: '' }, /host must be a non-empty string/],
      ['a path without /', { path: 'x' }, /path must be a string starting with '\/'/],
      ['an empty secret', { secret: '' }, /secret must be a non-empty string of printable ASCII/],
      ['a secret with a newline', { secret: 'a\nb' }, /secret must be/],
      ['a secret with outer spaces', { secret: ' a ' }, /secret must be/],
      ['a zero maxFrameBytes', { maxFrameBytes: 0 }, /maxFrameBytes must be an integer/],
      ['a zero request timeout', { requestTimeoutMs: 0 }, /requestTimeoutMs must be a positive integer/],
    ])('refuses %s', (_, options, message) => {
      expect(() => transport(options)).toThrow(message);
    });
  });
});
