import { once } from 'node:events';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { TxData } from './node-files';

/** Who the primary is, from one node's point of view (`init` and `primaryChange` events). */
export interface PrimaryInfo {
  isPrimary: boolean;
  /** The primary's hostname; '' when the node is cut off from it. */
  hostname: string;
}

/** One line of LiteFS's `/events` stream. */
export type LiteFsEvent =
  | { type: 'init'; data: PrimaryInfo }
  | { type: 'primaryChange'; data: PrimaryInfo }
  | { type: 'tx'; db: string; data: TxData };

/**
 * The `GET /events` endpoint of one node: NDJSON, an `init` line first (from `initial()`), then each
 * event {@link send} gets, to every open stream. Every other path answers 404.
 */
export class NodeEventStream {
  private readonly server: Server;
  private readonly open = new Set<ServerResponse>();

  private constructor(private readonly initial: () => PrimaryInfo) {
    this.server = createServer((request, response) => this.handle(request, response));
  }

  /**
   * Listens on 127.0.0.1 on a free port.
   *
   * @param initial what the `init` line of a new stream says.
   */
  static async listen(initial: () => PrimaryInfo): Promise<NodeEventStream> {
    const stream = new NodeEventStream(initial);
    stream.server.listen(0, '127.0.0.1');
    await once(stream.server, 'listening');
    return stream;
  }

  /** `http://127.0.0.1:<port>/events`. */
  get url(): string {
    const { port } = this.server.address() as { port: number };
    return `http://127.0.0.1:${port}/events`;
  }

  /** Writes `event` as one line to every open stream. */
  send(event: LiteFsEvent): void {
    const line = `${JSON.stringify(event)}\n`;
    for (const response of this.open) response.write(line);
  }

  /** Ends every open stream and stops listening. */
  async close(): Promise<void> {
    for (const response of this.open) response.end();
    this.open.clear();
    const closed = once(this.server, 'close');
    this.server.close();
    this.server.closeAllConnections();
    await closed;
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    if (request.method !== 'GET' || new URL(request.url ?? '/', 'http://x').pathname !== '/events') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    response.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-cache' });
    response.write(`${JSON.stringify({ type: 'init', data: this.initial() } satisfies LiteFsEvent)}\n`);
    this.open.add(response);
    response.on('close', () => this.open.delete(response));
  }
}
