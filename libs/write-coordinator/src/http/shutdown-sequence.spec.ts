import { ShutdownSequence } from './shutdown-sequence';

/** The shutdown phases without Nest or a server (no HTTP: the coordinators drain straight away). */
describe('ShutdownSequence', () => {
  const quiet = () => {
    const lines: string[] = [];
    return { lines, log: { log: (m: string) => lines.push(m), warn: (m: string) => lines.push(m) } };
  };

  it('holds readiness for the largest readinessDelayMs on SIGTERM, then drains; runs once for every coordinator', async () => {
    const { lines, log } = quiet();
    const sequence = new ShutdownSequence(log);
    sequence.configure({ readinessDelayMs: 20, graceMs: 100 });
    sequence.configure({ readinessDelayMs: 80, graceMs: 50 });
    const first = sequence.beforeDrain('SIGTERM');
    expect(sequence.phase).toBe('readiness-delay');
    expect(sequence.beforeDrain('SIGTERM')).toBe(first); // a second coordinator awaits the same run
    await first;
    expect(sequence.phase).toBe('draining');
    expect(lines[0]).toContain('readiness reports 503 for 80 ms');
    expect(lines[1]).toContain('draining writes (shutdownGraceMs 100)');
    sequence.finished();
    expect(sequence.phase).toBe('stopped');
  });

  it.each([['SIGINT'], [undefined]])('goes straight to draining on %s (no readiness delay)', async (signal) => {
    const { lines, log } = quiet();
    const sequence = new ShutdownSequence(log);
    sequence.configure({ readinessDelayMs: 60_000, graceMs: 10 }); // would outlast the test's timeout
    await sequence.beforeDrain(signal);
    expect(sequence.phase).toBe('draining');
    expect(lines.some((line) => line.includes('readiness reports 503'))).toBe(false);
  });
});
