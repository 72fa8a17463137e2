import { ClientRequest, get, IncomingMessage } from 'node:http';
import type { LiteFsEvent } from './event-stream';

/** Reads one node's `GET /events` NDJSON stream and keeps every event, in order. */
export class EventRecorder {
  /** Every event received so far. */
  readonly events: LiteFsEvent[] = [];
  private readonly waiters = new Set<() => void>();
  private buffered = '';

  private constructor(private readonly request: ClientRequest) {}

  /**
   * Opens the stream and waits for its first event (LiteFS's `init`).
   *
   * @throws {Error} if the answer is not 200, or no event comes within 10 s.
   */
  static async connect(url: string): Promise<EventRecorder> {
    let recorder!: EventRecorder;
    const response = await new Promise<IncomingMessage>((resolve, reject) => {
      recorder = new EventRecorder(get(url, resolve).on('error', reject));
    });
    if (response.statusCode !== 200) throw new Error(`GET ${url} answered ${String(response.statusCode)}`);
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => recorder.receive(chunk));
    response.on('error', () => undefined);
    await recorder.until((events) => events.length > 0);
    return recorder;
  }

  /** The events of one type. */
  ofType<T extends LiteFsEvent['type']>(type: T): Extract<LiteFsEvent, { type: T }>[] {
    return this.events.filter((event): event is Extract<LiteFsEvent, { type: T }> => event.type === type);
  }

  /**
   * Resolves once `predicate` holds for the events received.
   *
   * @throws {Error} after `timeoutMs`, listing the events received.
   */
  until(predicate: (events: LiteFsEvent[]) => boolean, timeoutMs = 10_000): Promise<void> {
    if (predicate(this.events)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!predicate(this.events)) return;
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check);
        reject(new Error(`events never matched; received:\n${this.events.map((e) => JSON.stringify(e)).join('\n')}`));
      }, timeoutMs);
      this.waiters.add(check);
    });
  }

  /** Closes the stream. */
  close(): void {
    this.request.destroy();
  }

  private receive(chunk: string): void {
    this.buffered += chunk;
    let end: number;
    while ((end = this.buffered.indexOf('\n')) >= 0) {
      this.events.push(JSON.parse(this.buffered.slice(0, end)) as LiteFsEvent);
      this.buffered = this.buffered.slice(end + 1);
    }
    for (const waiter of [...this.waiters]) waiter();
  }
}
