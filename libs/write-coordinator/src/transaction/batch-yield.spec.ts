import { BatchYieldPolicy } from './batch-yield';

describe('BatchYieldPolicy', () => {
  it("never yields with 'never' and always with 'always', whatever a COMMIT costs", () => {
    const never = new BatchYieldPolicy('never');
    const always = new BatchYieldPolicy('always');
    for (const ms of [0, 0.01, 5, 50]) {
      never.committed(ms);
      always.committed(ms);
      expect(never.worthIt()).toBe(false);
      expect(always.worthIt()).toBe(true);
    }
  });

  it("with 'auto', yields only once COMMITs cost far more than a yield (an fsync), and stops when they get cheap", () => {
    const policy = new BatchYieldPolicy('auto');
    expect(policy.worthIt()).toBe(false); // nothing measured yet
    for (let i = 0; i < 20; i++) policy.committed(0.05); // a COMMIT at NORMAL in WAL mode
    expect(policy.worthIt()).toBe(false);
    for (let i = 0; i < 20; i++) policy.committed(3); // an fsync at FULL
    expect(policy.worthIt()).toBe(true);
    for (let i = 0; i < 40; i++) policy.committed(0.05);
    expect(policy.worthIt()).toBe(false);
  });

  it("with 'auto', stops yielding when useless yields cost as much as a tenth of a COMMIT", async () => {
    const policy = new BatchYieldPolicy('auto');
    for (let i = 0; i < 20; i++) policy.committed(0.5);
    expect(policy.worthIt()).toBe(true);
    for (let i = 0; i < 60; i++) {
      const yielded = policy.yield();
      const until = performance.now() + 0.2; // the event loop is busy for 0.2 ms during the yield
      while (performance.now() < until);
      await yielded;
      policy.yielded(false);
    }
    // One yield that brings a job ends the back-off, so what is left is the cost comparison alone.
    await policy.yield();
    policy.yielded(true);
    expect(policy.worthIt()).toBe(false);
  });

  it("with 'auto', does not count a yield that brought jobs as a cost (their handlers ran in it)", async () => {
    const policy = new BatchYieldPolicy('auto');
    for (let i = 0; i < 20; i++) policy.committed(0.5);
    for (let i = 0; i < 60; i++) {
      const yielded = policy.yield();
      const until = performance.now() + 0.2;
      while (performance.now() < until);
      await yielded;
      policy.yielded(true);
    }
    expect(policy.worthIt()).toBe(true);
  });

  it('does not yield when a member must be answered soon: a yield cannot be cut short', async () => {
    const always = new BatchYieldPolicy('always');
    expect(always.worthIt(Infinity)).toBe(true); // no deadline in the batch
    expect(always.worthIt(50)).toBe(true);
    expect(always.worthIt(9)).toBe(false); // under 10 ms of slack
    for (let i = 0; i < 30; i++) {
      const yielded = always.yield();
      const until = performance.now() + 5; // yields that take 5 ms (other callbacks ran)
      while (performance.now() < until);
      await yielded;
      always.yielded(true);
    }
    expect(always.worthIt(15)).toBe(false); // less than 4 times what yields take now
    expect(always.worthIt(25)).toBe(true);
    expect(new BatchYieldPolicy('never').worthIt(Infinity)).toBe(false);
  });

  it("with 'auto', backs off while yields bring nothing (a lone caller), and yields at every chance once one brings a job", async () => {
    const policy = new BatchYieldPolicy('auto');
    for (let i = 0; i < 20; i++) policy.committed(3);
    const chances: boolean[] = [];
    for (let i = 0; i < 40; i++) {
      const yes = policy.worthIt();
      chances.push(yes);
      if (yes) {
        await policy.yield();
        policy.yielded(false);
      }
    }
    // After 1, 2, 3, 4 useless yields in a row: skip 1, 3, 7, then 15 chances each time.
    expect(chances.slice(0, 16).map(Number).join('')).toBe('1010001000000010');
    expect(chances.filter(Boolean).length).toBe(5);
    await policy.yield();
    policy.yielded(true); // traffic arrived
    expect([policy.worthIt(), policy.worthIt(), policy.worthIt()]).toEqual([true, true, true]);
  });
});
