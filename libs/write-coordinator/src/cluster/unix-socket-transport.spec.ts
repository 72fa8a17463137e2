import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { FRAME_HEADER_BYTES, FrameDecoder, encodeFrame } from './frame-codec';
import { FrameError, type FrameErrorReason } from './frame-error';
import type { Frame, FrameChannel, FrameServer } from './transport';
import { MAX_SOCKET_PATH_BYTES, UnixSocketTransport, defaultSocketPath } from './unix-socket-transport';
import { prng } from '../../../../test/fixtures/fuzz/fuzz-plan';
import { closed, frames } from './__fixtures__/channel-frames';

/**
 * Real Unix domain sockets in a temporary directory. FUZZ_CONNECTIONS / FUZZ_SEED widen or replay
 * the fuzz run.
 */
const MAX = 2048;

let dir: string;
let socketPath: string;
const servers: FrameServer[] = [];

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'wc-t-'));
  socketPath = path.join(dir, 'app.db.wc.sock');
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
  fs.rmSync(dir, { recursive: true, force: true });
});

function transport(): UnixSocketTransport {
  return new UnixSocketTransport({ path: socketPath, maxFrameBytes: MAX });
}

/** Listens and collects the channels the server accepts. */
async function listen(): Promise<{ server: FrameServer; accepted: FrameChannel[]; next: () => Promise<FrameChannel> }> {
  const accepted: FrameChannel[] = [];
  const waiting: ((channel: FrameChannel) => void)[] = [];
  const server = await transport().listen((channel) => {
    accepted.push(channel);
    waiting.shift()?.(channel);
  });
  servers.push(server);
  let taken = 0;
  const next = (): Promise<FrameChannel> =>
    taken < accepted.length
      ? Promise.resolve(accepted[taken++]!)
      : new Promise((resolve) => waiting.push((c) => (taken++, resolve(c))));
  return { server, accepted, next };
}

/** A raw client: writes bytes, then ends; resolves with the frames it read back once the socket closed. */
function rawExchange(chunks: Buffer[], end = true): Promise<{ frames: Frame[]; error?: Error }> {
  return new Promise((resolve) => {
    const socket = net.createConnection({ path: socketPath, allowHalfOpen: true });
    const decoder = new FrameDecoder(1 << 20);
    const received: Frame[] = [];
    let failure: Error | undefined;
    socket.on('data', (chunk: Buffer) => received.push(...decoder.push(chunk)));
    socket.on('error', (error) => (failure = error));
    socket.on('close', () => resolve({ frames: received, error: failure }));
    socket.on('connect', () => {
      for (const chunk of chunks) socket.write(chunk);
      if (end) socket.end();
    });
  });
}

function rawFrame(body: string | Buffer, length?: number): Buffer {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const header = Buffer.alloc(FRAME_HEADER_BYTES);
  header.writeUInt32BE(length ?? bytes.length, 0);
  return Buffer.concat([header, bytes]);
}

/** A stale socket: the file of a primary that was SIGKILLed while listening. */
async function staleSocketAt(file: string): Promise<void> {
  const child = spawn(
    process.execPath,
    ['-e', `require('net').createServer().listen(${JSON.stringify(file)}, () => console.log('up'))`],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
  child.kill('SIGKILL');
  await new Promise((resolve) => child.once('exit', resolve));
  expect(fs.lstatSync(file).isSocket()).toBe(true);
}

async function roundTrip(server: { next: () => Promise<FrameChannel> }, tag: string): Promise<void> {
  const client = await transport().connect(1000);
  const peer = await server.next();
  const atServer = frames(peer, 1);
  client.send({ type: 'ping', tag });
  expect(await atServer).toEqual([{ type: 'ping', tag }]);
  const atClient = frames(client, 1);
  peer.send({ type: 'pong', tag, text: '日本語 🦀' });
  expect(await atClient).toEqual([{ type: 'pong', tag, text: '日本語 🦀' }]);
  client.close();
  expect(await closed(peer)).toBeUndefined();
}

describe('UnixSocketTransport', () => {
  it('carries frames both ways and names its peers', async () => {
    const server = await listen();
    expect(server.server.address).toBe(`unix:${socketPath}`);
    await roundTrip(server, 'first');
    const [peer] = server.accepted;
    expect(peer!.peer.startsWith(`unix:${socketPath}#`)).toBe(true);
  });

  it('keeps the order of 10,000 frames each way', async () => {
    const server = await listen();
    const client = await transport().connect(1000);
    const peer = await server.next();
    const sent = Array.from({ length: 10_000 }, (_, seq) => ({ type: 'seq', seq }));
    const atServer = frames(peer, sent.length);
    const atClient = frames(client, sent.length);
    for (const frame of sent) client.send(frame);
    for (const frame of sent) peer.send(frame);
    expect(await atServer).toEqual(sent);
    expect(await atClient).toEqual(sent);
  });

  it('flushes the frames sent before close() and then closes plainly', async () => {
    const server = await listen();
    const client = await transport().connect(1000);
    const peer = await server.next();
    const sent = Array.from({ length: 2000 }, (_, seq) => ({ type: 'seq', seq, pad: 'p'.repeat(200) }));
    const atServer = frames(peer, sent.length);
    const peerClosed = closed(peer);
    for (const frame of sent) client.send(frame);
    client.close();
    expect(client.closed).toBe(true);
    expect(client.send({ type: 'late' })).toBe(false);
    expect(await atServer).toEqual(sent);
    expect(await peerClosed).toBeUndefined();
  });

  it('rejects listen with an errno code when the directory does not exist', async () => {
    // Node reports EACCES (not ENOENT) for a pipe bound in a missing directory: the code is passed on as is.
    const missing = new UnixSocketTransport({ path: path.join(dir, 'nope', 's.sock'), maxFrameBytes: MAX });
    await expect(missing.listen(() => undefined)).rejects.toMatchObject({
      code: expect.stringMatching(/^E[A-Z]+$/),
      message: expect.stringContaining(`cannot listen on unix:${path.join(dir, 'nope', 's.sock')}: `),
    });
  });

  it('creates the socket file owner-only (0600) even when the process umask is 0', async () => {
    const previous = process.umask(0);
    try {
      await listen();
    } finally {
      process.umask(previous);
    }
    const stats = fs.statSync(socketPath);
    expect(stats.isSocket()).toBe(true);
    expect((stats.mode & 0o777).toString(8)).toBe('600');
    expect(fs.readdirSync(dir)).toEqual([path.basename(socketPath)]);
  });

  it('replaces the stale socket of a dead primary, which refused connections until then', async () => {
    await staleSocketAt(socketPath);
    await expect(transport().connect(1000)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    const server = await listen();
    await roundTrip(server, 'after stale');
  });

  it('refuses to listen over a file that is not a socket, and leaves it intact', async () => {
    fs.writeFileSync(socketPath, 'precious');
    await expect(transport().listen(() => undefined)).rejects.toThrow(/is not a socket/);
    expect(fs.readFileSync(socketPath, 'utf8')).toBe('precious');
    expect(fs.readdirSync(dir)).toEqual([path.basename(socketPath)]);
  });

  it('removes its socket file on close', async () => {
    const { server } = await listen();
    await server.close();
    expect(fs.existsSync(socketPath)).toBe(false);
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('leaves the socket of a newer primary that replaced its own on close', async () => {
    const old = await listen();
    const newer = await listen();
    await old.server.close();
    expect(fs.lstatSync(socketPath).isSocket()).toBe(true);
    await roundTrip(newer, 'newer still listens');
  });

  it('closes every open channel on close', async () => {
    const server = await listen();
    const client = await transport().connect(1000);
    const peer = await server.next();
    await server.server.close();
    expect(await closed(peer)).toBeUndefined();
    await closed(client);
    expect(client.send({ type: 'late' })).toBe(false);
  });

  it('rejects a connection to a missing socket with ENOENT', async () => {
    await expect(transport().connect(1000)).rejects.toMatchObject({
      code: 'ENOENT',
      message: expect.stringContaining(`cannot connect to the primary at unix:${socketPath}`),
    });
  });

  it('throws FrameError (oversized) on send of a frame too large, and the channel stays open', async () => {
    const server = await listen();
    const client = await transport().connect(1000);
    const peer = await server.next();
    expect(() => client.send({ type: 'big', pad: 'a'.repeat(MAX) })).toThrow(FrameError);
    expect(client.closed).toBe(false);
    const atServer = frames(peer, 1);
    client.send({ type: 'small' });
    expect(await atServer).toEqual([{ type: 'small' }]);
  });

  it('calls a close listener registered after the close at once', async () => {
    const server = await listen();
    const client = await transport().connect(1000);
    client.close();
    const calls: (Error | undefined)[] = [];
    client.onClose((error) => calls.push(error));
    expect(calls).toEqual([undefined]);
    await closed(await server.next());
  });

  describe('when a peer sends bad bytes', () => {
    it.each<{ what: string; bytes: Buffer[]; reason: FrameErrorReason }>([
      { what: 'an oversized length prefix', bytes: [rawFrame('', MAX + 1)], reason: 'oversized' },
      { what: 'invalid JSON', bytes: [rawFrame('{"type":')], reason: 'malformed' },
      { what: 'JSON that is not a frame', bytes: [rawFrame('[1,2]')], reason: 'not-an-object' },
      { what: 'a frame cut by the end of the connection', bytes: [rawFrame('x'.repeat(12), 36)], reason: 'truncated' },
    ])(
      'answers $what with a PROTOCOL error frame and closes ($reason), while another channel keeps working',
      async ({ bytes, reason }) => {
        const server = await listen();
        const good = await transport().connect(1000);
        const goodPeer = await server.next();
        const before = frames(good, 1);

        const sentFirst = encodeFrame({ type: 'fine' }, MAX);
        const exchange = rawExchange([sentFirst, ...bytes]);
        const bad = await server.next();
        const badFrames: Frame[] = [];
        bad.onFrame((frame) => badFrames.push(frame));
        const badClosed = closed(bad);
        const { frames: answer } = await exchange;

        const error = await badClosed;
        expect(error).toBeInstanceOf(FrameError);
        expect((error as FrameError).reason).toBe(reason);
        expect(badFrames).toEqual([{ type: 'fine' }]);
        expect(answer).toEqual([{ type: 'error', code: 'PROTOCOL', reason, message: error!.message }]);

        goodPeer.send({ type: 'still', up: true });
        expect(await before).toEqual([{ type: 'still', up: true }]);
        await roundTrip(server, 'a new client');
      },
    );
  });

  it('survives fuzzed input: every raw client gets its valid frames or a FrameError close, and a good client still round-trips', async () => {
    const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const connections = Number(process.env.FUZZ_CONNECTIONS ?? 200);
    try {
      const random = prng(seed);
      const server = await listen();
      const good = await transport().connect(1000);
      const goodPeer = await server.next();
      let items = 0;
      const outcomes = new Map<string, number>();
      let delivered = 0;

      const runClient = async (): Promise<void> => {
        const parts: Buffer[] = [];
        const count = 40 + Math.floor(random() * 40);
        // A third of the clients send only valid frames; the others some garbage among them.
        const badRate = random() < 0.33 ? 0 : random() * 0.08;
        for (let i = 0; i < count; i += 1) parts.push(fuzzItem(random, badRate));
        // Some clients hang up inside a frame.
        if (random() < 0.15) {
          const last = encodeFrame({ type: 'cut', s: 'x'.repeat(Math.floor(random() * 100)) }, MAX);
          parts.push(last.subarray(0, 1 + Math.floor(random() * (last.length - 1))));
        }
        items += count;
        const stream = Buffer.concat(parts);
        const chunks: Buffer[] = [];
        for (let at = 0; at < stream.length;) {
          const size = 1 + Math.floor(random() * 200);
          chunks.push(stream.subarray(at, at + size));
          at += size;
        }
        // What the server must see: the reference decoder run over the whole stream.
        const expected: Frame[] = [];
        let expectedError: FrameError | undefined;
        try {
          const reference = new FrameDecoder(MAX);
          reference.decode(stream, (frame) => void expected.push(frame));
          reference.end();
        } catch (error) {
          expectedError = error as FrameError;
        }

        const exchange = rawExchange(chunks);
        const channel = await server.next();
        const seen: Frame[] = [];
        channel.onFrame((frame) => seen.push(frame));
        const error = await closed(channel);
        const { frames: answer } = await exchange;
        expect(seen).toEqual(expected);
        delivered += seen.length;
        const outcome = error instanceof FrameError ? error.reason : String(error);
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        if (expectedError) {
          expect(error).toBeInstanceOf(FrameError);
          expect((error as FrameError).reason).toBe(expectedError.reason);
          expect(answer).toEqual([
            { type: 'error', code: 'PROTOCOL', reason: expectedError.reason, message: expectedError.message },
          ]);
        } else {
          expect(error).toBeUndefined();
          expect(answer).toEqual([]);
        }
      };
      for (let i = 0; i < connections; i += 1) await runClient();
      expect(items).toBeGreaterThanOrEqual(connections * 40);
      // Every way of failing (and the clean close) happened at least once in this run.
      expect([...outcomes.keys()].sort()).toEqual([
        'malformed',
        'not-an-object',
        'oversized',
        'truncated',
        'undefined',
      ]);
      if (process.env.FUZZ_VERBOSE)
        console.log(
          `fuzz seed ${seed}: ${items} items from ${connections} clients, ${delivered} frames delivered, closes ${JSON.stringify(Object.fromEntries(outcomes))}`,
        );

      const atGood = frames(goodPeer, 1);
      good.send({ type: 'after fuzz' });
      expect(await atGood).toEqual([{ type: 'after fuzz' }]);
      await roundTrip(server, 'after fuzz');
    } catch (error) {
      console.error(`fuzz failed with FUZZ_SEED=${seed}`);
      throw error;
    }
  }, 60_000);
});

describe('defaultSocketPath', () => {
  it('puts <database>.wc.sock next to the database', () => {
    expect(defaultSocketPath('/var/data/app.db')).toBe('/var/data/app.db.wc.sock');
    expect(defaultSocketPath('data/app.db')).toBe(path.resolve('data/app.db') + '.wc.sock');
  });

  it('falls back to a short name in the temp dir, the same for every process, when the path is too long', () => {
    const deep = path.join('/tmp', 'x'.repeat(120), 'app.db');
    const fallback = defaultSocketPath(deep);
    expect(fallback).toMatch(new RegExp(`^${os.tmpdir()}/wc-[0-9a-f]{16}\\.sock$`));
    expect(Buffer.byteLength(fallback)).toBeLessThanOrEqual(MAX_SOCKET_PATH_BYTES);
    expect(defaultSocketPath(deep)).toBe(fallback);
    expect(defaultSocketPath(path.join('/tmp', 'y'.repeat(120), 'app.db'))).not.toBe(fallback);
  });
});

/** One fuzz item: mostly valid frames, sometimes garbage of every kind the decoder must refuse. */
function fuzzItem(random: () => number, badRate: number): Buffer {
  const pick = random() < badRate ? 0.9 + random() * 0.1 : 0;
  const bytes = (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => Math.floor(random() * 256)));
  if (pick < 0.9)
    return encodeFrame({ type: 'ok', n: Math.floor(random() * 1e6), s: '🦀é'.repeat(Math.floor(random() * 20)) }, MAX);
  if (pick < 0.92) return bytes(1 + Math.floor(random() * 40));
  if (pick < 0.94) return rawFrame(bytes(Math.floor(random() * 40)));
  if (pick < 0.96) return rawFrame('', MAX + 1 + Math.floor(random() * 1e6));
  if (pick < 0.98) return rawFrame(['[]', 'null', '1', '"x"', '{}', '{"type":1}'][Math.floor(random() * 6)]!);
  return rawFrame('x', 2 + Math.floor(random() * 40)).subarray(0, 5);
}
