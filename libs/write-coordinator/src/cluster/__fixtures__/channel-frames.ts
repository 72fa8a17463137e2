import type { Frame, FrameChannel } from '../transport';

/** Collects `count` frames from a channel (rejects if it closes first). For the transport specs. */
export function frames(channel: FrameChannel, count: number): Promise<Frame[]> {
  const seen: Frame[] = [];
  return new Promise((resolve, reject) => {
    channel.onFrame((frame) => {
      seen.push(frame);
      if (seen.length === count) resolve(seen);
    });
    channel.onClose((error) => reject(error ?? new Error(`closed after ${seen.length} of ${count} frames`)));
  });
}

/** Resolves with the error a channel closed with (undefined for a plain close). */
export function closed(channel: FrameChannel): Promise<Error | undefined> {
  return new Promise((resolve) => channel.onClose(resolve));
}
