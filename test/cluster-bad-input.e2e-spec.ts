import { existsSync, statSync } from 'node:fs';
import { encodeFrame } from '@app/write-coordinator/cluster/frame-codec';
import Database from 'better-sqlite3';
import { createSchema, Member, rowsPerTag } from './fixtures/cluster-members';
import { compileLibrary } from './fixtures/compiled-library';
import { RawClusterClient } from './fixtures/raw-cluster-client';
import { tempDir } from './fixtures/temp-sqlite';
import { prng } from './fixtures/fuzz/fuzz-plan';

/**
 * Bad input on the socket of a real primary (a member process), from raw `net` clients, while a
 * well-behaved secondary member keeps writing through the same primary. Each bad client must get a
 * clear error (an `error` frame with a code, or an error `response`), the good member's writes must
 * all succeed, and nothing but the good member's writes may ever reach the database (its rows and
 * the exactly-once table).
 *
 * FUZZ_SEED=<n> replays a fuzz run (the seed is printed); FUZZ_CONNECTIONS=<n> changes its size.
 */
const SECRET = 's3cret';
const HANDLERS = ['submit:append'];
const MAX_PAYLOAD = 4096;
/** The primary's frame limit for that payload: 2 × maxPayloadBytes + 64 KiB (see Coordinator). */
const MAX_FRAME = 2 * MAX_PAYLOAD + 64 * 1024;
const REQUESTS_TABLE = '_write_coordinator_requests';

let lib: ReturnType<typeof compileLibrary>;
let tmp: ReturnType<typeof tempDir>;
let primary: Member;
let good: Member;
let address: string;
let stopWriting = false;
let writer: Promise<void>;
let batches = 0;

const hello = (extra: Record<string, unknown> = {}) => ({
  type: 'hello',
  protocol: 1,
  pid: 4242,
  handlers: HANDLERS,
  secret: SECRET,
  ...extra,
});
const request = (id: number, extra: Record<string, unknown> = {}) => ({
  type: 'request',
  id,
  requestId: `evil-${id}-${Math.random()}`,
  call: { op: 'submit', method: 'append', params: { tag: `evil-${id}` } },
  timeoutMs: 10_000,
  ...extra,
});
const header = (length: number) => {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32BE(length >>> 0, 0);
  return buffer;
};
const withHeader = (body: Buffer) => Buffer.concat([header(body.length), body]);

/** Connects, says a good hello and waits for the welcome. */
async function welcomed(): Promise<RawClusterClient> {
  const client = await RawClusterClient.connect(address);
  client.send(hello());
  expect(await client.until((frames) => frames.length > 0)).toBe(true);
  expect(client.frames[0]).toMatchObject({ type: 'welcome', protocol: 1, pid: primary.pid });
  return client;
}

/** Sends `bytes` (or frames) on a fresh connection, optionally half-closes, and returns the closed client. */
async function refusedWith(
  send: (client: RawClusterClient) => void,
  options: { end?: boolean } = {},
): Promise<RawClusterClient> {
  const client = await RawClusterClient.connect(address);
  send(client);
  if (options.end) client.end();
  const closed = await client.closedWithin(10_000);
  if (!closed) client.destroy();
  expect(closed).toBe(true); // the primary hung up on it
  expect(client.undecodable).toBeUndefined();
  return client;
}

/** Rows and request ids come from the good member only (written while the test runs). */
function onlyGoodWrites(): void {
  const db = new Database(tmp.file('app.db'), { readonly: true });
  try {
    const tags = db.prepare('SELECT tag FROM entry').pluck().all() as string[];
    expect(tags.filter((tag) => !tag.startsWith('good-'))).toEqual([]);
    const ids = db.prepare(`SELECT request_id FROM "${REQUESTS_TABLE}"`).pluck().all() as string[];
    expect(ids.filter((id) => !id.startsWith('good-'))).toEqual([]);
  } finally {
    db.close();
  }
}

beforeAll(async () => {
  lib = compileLibrary();
  tmp = tempDir('wc-cluster-bad-');
  createSchema(tmp.file('app.db'));
  const cluster = { secret: SECRET, handshakeTimeoutMs: 300 };
  primary = await Member.start(lib.core, tmp.file('app.db'), cluster, { maxPayloadBytes: MAX_PAYLOAD });
  good = await Member.start(lib.core, tmp.file('app.db'), cluster, { maxPayloadBytes: MAX_PAYLOAD });
  expect([primary.role, good.role]).toEqual(['primary', 'secondary']);
  address = (await primary.metrics()).cluster.address as string;
  writer = (async () => {
    while (!stopWriting) {
      const batch = batches++;
      await good.write(
        Array.from({ length: 20 }, (_, i) => `good-${batch}-${i}`),
        { concurrency: 4, timeoutMs: 10_000 },
      );
    }
  })();
  await good.write(['good-first']);
}, 60_000);

afterAll(async () => {
  stopWriting = true;
  await writer?.catch(() => undefined);
  primary?.kill();
  good?.kill();
  tmp?.cleanup();
  lib?.cleanup();
});

afterEach(() => onlyGoodWrites());
jest.setTimeout(30_000);

describe('cluster: bad input on the primary socket', () => {
  it('the socket file is owner-only (0600) and the lock file lies next to the database', () => {
    const path = address.replace(/^unix:/, '');
    const stats = statSync(path);
    expect(stats.isSocket()).toBe(true);
    expect((stats.mode & 0o777).toString(8)).toBe('600');
    expect(existsSync(`${tmp.file('app.db')}.primary-lock`)).toBe(true);
  });

  it('malformed JSON, invalid UTF-8 and JSON of the wrong shape: a PROTOCOL error frame, then the connection closes', async () => {
    const bodies: Array<[string, Buffer]> = [
      ['malformed', Buffer.from('{"type":"hello",')],
      ['malformed', Buffer.from([0xff, 0xfe, 0x7b, 0x7d])],
      ['malformed', Buffer.alloc(0)],
      ['not-an-object', Buffer.from('[1,2,3]')],
      ['not-an-object', Buffer.from('42')],
      ['not-an-object', Buffer.from('null')],
      ['not-an-object', Buffer.from('{"type":7}')],
      ['not-an-object', Buffer.from('{"no":"type"}')],
    ];
    for (const [reason, body] of bodies) {
      const client = await refusedWith((c) => c.raw(withHeader(body)));
      expect(client.errors).toEqual([expect.objectContaining({ type: 'error', code: 'PROTOCOL', reason })]);
    }
    // The same after a good handshake.
    const client = await welcomed();
    client.raw(withHeader(Buffer.from('{oops')));
    expect(await client.closedWithin()).toBe(true);
    expect(client.errors).toEqual([expect.objectContaining({ code: 'PROTOCOL', reason: 'malformed' })]);
  });

  it('an oversized length prefix is refused at once (its body is never awaited), before and after the handshake', async () => {
    for (const length of [MAX_FRAME + 1, 0xffff_ffff]) {
      const client = await refusedWith((c) => {
        c.raw(header(length));
        c.raw(Buffer.alloc(256 * 1024, 0x20)); // and keep sending: the primary must not buffer it
      });
      expect(client.errors).toEqual([expect.objectContaining({ code: 'PROTOCOL', reason: 'oversized' })]);
    }
    const client = await welcomed();
    client.raw(header(MAX_FRAME + 1));
    expect(await client.closedWithin()).toBe(true);
    expect(client.errors).toEqual([expect.objectContaining({ code: 'PROTOCOL', reason: 'oversized' })]);
  });

  it('a truncated frame (header or body), then a half-close: PROTOCOL truncated; then a hard close: nothing breaks', async () => {
    const valid = Buffer.from(JSON.stringify(hello()));
    for (const bytes of [header(100).subarray(0, 2), Buffer.concat([header(valid.length), valid.subarray(0, 10)])]) {
      const client = await refusedWith((c) => c.raw(bytes), { end: true });
      expect(client.errors).toEqual([expect.objectContaining({ code: 'PROTOCOL', reason: 'truncated' })]);
    }
    // A request cut in the middle after a good handshake, then a half-close: the request never runs.
    const client = await welcomed();
    const body = Buffer.from(JSON.stringify(request(1)));
    client.raw(Buffer.concat([header(body.length), body.subarray(0, body.length - 1)]));
    client.end();
    expect(await client.closedWithin()).toBe(true);
    expect(client.errors).toEqual([expect.objectContaining({ code: 'PROTOCOL', reason: 'truncated' })]);
    // The same cut, then a hard close: the primary cannot answer, and must simply forget it.
    const rude = await welcomed();
    rude.raw(Buffer.concat([header(body.length), body.subarray(0, body.length - 1)]));
    rude.destroy();
    await rude.closed;
  });

  it('connections that send nothing (or half a frame) are closed with HANDSHAKE_TIMEOUT', async () => {
    const clients = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const client = await RawClusterClient.connect(address);
        if (i % 2) client.raw(header(50)); // a frame begun, never finished
        return client;
      }),
    );
    for (const client of clients) {
      expect(await client.closedWithin()).toBe(true);
      expect(client.errors).toEqual([expect.objectContaining({ type: 'error', code: 'HANDSHAKE_TIMEOUT' })]);
    }
  });

  it('refused handshakes: wrong protocol, wrong or missing secret, other handlers, a malformed hello, a request first', async () => {
    const cases: Array<[string, Record<string, unknown>]> = [
      ['PROTOCOL_VERSION', hello({ protocol: 2 })],
      ['PROTOCOL_VERSION', hello({ protocol: 0 })],
      ['UNAUTHORIZED', hello({ secret: 'S3CRET' })],
      ['UNAUTHORIZED', hello({ secret: `${SECRET} ` })],
      ['UNAUTHORIZED', hello({ secret: undefined })],
      ['UNAUTHORIZED', hello({ secret: '' })],
      ['HANDLERS_MISMATCH', hello({ handlers: [] })],
      ['HANDLERS_MISMATCH', hello({ handlers: ['submit:append', 'submit:drop'] })],
      ['HANDLERS_MISMATCH', hello({ handlers: ['submit:other'] })],
      ['PROTOCOL', hello({ protocol: '1' })],
      ['PROTOCOL', hello({ protocol: 1.5 })],
      ['PROTOCOL', hello({ handlers: 'submit:append' })],
      ['PROTOCOL', hello({ handlers: [1] })],
      ['PROTOCOL', hello({ pid: -1 })],
      ['PROTOCOL', hello({ secret: 42 })],
      ['PROTOCOL', request(1, { requestId: 'evil-before-hello' })],
      ['PROTOCOL', { type: 'ping', t: 1 }],
      ['PROTOCOL', { type: 'welcome', protocol: 1, pid: 1, epoch: 'x', seq: 0 }],
    ];
    for (const [code, frame] of cases) {
      // A valid request follows the refused hello at once: it must never run.
      const client = await refusedWith((c) => {
        c.send(frame);
        c.send(request(1000, { requestId: `evil-after-${code}` }));
      });
      expect(client.frames).toEqual([expect.objectContaining({ type: 'error', code, message: expect.any(String) })]);
    }
  });

  it('malformed requests after a good hello: an INVALID_PARAMS response when the id is usable, a PROTOCOL error frame when not', async () => {
    const client = await welcomed();
    const invalid: Array<Record<string, unknown>> = [
      request(1, { requestId: '' }),
      request(2, { requestId: 7 }),
      request(3, { requestId: 'x'.repeat(257) }),
      request(4, { timeoutMs: 0 }),
      request(5, { timeoutMs: -1 }),
      request(6, { timeoutMs: 2 ** 31 }),
      request(7, { timeoutMs: 1e300 }),
      request(8, { timeoutMs: '100' }),
      request(9, { call: null }),
      request(10, { call: { op: 'drop', method: 'append' } }),
      request(11, { call: { op: 'submit', method: '' } }),
      request(12, { call: { op: 'call', name: 'append', args: {} } }),
      request(13, { label: 5 }),
      request(14, { meta: [] }),
      request(15, {
        call: { op: 'submit', method: 'append', params: { tag: 'evil-big', pad: 'x'.repeat(MAX_PAYLOAD) } },
      }),
    ];
    for (const frame of invalid) client.send(frame);
    // An unknown method and an unknown forwardable: answered, not run.
    client.send(request(16, { call: { op: 'submit', method: 'nope', params: { tag: 'evil-nope' } } }));
    client.send(request(17, { call: { op: 'call', name: 'nope', args: [] } }));
    // A handler failure (NOT NULL, INTERNAL: only UNIQUE/PRIMARY KEY is CONFLICT): rolled back, request id not recorded.
    client.send(request(18, { call: { op: 'submit', method: 'append', params: { other: 1 } } }));
    expect(await client.until((frames) => frames.filter((f) => f.type === 'response').length === 18)).toBe(true);
    const byId = new Map(client.frames.filter((f) => f.type === 'response').map((f) => [f.id as number, f]));
    for (let id = 1; id <= 15; id++) {
      expect(byId.get(id)).toMatchObject({ ok: false, error: { code: 'INVALID_PARAMS', retryable: false } });
    }
    expect(byId.get(16)).toMatchObject({ ok: false, error: { code: 'METHOD_NOT_FOUND' } });
    expect(byId.get(17)).toMatchObject({ ok: false, error: { code: 'METHOD_NOT_FOUND' } });
    expect(byId.get(18)).toMatchObject({
      ok: false,
      error: { code: 'INTERNAL', message: expect.stringContaining('NOT NULL') },
    });
    expect(client.isDone).toBe(false); // still served: an error response is not a protocol error

    // Unusable ids: a protocol error, and the channel closes.
    for (const id of [1.5, 'one', null, 2 ** 53, '7']) {
      const other = await welcomed();
      other.send(request(0, { id }));
      expect(await other.closedWithin()).toBe(true);
      expect(other.errors).toEqual([expect.objectContaining({ code: 'PROTOCOL' })]);
    }
    // An unknown frame type after the handshake, and a second hello.
    for (const frame of [{ type: 'drop-table' }, hello()]) {
      const other = await welcomed();
      other.send(frame);
      expect(await other.closedWithin()).toBe(true);
      expect(other.errors).toEqual([expect.objectContaining({ code: 'PROTOCOL' })]);
    }
    // The same channel id twice while the first still runs: both in one write, so that the primary
    // decodes them in one chunk (sent apart, the first could finish before the second arrives).
    const twice = await welcomed();
    const same = encodeFrame(request(1, { call: { op: 'submit', method: 'nope' } }) as never, 0xffff_ffff);
    twice.raw(Buffer.concat([same, same]));
    expect(await twice.closedWithin()).toBe(true);
    expect(twice.errors).toEqual([expect.objectContaining({ code: 'PROTOCOL' })]);
    client.end();
    await client.closed;
  });

  it('a known request id with other params is refused (INVALID_PARAMS, nothing written); with the same params it answers the recorded outcome', async () => {
    const [tag, value] = [...good.acknowledged.entries()][0];
    const before = rowsPerTag(tmp.file('app.db')).get(tag);
    const client = await welcomed();
    client.send(
      request(1, { requestId: tag, call: { op: 'submit', method: 'append', params: { tag: 'evil-reuse' } } }),
    );
    client.send(request(2, { requestId: tag, call: { op: 'submit', method: 'append', params: { tag, extra: 1 } } }));
    client.send(request(3, { requestId: tag, call: { op: 'call', name: 'append', args: [{ tag }] } }));
    const responses = () => client.frames.filter((f) => f.type === 'response');
    expect(await client.until(() => responses().length === 3)).toBe(true);
    client.send(request(4, { requestId: tag, call: { op: 'submit', method: 'append', params: { tag } } }));
    expect(await client.until(() => responses().length === 4)).toBe(true);
    const byId = new Map(responses().map((f) => [f.id as number, f]));
    for (const id of [1, 2, 3]) {
      expect(byId.get(id)).toMatchObject({ ok: false, error: { code: 'INVALID_PARAMS', retryable: false } });
    }
    expect(byId.get(4)).toEqual({ type: 'response', id: 4, ok: true, result: value });
    expect(before).toBe(1);
    expect(rowsPerTag(tmp.file('app.db')).get(tag)).toBe(1);
    client.end();
  });

  it('a known request id with other params still queued does not make the original request refused (it answers the recorded outcome)', async () => {
    const [tag, value] = [...good.acknowledged.entries()][1];
    const client = await welcomed();
    // Both in one chunk: the second arrives while the first is queued on the primary.
    const frame = (f: Record<string, unknown>) => encodeFrame(f as never, 0xffff_ffff);
    client.raw(
      Buffer.concat([
        frame(
          request(1, { requestId: tag, call: { op: 'submit', method: 'append', params: { tag: 'evil-reuse-2' } } }),
        ),
        frame(request(2, { requestId: tag, call: { op: 'submit', method: 'append', params: { tag } } })),
      ]),
    );
    expect(await client.until((frames) => frames.filter((f) => f.type === 'response').length === 2)).toBe(true);
    const byId = new Map(client.frames.filter((f) => f.type === 'response').map((f) => [f.id as number, f]));
    expect(byId.get(1)).toMatchObject({ ok: false, error: { code: 'INVALID_PARAMS' } });
    expect(byId.get(2)).toEqual({ type: 'response', id: 2, ok: true, result: value });
    client.end();
  });

  it('a request whose id is a negative integer is a protocol error, like any other unusable id', async () => {
    const client = await welcomed();
    client.send(request(0, { id: -1 }));
    expect(await client.closedWithin()).toBe(true);
    expect(client.errors).toEqual([expect.objectContaining({ code: 'PROTOCOL' })]);
    expect(client.frames.filter((f) => f.type === 'response')).toEqual([]);
  });

  it('≥ 10,000 fuzzed frames (seeded): every answer is a coded error, every refusal an error frame, nothing written', async () => {
    const seed = Number(process.env.FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const connections = Number(process.env.FUZZ_CONNECTIONS ?? 600);
    console.log(`cluster bad input: fuzz seed ${seed} (replay with FUZZ_SEED=${seed})`);
    const random = prng(seed);
    const stats = {
      frames: 0,
      connections: 0,
      refusedHellos: 0,
      closers: 0,
      responses: new Map<string, number>(),
      errorFrames: new Map<string, number>(),
    };
    const problems: string[] = [];
    const count = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);
    const acked = () => [...good.acknowledged.keys()];

    const one = async (n: number) => {
      const plan = fuzzConnection(random, acked());
      const client = await RawClusterClient.connect(address);
      stats.connections++;
      client.send(plan.hello);
      stats.frames++;
      for (const item of plan.frames) {
        if (Buffer.isBuffer(item)) client.raw(item);
        else client.send(item);
      }
      stats.frames += plan.frames.length;
      if (plan.closer) {
        client.raw(plan.closer);
        stats.frames++;
        stats.closers++;
        client.end();
      }
      const requests = plan.frames.filter((f) => !Buffer.isBuffer(f) && f.type === 'request').length;
      const settled = await client.until(
        (frames) =>
          frames.some((f) => f.type === 'error') ||
          (frames.filter((f) => f.type === 'response').length === requests &&
            frames.some((f) => f.type === 'pong' && f.t === 'end')),
        15_000,
      );
      if (!plan.closer && plan.helloOk) client.end();
      const closed = await client.closedWithin(10_000);
      if (!closed) client.destroy();
      const where = `connection ${n} (${plan.describe})`;
      if (!settled) problems.push(`${where}: unanswered; got ${JSON.stringify(client.frames).slice(0, 300)}`);
      if (!closed) problems.push(`${where}: never closed`);
      if (client.undecodable) problems.push(`${where}: undecodable answer ${client.undecodable.message}`);
      const errors = client.errors;
      if (!plan.helloOk) {
        stats.refusedHellos++;
        if (errors.length !== 1 || client.frames.length !== 1) {
          problems.push(`${where}: refused hello answered ${JSON.stringify(client.frames).slice(0, 300)}`);
        }
      } else {
        if (client.frames[0]?.type !== 'welcome') problems.push(`${where}: no welcome first`);
        if (plan.closer && errors.length !== 1) {
          problems.push(`${where}: closer answered ${JSON.stringify(errors).slice(0, 300)}`);
        }
        if (!plan.closer && errors.length !== 0) {
          problems.push(`${where}: unexpected error frame ${JSON.stringify(errors).slice(0, 300)}`);
        }
      }
      for (const frame of client.frames) {
        if (frame.type === 'error') {
          if (typeof frame.code !== 'string' || typeof frame.message !== 'string') {
            problems.push(`${where}: error frame without code/message ${JSON.stringify(frame)}`);
          }
          count(stats.errorFrames, String(frame.code));
        } else if (frame.type === 'response') {
          const code = (frame.error as { code?: unknown } | undefined)?.code;
          if (frame.ok !== false || typeof code !== 'string') {
            problems.push(`${where}: a fuzzed request was answered ${JSON.stringify(frame).slice(0, 300)}`);
          }
          count(stats.responses, String(code));
        } else if (!['welcome', 'pong', 'change'].includes(frame.type)) {
          problems.push(`${where}: unexpected frame ${frame.type}`);
        }
      }
    };
    const lanes = 6;
    let next = 0;
    await Promise.all(
      Array.from({ length: lanes }, async () => {
        while (next < connections) await one(next++);
      }),
    );
    const show = (map: Map<string, number>) => [...map].map(([k, v]) => `${k} ${v}`).join(', ');
    console.log(
      `cluster bad input: ${stats.frames} fuzzed frames on ${stats.connections} connections ` +
        `(${stats.refusedHellos} refused handshakes, ${stats.closers} ended by a protocol-breaking frame); ` +
        `responses: ${show(stats.responses)}; error frames: ${show(stats.errorFrames)}; ` +
        `good member: ${good.acknowledged.size} writes acknowledged so far`,
    );
    expect(problems.slice(0, 10)).toEqual([]);
    expect(stats.frames).toBeGreaterThanOrEqual(10_000);
  }, 120_000);

  it('the good member wrote throughout: every write acknowledged, each present once, and nothing else in the database', async () => {
    stopWriting = true;
    await writer;
    expect(batches).toBeGreaterThan(5);
    expect([...good.refused.entries()].slice(0, 5)).toEqual([]);
    const rows = rowsPerTag(tmp.file('app.db'));
    expect(rows.size).toBe(good.acknowledged.size);
    for (const [tag, value] of good.acknowledged) {
      expect(rows.get(tag)).toBe(1);
      expect(value).toMatchObject({ tag, by: primary.pid });
    }
    const db = new Database(tmp.file('app.db'), { readonly: true });
    const ids = db.prepare(`SELECT request_id FROM "${REQUESTS_TABLE}"`).pluck().all() as string[];
    db.close();
    expect(ids.sort()).toEqual([...good.acknowledged.keys()].sort());
    // Still the same primary, and the good member never lost it.
    expect((await primary.metrics()).cluster).toMatchObject({ role: 'primary', roleChanges: 1 });
    expect((await good.metrics()).cluster).toMatchObject({
      role: 'secondary',
      primaryPid: primary.pid,
      peers: 1,
      resent: 0,
      changesMissed: 0,
      roleChanges: 1,
    });
  }, 60_000);
});

type Fuzzed = Record<string, unknown> & { type: string };
interface FuzzPlan {
  hello: Record<string, unknown>;
  helloOk: boolean;
  /** Frames that must each be answered (requests) or ignored (pings, cancels) without closing. */
  frames: Array<Fuzzed | Buffer>;
  /** A last frame that breaks the protocol (the primary must answer an error frame and close). */
  closer: Buffer | undefined;
  describe: string;
}

/**
 * One fuzzed connection: a hello (sometimes a bad one), 10–30 frames that must each be answered
 * with an error response or ignored — requests of random shape, each invalid in at least one way so
 * that none may write — and either a protocol-breaking last frame or a final `ping` marker.
 */
function fuzzConnection(random: () => number, acked: string[]): FuzzPlan {
  const int = (n: number) => Math.floor(random() * n);
  const pick = <T>(list: readonly T[]): T => list[int(list.length)];
  const junk = (depth = 0): unknown => {
    const kind = int(depth > 2 ? 5 : 8);
    if (kind === 0) return null;
    if (kind === 1) return random() < 0.5;
    if (kind === 2) return pick([0, -1, 1.5, 2 ** 53, -(2 ** 31), int(1e9)]);
    if (kind === 3) return randomString(random, int(40));
    if (kind === 4) return '';
    if (kind === 5) return Array.from({ length: int(4) }, () => junk(depth + 1));
    return Object.fromEntries(
      Array.from({ length: int(4) }, () => [
        pick(['a', 'type', 'id', 'op', '__proto__', 'constructor', 'ok', 'x']),
        junk(depth + 1),
      ]),
    );
  };
  const hellos: Array<[boolean, Record<string, unknown>]> = [
    [false, hello({ protocol: pick([0, 2, 99, -1]) })],
    [false, hello({ secret: pick(['', 'x', SECRET.toUpperCase(), undefined, randomString(random, 20)]) })],
    [false, hello({ handlers: pick([[], ['submit:x'], [...HANDLERS, 'call:y'], [randomString(random, 8)]]) })],
    [false, hello({ [pick(['protocol', 'handlers', 'secret'])]: junk() })],
    [false, { type: pick(['request', 'ping', 'cancel', 'response', randomString(random, 6)]), id: int(5) }],
  ];
  const [helloOk, helloFrame] = random() < 0.85 ? [true, hello()] : pick(hellos);
  // A junk hello field may be valid by chance (e.g. a junk secret equal to undefined): keep only clearly bad ones.
  const plan: FuzzPlan = { hello: helloFrame, helloOk, frames: [], closer: undefined, describe: '' };
  if (!helloOk) {
    plan.describe = `bad hello ${JSON.stringify(helloFrame).slice(0, 120)}`;
    return plan;
  }
  const length = 10 + int(21);
  let id = 0;
  const corruptions: Array<(frame: Record<string, unknown>) => void> = [
    (f) => (f.requestId = pick(['', 7, null, 'x'.repeat(257), {}, []])),
    (f) => (f.timeoutMs = pick([0, -5, '100', 2 ** 31, 1e300, null, true, []])),
    (f) => (f.label = pick([5, {}, [], true, null])),
    (f) => (f.meta = pick([[], 'm', 7, null, true])),
    (f) =>
      (f.call = pick([
        null,
        [],
        'submit',
        { op: 'drop' },
        { op: 'submit' },
        { op: 'submit', method: '' },
        { op: 'call', name: 'x' },
        { op: 'call', name: 'append', args: {} },
        junk(),
      ])),
    (f) => ((f.call as Record<string, unknown>).method = `nope-${randomString(random, 6)}`),
    (f) => (f.call = { op: 'call', name: pick(['append', 'submit:append', randomString(random, 8)]), args: [junk()] }),
    (f) => ((f.call as Record<string, unknown>).params = pick([{ other: junk() }, { tag: null }, junk(3), [], 'tag'])),
    (f) => ((f.call as Record<string, unknown>).params = { tag: 'evil-big', pad: 'x'.repeat(MAX_PAYLOAD) }),
    (f) => {
      if (acked.length)
        f.requestId = pick(acked); // a known id, other params
      else f.requestId = '';
    },
  ];
  for (let i = 0; i < length; i++) {
    const r = random();
    if (r < 0.08) plan.frames.push({ type: 'ping', t: junk() as never });
    else if (r < 0.14) plan.frames.push({ type: 'cancel', id: junk() as never });
    else {
      const frame: Record<string, unknown> = {
        type: 'request',
        id: ++id,
        requestId: `evil-${randomString(random, 12)}`,
        call: { op: 'submit', method: 'append', params: { tag: `evil-${randomString(random, 8)}` } },
        timeoutMs: 10_000,
      };
      // Extra fields of any kind change nothing…
      for (let k = int(3); k > 0; k--) frame[pick(['extra', 'x', 'ok', 'result', 'error'])] = junk();
      // …and at least one corruption makes sure this request cannot write.
      for (let k = 1 + int(3); k > 0; k--) {
        try {
          pick(corruptions)(frame);
        } catch {
          frame.requestId = ''; // a field set on a `call` an earlier corruption made a non-object
        }
      }
      plan.frames.push(frame as Fuzzed);
    }
  }
  if (random() < 0.5) {
    const closers: Array<() => Buffer> = [
      () => Buffer.from(Array.from({ length: 1 + int(64) }, () => int(256))), // random bytes, random "header"
      () => withHeader(Buffer.from(Array.from({ length: 1 + int(64) }, () => int(256)))), // valid length, junk body
      () => withHeader(Buffer.from(JSON.stringify(pick([[], 1, 'x', null, { t: 1 }, { type: 3 }])))),
      () =>
        withHeader(
          Buffer.from(
            JSON.stringify({ type: pick(['hello', 'welcome', 'response', 'goodbye', randomString(random, 5)]) }),
          ),
        ),
      () => withHeader(Buffer.from(JSON.stringify({ type: 'request', id: pick([1.5, 'x', null, 2 ** 60]) }))),
      () => header(MAX_FRAME + 1 + int(1e6)),
    ];
    plan.closer = pick(closers)();
    plan.describe = `${plan.frames.length} frames then closer ${plan.closer.subarray(0, 24).toString('hex')}`;
  } else {
    plan.frames.push({ type: 'ping', t: 'end' });
    plan.describe = `${plan.frames.length} frames`;
  }
  return plan;
}

function randomString(random: () => number, length: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789-_é€\u0000"\\';
  let s = '';
  for (let i = 0; i < length; i++) s += alphabet[Math.floor(random() * alphabet.length)];
  return s;
}
