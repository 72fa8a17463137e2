import { once } from 'node:events';
import * as net from 'node:net';
import { encodeFrame, FrameDecoder } from '@app/write-coordinator/cluster/frame-codec';
import type { Frame } from '@app/write-coordinator/cluster/transport';
import { createSchema, Member } from './fixtures/cluster-members';
import { compileLibrary } from './fixtures/compiled-library';
import { tempDir } from './fixtures/temp-sqlite';

/**
 * A real secondary member facing a scripted primary (a raw `net` server on the member's
 * `socketPath`), to put on the wire what a busy real primary only produces by chance: here the
 * welcome and the first change arrive in one chunk, as they do when a secondary connects to a
 * primary that is streaming changes (found by test/cluster-primaries.e2e-spec.ts).
 */
let lib: ReturnType<typeof compileLibrary>;
beforeAll(() => (lib = compileLibrary()));
afterAll(() => lib?.cleanup());

const LIMIT = 0xffff_ffff;

describe('cluster: what a secondary accepts from its primary', () => {
  let tmp: ReturnType<typeof tempDir>;
  let server: net.Server;
  let member: Member | undefined;
  beforeEach(() => {
    tmp = tempDir('wc-cluster-fake-');
    createSchema(tmp.file('app.db'));
  });
  afterEach(async () => {
    member?.kill();
    server?.close();
    tmp.cleanup();
  });

  it('frames that follow the welcome in the same chunk (a change) are received, not taken for a refusal', async () => {
    const socketPath = tmp.file('fake.sock');
    let connections = 0;
    const requests: Frame[] = [];
    server = net.createServer((socket) => {
      connections++;
      const decoder = new FrameDecoder(LIMIT);
      socket.on('error', () => undefined);
      socket.on('data', (chunk) => {
        for (const frame of decoder.push(chunk)) {
          if (frame.type === 'hello') {
            socket.write(
              Buffer.concat([
                encodeFrame({ type: 'welcome', protocol: 1, pid: 999_999, epoch: 'fake', seq: 0 }, LIMIT),
                encodeFrame(
                  {
                    type: 'change',
                    seq: 1,
                    change: { kind: 'request', method: 'append', params: { tag: 'from-the-primary' }, result: null },
                  },
                  LIMIT,
                ),
              ]),
            );
          } else if (frame.type === 'request') {
            requests.push(frame);
            const tag = ((frame.call as { params: { tag: string } }).params ?? {}).tag;
            socket.write(encodeFrame({ type: 'response', id: frame.id, ok: true, result: { id: 1, tag, by: 999_999 } }, LIMIT));
          } else if (frame.type === 'ping') {
            socket.write(encodeFrame({ type: 'pong', t: frame.t }, LIMIT));
          }
        }
      });
    });
    server.listen(socketPath);
    await once(server, 'listening');

    member = await Member.start(lib.core, tmp.file('app.db'), { role: 'secondary', socketPath, retryMs: 20 });
    const outcome = await member.write(['x'], { timeoutMs: 3_000 });
    expect([...outcome.nacks]).toEqual([]);
    expect(outcome.acks.get('x')).toEqual({ id: 1, tag: 'x', by: 999_999 });
    expect(requests).toHaveLength(1);
    expect((await member.changes()).tags).toEqual(['from-the-primary']);
    expect(connections).toBe(1); // it kept its first connection
    expect(member.log).not.toMatch(/refused/);
  }, 60_000);
});
