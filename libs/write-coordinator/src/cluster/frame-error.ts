/** Why a byte stream could not be read (or a frame could not be written) as cluster frames. */
export type FrameErrorReason = 'oversized' | 'malformed' | 'truncated' | 'not-an-object';

/**
 * A frame that breaks the wire format: larger than the maximum, not valid UTF-8 JSON, not a JSON
 * object with a string `type`, or cut off by the end of the connection. A channel that meets one
 * from its peer closes with it; {@link FrameChannel.send} throws it (`oversized`) for a frame too
 * large to send, and the channel stays open.
 */
export class FrameError extends Error {
  /** What was wrong with the frame. */
  readonly reason: FrameErrorReason;

  constructor(reason: FrameErrorReason, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.reason = reason;
  }
}
