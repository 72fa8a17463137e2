import fc from 'fast-check';
import {
  FRAME_ENVELOPE_ALLOWANCE_BYTES,
  FRAME_HEADER_BYTES,
  FrameDecoder,
  encodeFrame,
  maxFrameBytesFor,
} from './frame-codec';
import { FrameError, type FrameErrorReason } from './frame-error';
import type { Frame } from './transport';

const MAX = 4096;

/** A frame whose JSON body is exactly `bytes` long (`{"type":"x","pad":"aaa…"}`). */
function frameOfSize(bytes: number): Frame {
  const overhead = Buffer.byteLength(JSON.stringify({ type: 'x', pad: '' }));
  return { type: 'x', pad: 'a'.repeat(bytes - overhead) };
}

/** A raw frame: a length prefix announcing `length` (default: the body's), then the body. */
function rawFrame(body: string | Buffer, length?: number): Buffer {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const header = Buffer.alloc(FRAME_HEADER_BYTES);
  header.writeUInt32BE(length ?? bytes.length, 0);
  return Buffer.concat([header, bytes]);
}

function reasonOf(run: () => unknown): FrameErrorReason | 'no error' {
  try {
    run();
  } catch (error) {
    if (error instanceof FrameError) return error.reason;
    throw error;
  }
  return 'no error';
}

const samples: Frame[] = [
  { type: 'ping' },
  { type: 'request', id: 7, meta: { requestId: 'r-1' }, args: [1, 'two', null, { three: [3] }] },
  { type: 'unicode', text: 'héllo wörld — 日本語 — 🦀🚀 — e\u0301 — \u2028\u2029', '🔑': '値' },
  { type: '', empty: {}, nested: { deep: { deeper: [[], [{}]] } } },
];

describe('encodeFrame / FrameDecoder', () => {
  it('exports the maximum frame size as maxPayloadBytes plus the envelope allowance', () => {
    expect(FRAME_ENVELOPE_ALLOWANCE_BYTES).toBe(64 * 1024);
    expect(maxFrameBytesFor(1024 * 1024)).toBe(2 * 1024 * 1024 + 64 * 1024);
  });

  it('writes a 4-byte big-endian length, then the UTF-8 JSON', () => {
    const frame = { type: 'é' };
    const encoded = encodeFrame(frame, MAX);
    const json = Buffer.from(JSON.stringify(frame), 'utf8');
    expect(encoded.readUInt32BE(0)).toBe(json.length);
    expect(encoded.subarray(4).equals(json)).toBe(true);
  });

  it('round-trips frames, unicode included', () => {
    const decoder = new FrameDecoder(MAX);
    for (const frame of samples) expect(decoder.push(encodeFrame(frame, MAX))).toEqual([frame]);
  });

  it('decodes many frames arriving in one chunk, in order', () => {
    const frames = Array.from({ length: 1000 }, (_, seq) => ({ type: 'seq', seq, text: '🦀'.repeat(seq % 7) }));
    const decoder = new FrameDecoder(MAX);
    expect(decoder.push(Buffer.concat(frames.map((frame) => encodeFrame(frame, MAX))))).toEqual(frames);
    expect(decoder.pendingBytes).toBe(0);
  });

  it('decodes the same frames whatever byte boundary splits the stream', () => {
    const stream = Buffer.concat(samples.map((frame) => encodeFrame(frame, MAX)));
    for (let cut = 0; cut <= stream.length; cut += 1) {
      const decoder = new FrameDecoder(MAX);
      const frames = [...decoder.push(stream.subarray(0, cut)), ...decoder.push(stream.subarray(cut))];
      expect(frames).toEqual(samples);
      expect(() => decoder.end()).not.toThrow();
    }
  });

  it('decodes a stream fed one byte at a time', () => {
    const stream = Buffer.concat(samples.map((frame) => encodeFrame(frame, MAX)));
    const decoder = new FrameDecoder(MAX);
    const frames: Frame[] = [];
    for (let i = 0; i < stream.length; i += 1) frames.push(...decoder.push(stream.subarray(i, i + 1)));
    expect(frames).toEqual(samples);
  });

  it('stops when onFrame returns false and resumes with the bytes it held at the next decode()', () => {
    const decoder = new FrameDecoder(MAX);
    const seen: Frame[] = [];
    const stream = Buffer.concat([encodeFrame({ type: 'a' }, MAX), encodeFrame({ type: 'b' }, MAX)]);
    decoder.decode(stream.subarray(0, stream.length - 1), (frame) => {
      seen.push(frame);
      return false;
    });
    expect(seen).toEqual([{ type: 'a' }]);
    expect(decoder.pendingBytes).toBe(stream.length - 1 - encodeFrame({ type: 'a' }, MAX).length);
    expect(decoder.push(stream.subarray(stream.length - 1))).toEqual([{ type: 'b' }]);
    expect(decoder.pendingBytes).toBe(0);
  });

  it('counts the bytes of a frame split across chunks as pending, and nothing once it is complete', () => {
    const encoded = encodeFrame(frameOfSize(1000), MAX);
    const decoder = new FrameDecoder(MAX);
    expect(decoder.push(encoded.subarray(0, 2))).toEqual([]);
    expect(decoder.pendingBytes).toBe(2);
    expect(decoder.push(encoded.subarray(2, 600))).toEqual([]);
    expect(decoder.pendingBytes).toBe(600);
    expect(decoder.push(encoded.subarray(600))).toEqual([frameOfSize(1000)]);
    expect(decoder.pendingBytes).toBe(0);
  });

  it('round-trips random frames cut into random chunks (property)', () => {
    const json = fc.jsonValue({ maxDepth: 3 });
    const frame = fc.record({ type: fc.string(), body: json }, { requiredKeys: ['type'] }) as fc.Arbitrary<Frame>;
    fc.assert(
      fc.property(fc.array(frame, { maxLength: 8 }), fc.array(fc.nat(64), { maxLength: 20 }), (frames, cuts) => {
        // JSON normalises -0 to 0 and drops undefined: compare against what JSON itself yields.
        const expected = frames.map((f) => JSON.parse(JSON.stringify(f)) as Frame);
        const stream = Buffer.concat(frames.map((f) => encodeFrame(f, 1 << 20)));
        const decoder = new FrameDecoder(1 << 20);
        const out: Frame[] = [];
        let at = 0;
        for (const cut of cuts) {
          out.push(...decoder.push(stream.subarray(at, at + cut)));
          at = Math.min(stream.length, at + cut);
        }
        out.push(...decoder.push(stream.subarray(at)));
        decoder.end();
        expect(out).toEqual(expected);
      }),
      { numRuns: 300 },
    );
  });

  describe('at the size limit', () => {
    it('accepts a frame of exactly the maximum, both ways', () => {
      const frame = frameOfSize(MAX);
      const encoded = encodeFrame(frame, MAX);
      expect(encoded.length).toBe(FRAME_HEADER_BYTES + MAX);
      expect(new FrameDecoder(MAX).push(encoded)).toEqual([frame]);
    });

    it('refuses to encode a frame one byte over the maximum (oversized)', () => {
      expect(() => encodeFrame(frameOfSize(MAX + 1), MAX)).toThrow(
        new FrameError('oversized', `frame of ${MAX + 1} bytes exceeds maxPayloadBytes (${MAX})`),
      );
      expect(reasonOf(() => encodeFrame(frameOfSize(MAX + 1), MAX))).toBe('oversized');
    });

    it('rejects a length prefix one over the maximum as soon as its 4th byte arrives, buffering none of the body', () => {
      const header = rawFrame('', MAX + 1);
      const decoder = new FrameDecoder(MAX);
      expect(decoder.push(header.subarray(0, 3))).toEqual([]);
      expect(reasonOf(() => decoder.push(header.subarray(3, 4)))).toBe('oversized');
      expect(decoder.pendingBytes).toBe(0);
      const withBody = new FrameDecoder(MAX);
      expect(reasonOf(() => withBody.push(rawFrame('x'.repeat(100), MAX + 1)))).toBe('oversized');
      expect(withBody.pendingBytes).toBe(0);
    });

    it('rejects a length prefix of 2^32 - 1 (oversized)', () => {
      expect(reasonOf(() => new FrameDecoder(MAX).push(rawFrame('', 0xffff_ffff)))).toBe('oversized');
    });

    it('refuses a maximum that is not an integer from 1 to 2^32 - 1', () => {
      for (const bad of [0, -1, 1.5, 2 ** 32, Number.NaN]) {
        expect(() => new FrameDecoder(bad)).toThrow(RangeError);
      }
    });
  });

  describe('when the peer sends what is not a frame', () => {
    it.each([
      { what: 'invalid JSON', bytes: rawFrame('{"type":'), reason: 'malformed' },
      { what: 'an empty body', bytes: rawFrame(''), reason: 'malformed' },
      { what: 'invalid UTF-8', bytes: rawFrame(Buffer.from([0x7b, 0xff, 0xfe, 0x7d])), reason: 'malformed' },
      { what: 'an array', bytes: rawFrame('[{"type":"x"}]'), reason: 'not-an-object' },
      { what: 'null', bytes: rawFrame('null'), reason: 'not-an-object' },
      { what: 'a number', bytes: rawFrame('42'), reason: 'not-an-object' },
      { what: 'a string', bytes: rawFrame('"type"'), reason: 'not-an-object' },
      { what: 'an object without type', bytes: rawFrame('{"kind":"x"}'), reason: 'not-an-object' },
      { what: 'an object whose type is not a string', bytes: rawFrame('{"type":5}'), reason: 'not-an-object' },
    ] as const)('rejects $what ($reason)', ({ bytes, reason }) => {
      expect(reasonOf(() => new FrameDecoder(MAX).push(bytes))).toBe(reason);
    });

    it('says what is wrong in the message', () => {
      expect(() => new FrameDecoder(MAX).push(rawFrame('{nope'))).toThrow(/^frame is not valid JSON: /);
      expect(() => new FrameDecoder(MAX).push(rawFrame('[]'))).toThrow(
        'frame is not a JSON object with a string `type`',
      );
    });

    it('stays failed: later chunks throw the same error', () => {
      const decoder = new FrameDecoder(MAX);
      let first: unknown;
      try {
        decoder.push(rawFrame('nope'));
      } catch (error) {
        first = error;
      }
      expect(first).toBeInstanceOf(FrameError);
      expect(() => decoder.push(encodeFrame({ type: 'ok' }, MAX))).toThrow(first as Error);
      expect(() => decoder.end()).toThrow(first as Error);
    });

    it('hands over the frames that precede a bad one through decode()', () => {
      const decoder = new FrameDecoder(MAX);
      const seen: Frame[] = [];
      const stream = Buffer.concat([encodeFrame({ type: 'a' }, MAX), encodeFrame({ type: 'b' }, MAX), rawFrame('{')]);
      expect(() => decoder.decode(stream, (frame) => void seen.push(frame))).toThrow(FrameError);
      expect(seen).toEqual([{ type: 'a' }, { type: 'b' }]);
    });

    it('refuses to encode a frame JSON cannot represent (malformed)', () => {
      const cyclic: Frame = { type: 'loop' };
      cyclic.self = cyclic;
      expect(reasonOf(() => encodeFrame(cyclic, MAX))).toBe('malformed');
    });
  });

  describe('at the end of the stream', () => {
    it('accepts an end between frames', () => {
      const decoder = new FrameDecoder(MAX);
      decoder.push(encodeFrame({ type: 'a' }, MAX));
      expect(() => decoder.end()).not.toThrow();
    });

    it('reports a frame cut inside its body (truncated), with how much arrived', () => {
      const decoder = new FrameDecoder(MAX);
      decoder.push(rawFrame('x'.repeat(12), 36).subarray(0, 16));
      expect(() => decoder.end()).toThrow(
        new FrameError('truncated', 'connection closed inside a frame (16 of 40 bytes)'),
      );
    });

    it('reports a frame cut inside its length prefix (truncated)', () => {
      const decoder = new FrameDecoder(MAX);
      decoder.push(Buffer.from([0, 0]));
      expect(reasonOf(() => decoder.end())).toBe('truncated');
    });

    it('reports a complete header whose body never came (truncated)', () => {
      const decoder = new FrameDecoder(MAX);
      decoder.push(rawFrame('', 10));
      expect(reasonOf(() => decoder.end())).toBe('truncated');
    });
  });
});
