import { compileLibrary } from './fixtures/compiled-library';
import { createSchema, Member, rowsPerTag } from './fixtures/cluster-members';
import { tempDir } from './fixtures/temp-sqlite';

/** RELIABILITY_HEAVY=1 runs the heavier variants. */
const HEAVY = Boolean(process.env.RELIABILITY_HEAVY);

let lib: ReturnType<typeof compileLibrary>;
beforeAll(() => (lib = compileLibrary()));
afterAll(() => lib?.cleanup());

describe('cluster: several processes on one file', () => {
  let tmp: ReturnType<typeof tempDir>;
  const members: Member[] = [];
  const start = async (cluster: Record<string, unknown> = {}, options: Record<string, unknown> = {}) => {
    const member = await Member.start(lib.core, tmp.file('app.db'), cluster, options);
    members.push(member);
    return member;
  };
  beforeEach(() => {
    tmp = tempDir('wc-cluster-');
    createSchema(tmp.file('app.db'));
  });
  afterEach(async () => {
    for (const member of members.splice(0)) member.kill('SIGKILL');
    tmp.cleanup();
  });

  it('4 secondaries × 1,000 forwarded writes at once: each applied exactly once, each answer to its own caller', async () => {
    const primary = await start();
    const secondaries = [await start(), await start(), await start(), await start()];
    expect(primary.role).toBe('primary');
    expect(secondaries.map((s) => s.role)).toEqual(['secondary', 'secondary', 'secondary', 'secondary']);

    const outcomes = await Promise.all(
      secondaries.map((member, m) =>
        member.write(
          Array.from({ length: 1_000 }, (_, i) => `s${m}-${i}`),
          { concurrency: 16 },
        ),
      ),
    );

    const rows = rowsPerTag(tmp.file('app.db'));
    expect(rows.size).toBe(4_000);
    expect([...rows.values()].every((n) => n === 1)).toBe(true);
    outcomes.forEach((outcome, m) => {
      expect(outcome.nacks.size).toBe(0);
      expect(outcome.acks.size).toBe(1_000);
      for (const [tag, value] of outcome.acks) {
        expect(value.tag).toBe(tag); // its own result, not a neighbour's
        expect(value.by).toBe(primary.pid); // run on the primary
        expect(tag.startsWith(`s${m}-`)).toBe(true);
      }
    });
    const primaryMetrics = await primary.metrics();
    expect(primaryMetrics.cluster).toMatchObject({ role: 'primary', peers: 4, forwarded: 4_000, forwardedInFlight: 0 });
    expect(primaryMetrics.completed).toBe(4_000 + 1); // + the requests table
    for (const member of secondaries) {
      expect((await member.metrics()).cluster).toMatchObject({
        role: 'secondary',
        primaryPid: primary.pid,
        peers: 1,
        forwarded: 1_000,
        forwardedInFlight: 0,
      });
    }
  }, 120_000);

  it('streams every committed change to every secondary, in commit order', async () => {
    const primary = await start();
    const [a, b] = [await start(), await start()];
    await Promise.all([a.write(['a1', 'a2', 'a3']), b.write(['b1', 'b2']), primary.write(['p1'])]);
    const order = (await primary.changes()).tags;
    expect(order.sort()).toEqual(['a1', 'a2', 'a3', 'b1', 'b2', 'p1']);
    const committed = rowsPerTag(tmp.file('app.db'));
    expect(committed.size).toBe(6);
    for (const member of [a, b]) {
      const { tags, missed } = await member.changes();
      expect(tags).toHaveLength(6);
      expect(missed).toBe(0);
    }
    expect((await a.changes()).tags).toEqual((await b.changes()).tags);
  }, 60_000);

  it('a request sent again with the same id is applied once and answered with the recorded outcome', async () => {
    await start();
    const secondary = await start();
    const first = await secondary.write(['same-id']);
    const again = await secondary.write(['same-id', 'same-id']);
    expect(rowsPerTag(tmp.file('app.db')).get('same-id')).toBe(1);
    expect(again.acks.get('same-id')).toEqual(first.acks.get('same-id'));
  }, 60_000);

  it('SIGKILL of the primary under load, repeatedly: a new primary each time, every acknowledged write present exactly once, no caller left pending, the surviving secondary reports ChangesMissed', async () => {
    const cycles = HEAVY ? 50 : 10;
    let primary = await start({ retryMs: 20 });
    const secondaries = [await start({ retryMs: 20 }), await start({ retryMs: 20 })];
    const takeovers: number[] = [];
    const acked = new Set<string>();
    let resent = 0;
    for (let cycle = 0; cycle < cycles; cycle++) {
      const writers = secondaries.map((member, m) =>
        member.write(
          Array.from({ length: 300 }, (_, i) => `c${cycle}-m${m}-${i}`),
          { concurrency: 8, timeoutMs: 10_000 },
        ),
      );
      await new Promise((resolve) => setTimeout(resolve, 100));
      const killedAt = Date.now();
      primary.kill('SIGKILL');
      await primary.exited;
      const outcomes = await Promise.all(writers); // every caller answered
      for (const outcome of outcomes) {
        for (const tag of outcome.acks.keys()) acked.add(tag);
        for (const [tag, nack] of outcome.nacks) throw new Error(`${tag} failed: ${nack.code} ${nack.message}`);
      }
      for (const member of secondaries) resent += (await member.metrics()).cluster.resent as number;
      // The survivor that stayed a secondary reconnected to a new primary after a death without
      // goodbye: it says it may have missed changes (ChangesMissed, exact: false), never silently.
      const survivor = secondaries.find((member) => member.role === 'secondary')!;
      const { missedEvents } = await survivor.changes();
      expect(missedEvents.filter((e) => !e.exact).length).toBeGreaterThanOrEqual(1);
      const promoted = secondaries.find((member) => member.role === 'primary');
      expect(promoted).toBeDefined();
      takeovers.push(promoted!.roles.at(-1)!.at - killedAt);
      // The promoted member leaves the secondaries; a fresh process takes its place.
      secondaries.splice(secondaries.indexOf(promoted!), 1, await start({ retryMs: 20 }));
      primary = promoted!;
    }
    const rows = rowsPerTag(tmp.file('app.db'));
    for (const tag of acked) expect(rows.get(tag)).toBe(1);
    expect([...rows.values()].every((n) => n === 1)).toBe(true);
    console.log(
      `cluster failover: ${cycles} SIGKILLs of the primary, new primary after ${takeovers.join(', ')} ms; ` +
        `${resent} requests sent again after their primary died`,
    );
    expect(resent).toBeGreaterThan(0); // the kills did land on requests in flight
    expect(Math.max(...takeovers)).toBeLessThan(1_000); // the bound docs/cluster.md documents
  }, 180_000);
});
