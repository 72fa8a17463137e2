import { FrameError } from './frame-error';
import type { Frame } from './transport';

/** Bytes of the length prefix: an unsigned 32-bit big-endian count of the JSON bytes that follow. */
export const FRAME_HEADER_BYTES = 4;

/**
 * Room a frame may take beyond the user's payload (the envelope: type, ids, meta, handler name, error
 * fields). The maximum frame size is `maxPayloadBytes + FRAME_ENVELOPE_ALLOWANCE_BYTES`.
 */
export const FRAME_ENVELOPE_ALLOWANCE_BYTES = 64 * 1024;

/** The largest body a 4-byte length prefix can announce. */
const MAX_ENCODABLE_BYTES = 0xffff_ffff;

/**
 * The maximum size of a frame's JSON body for a coordinator whose `maxPayloadBytes` is given.
 * @param maxPayloadBytes The coordinator's `maxPayloadBytes` option (default 1 MiB).
 * @returns `maxPayloadBytes + FRAME_ENVELOPE_ALLOWANCE_BYTES`, capped at what 4 bytes can announce.
 */
export function maxFrameBytesFor(maxPayloadBytes: number): number {
  return Math.min(maxPayloadBytes + FRAME_ENVELOPE_ALLOWANCE_BYTES, MAX_ENCODABLE_BYTES);
}

/**
 * @internal Throws a RangeError naming `field` unless `value` is a usable frame size limit.
 */
export function assertMaxFrameBytes(value: unknown, field = 'maxFrameBytes'): asserts value is number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_ENCODABLE_BYTES) {
    throw new RangeError(
      `${field} must be an integer from 1 to ${MAX_ENCODABLE_BYTES} (received ${String(value)}, ${typeof value})`,
    );
  }
}

/**
 * Encodes one frame: the 4-byte big-endian length of its UTF-8 JSON, then the JSON.
 * @param frame The frame to send.
 * @param maxBytes The largest JSON body allowed (see {@link maxFrameBytesFor}).
 * @returns A buffer holding the whole frame, header included.
 * @throws {FrameError} `oversized` when the JSON is longer than `maxBytes`; `malformed` when the
 *   frame cannot be serialised (a cycle, a BigInt).
 */
export function encodeFrame(frame: Frame, maxBytes: number): Buffer {
  let json: string;
  try {
    json = JSON.stringify(frame);
  } catch (error) {
    throw new FrameError(
      'malformed',
      `frame of type "${String(frame.type)}" cannot be serialised to JSON: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
  const length = Buffer.byteLength(json, 'utf8');
  if (length > maxBytes) {
    throw new FrameError('oversized', `frame of ${length} bytes exceeds maxPayloadBytes (${maxBytes})`);
  }
  const buffer = Buffer.allocUnsafe(FRAME_HEADER_BYTES + length);
  buffer.writeUInt32BE(length, 0);
  buffer.write(json, FRAME_HEADER_BYTES, 'utf8');
  return buffer;
}

/**
 * Turns a byte stream back into frames. Chunks may split frames anywhere; bytes are copied at most
 * once (a frame lying within one chunk is parsed in place), so a large frame arriving in many small
 * chunks costs linear time.
 *
 * After the first error the decoder is spent: every later call throws that error again.
 */
export class FrameDecoder {
  /**
   * Chunks not yet consumed are `chunks[head..]`; the first starts at {@link offset}. Consumed
   * chunks are dropped in bulk (never one `shift()` each, which would make many tiny chunks quadratic).
   */
  private chunks: Buffer[] = [];
  private head = 0;
  private offset = 0;
  /** Unconsumed bytes across {@link chunks}. */
  private buffered = 0;
  /** Length of the body being awaited, or -1 while the next header is awaited. */
  private bodyLength = -1;
  private failure: FrameError | undefined;
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

  /**
   * @param maxBytes The largest JSON body accepted (see {@link maxFrameBytesFor}).
   * @throws {RangeError} when `maxBytes` is not an integer from 1 to 2^32 - 1.
   */
  constructor(private readonly maxBytes: number) {
    assertMaxFrameBytes(maxBytes, 'maxBytes');
  }

  /** Bytes held for a frame not yet complete. */
  get pendingBytes(): number {
    return this.buffered;
  }

  /**
   * Adds a chunk and returns the frames it completes, in order.
   * @throws {FrameError} `oversized` as soon as a length prefix above the maximum has arrived (its
   *   body is never buffered), `malformed` for a body that is not UTF-8 JSON, `not-an-object` for JSON
   *   that is not an object with a string `type`. Frames completed before the bad one are lost: use
   *   {@link decode} to receive them.
   */
  push(chunk: Uint8Array): Frame[] {
    const frames: Frame[] = [];
    this.decode(chunk, (frame) => {
      frames.push(frame);
    });
    return frames;
  }

  /**
   * Adds a chunk and hands every frame it completes to `onFrame`, in order, then throws if a bad
   * frame follows them (same errors as {@link push}). Stops early, without error, once `onFrame`
   * returns `false`.
   */
  decode(chunk: Uint8Array, onFrame: (frame: Frame) => boolean | void): void {
    if (this.failure) throw this.failure;
    if (chunk.length > 0) {
      this.chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
      this.buffered += chunk.length;
    }
    for (;;) {
      if (this.bodyLength < 0) {
        if (this.buffered < FRAME_HEADER_BYTES) return;
        const length = this.take(FRAME_HEADER_BYTES).readUInt32BE(0);
        if (length > this.maxBytes) {
          this.fail(new FrameError('oversized', `frame of ${length} bytes exceeds maxPayloadBytes (${this.maxBytes})`));
        }
        this.bodyLength = length;
      }
      if (this.buffered < this.bodyLength) return;
      const body = this.take(this.bodyLength);
      this.bodyLength = -1;
      if (onFrame(this.parse(body)) === false) return;
    }
  }

  /**
   * Declares the end of the stream.
   * @throws {FrameError} `truncated` when the bytes of an incomplete frame remain.
   */
  end(): void {
    if (this.failure) throw this.failure;
    if (this.buffered === 0 && this.bodyLength < 0) return;
    const message =
      this.bodyLength < 0
        ? `connection closed inside a frame header (${this.buffered} of ${FRAME_HEADER_BYTES} bytes)`
        : `connection closed inside a frame (${FRAME_HEADER_BYTES + this.buffered} of ${FRAME_HEADER_BYTES + this.bodyLength} bytes)`;
    this.fail(new FrameError('truncated', message));
  }

  private parse(body: Buffer): Frame {
    let value: unknown;
    try {
      value = JSON.parse(this.utf8.decode(body));
    } catch (error) {
      this.fail(new FrameError('malformed', `frame is not valid JSON: ${(error as Error).message}`, { cause: error }));
    }
    if (
      typeof value !== 'object' ||
      value === null ||
      Array.isArray(value) ||
      typeof (value as Frame).type !== 'string'
    ) {
      this.fail(new FrameError('not-an-object', 'frame is not a JSON object with a string `type`'));
    }
    return value as Frame;
  }

  /** Removes `length` bytes from the front; a copy only when they span chunks. */
  private take(length: number): Buffer {
    this.buffered -= length;
    const first = this.chunks[this.head];
    if (first !== undefined && first.length - this.offset >= length) {
      const bytes = first.subarray(this.offset, this.offset + length);
      this.advance(first, length);
      return bytes;
    }
    const out = Buffer.allocUnsafe(length);
    let filled = 0;
    while (filled < length) {
      const chunk = this.chunks[this.head]!;
      const n = Math.min(chunk.length - this.offset, length - filled);
      chunk.copy(out, filled, this.offset, this.offset + n);
      filled += n;
      this.advance(chunk, n);
    }
    return out;
  }

  private advance(chunk: Buffer, n: number): void {
    this.offset += n;
    if (this.offset === chunk.length) {
      this.offset = 0;
      this.head += 1;
      if (this.head === this.chunks.length) {
        this.chunks = [];
        this.head = 0;
      } else if (this.head >= 1024 && this.head * 2 >= this.chunks.length) {
        this.chunks = this.chunks.slice(this.head);
        this.head = 0;
      }
    }
  }

  private fail(error: FrameError): never {
    this.failure = error;
    this.chunks = [];
    this.head = 0;
    this.offset = 0;
    this.buffered = 0;
    throw error;
  }
}
