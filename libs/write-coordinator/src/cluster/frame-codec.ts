import { FrameError } from './frame-error';
import type { Frame } from './transport';

/** Bytes of the length prefix: an unsigned 32-bit big-endian count of the JSON bytes that follow. */
export const FRAME_HEADER_BYTES = 4;

/**
 * Room a frame may take beyond the user's payloads (the envelope: type, ids, meta, handler name,
 * error fields). The maximum frame size is `2 × maxPayloadBytes + FRAME_ENVELOPE_ALLOWANCE_BYTES`:
 * a change carries a request's params and its result, each up to `maxPayloadBytes`.
 */
export const FRAME_ENVELOPE_ALLOWANCE_BYTES = 64 * 1024;

/** The largest body a 4-byte length prefix can announce. */
const MAX_ENCODABLE_BYTES = 0xffff_ffff;

/**
 * The maximum size of a frame's JSON body for a coordinator whose `maxPayloadBytes` is given.
 * @param maxPayloadBytes The coordinator's `maxPayloadBytes` option (default 1 MiB).
 * @returns `2 × maxPayloadBytes + FRAME_ENVELOPE_ALLOWANCE_BYTES`, capped at what 4 bytes can announce.
 */
export function maxFrameBytesFor(maxPayloadBytes: number): number {
  return Math.min(2 * maxPayloadBytes + FRAME_ENVELOPE_ALLOWANCE_BYTES, MAX_ENCODABLE_BYTES);
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
 * Turns a byte stream back into frames. Chunks may split frames anywhere. A frame lying within one
 * chunk is parsed in place; a frame split across chunks is copied once into a buffer of its announced
 * size, so a large frame arriving in many small chunks costs linear time and holds no chunk objects.
 *
 * After the first error the decoder is spent: every later call throws that error again.
 */
export class FrameDecoder {
  private readonly header = Buffer.alloc(FRAME_HEADER_BYTES);
  /** Bytes of {@link header} received while a length prefix is split across chunks. */
  private headerFilled = 0;
  /** Length of the body being awaited, or -1 while the next header is awaited. */
  private bodyLength = -1;
  /** The body of a frame split across chunks, filled up to {@link bodyFilled}. */
  private body: Buffer | undefined;
  private bodyFilled = 0;
  /** Bytes left undecoded when an `onFrame` callback asked {@link decode} to stop. */
  private held: Buffer | undefined;
  private failure: FrameError | undefined;
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

  /**
   * @param maxBytes The largest JSON body accepted (see {@link maxFrameBytesFor}).
   * @throws {RangeError} when `maxBytes` is not an integer from 1 to 2^32 - 1.
   */
  constructor(private readonly maxBytes: number) {
    assertMaxFrameBytes(maxBytes, 'maxBytes');
  }

  /** Bytes received that are not yet part of a decoded frame. */
  get pendingBytes(): number {
    return (
      this.headerFilled + (this.bodyLength >= 0 ? FRAME_HEADER_BYTES : 0) + this.bodyFilled + (this.held?.length ?? 0)
    );
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
   * returns `false`; the rest is kept and decoded first by the next call.
   */
  decode(chunk: Uint8Array, onFrame: (frame: Frame) => boolean | void): void {
    if (this.failure) throw this.failure;
    let input = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    if (this.held) {
      input = Buffer.concat([this.held, input]);
      this.held = undefined;
    }
    let at = 0;
    for (;;) {
      if (this.bodyLength < 0) {
        let length: number;
        if (this.headerFilled === 0 && input.length - at >= FRAME_HEADER_BYTES) {
          length = input.readUInt32BE(at);
          at += FRAME_HEADER_BYTES;
        } else {
          const n = Math.min(FRAME_HEADER_BYTES - this.headerFilled, input.length - at);
          input.copy(this.header, this.headerFilled, at, at + n);
          this.headerFilled += n;
          at += n;
          if (this.headerFilled < FRAME_HEADER_BYTES) return;
          this.headerFilled = 0;
          length = this.header.readUInt32BE(0);
        }
        if (length > this.maxBytes) {
          this.fail(new FrameError('oversized', `frame of ${length} bytes exceeds maxPayloadBytes (${this.maxBytes})`));
        }
        this.bodyLength = length;
      }
      let body: Buffer;
      if (this.body === undefined && input.length - at >= this.bodyLength) {
        body = input.subarray(at, at + this.bodyLength);
        at += this.bodyLength;
      } else {
        this.body ??= Buffer.allocUnsafe(this.bodyLength);
        const n = Math.min(this.bodyLength - this.bodyFilled, input.length - at);
        input.copy(this.body, this.bodyFilled, at, at + n);
        this.bodyFilled += n;
        at += n;
        if (this.bodyFilled < this.bodyLength) return;
        body = this.body;
        this.body = undefined;
        this.bodyFilled = 0;
      }
      this.bodyLength = -1;
      if (onFrame(this.parse(body)) === false) {
        if (at < input.length) this.held = input.subarray(at);
        return;
      }
    }
  }

  /**
   * Declares the end of the stream.
   * @throws {FrameError} `truncated` when bytes that are not a whole frame remain (or bytes left
   *   undecoded after `onFrame` stopped {@link decode}).
   */
  end(): void {
    if (this.failure) throw this.failure;
    if (this.held) {
      this.fail(new FrameError('truncated', `stream ended with ${this.held.length} bytes not yet decoded`));
    }
    if (this.headerFilled > 0) {
      this.fail(
        new FrameError(
          'truncated',
          `connection closed inside a frame header (${this.headerFilled} of ${FRAME_HEADER_BYTES} bytes)`,
        ),
      );
    }
    if (this.bodyLength >= 0) {
      const total = FRAME_HEADER_BYTES + this.bodyLength;
      this.fail(
        new FrameError(
          'truncated',
          `connection closed inside a frame (${total - this.bodyLength + this.bodyFilled} of ${total} bytes)`,
        ),
      );
    }
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

  private fail(error: FrameError): never {
    this.failure = error;
    this.body = undefined;
    this.held = undefined;
    throw error;
  }
}
