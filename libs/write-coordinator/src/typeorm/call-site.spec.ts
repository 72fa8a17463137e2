import { appendCallSite, captureCallSite } from './call-site';

function submittedHere() {
  return captureCallSite();
}

describe('appendCallSite', () => {
  it("appends the submitter's frames below a separator, on the same error object, without the library's own", () => {
    const site = submittedHere(); // this spec sits in the library's folder: its frames are left out
    const error = new Error('failed in the drain');
    const own = error.stack!;
    expect(appendCallSite(error, site)).toBe(error);
    expect(error.stack!.startsWith(own)).toBe(true);
    const appended = error.stack!.slice(own.length).split('\n').slice(1);
    expect(appended[0]).toBe('    at <submitted from>');
    expect(appended.length).toBeGreaterThan(1); // Jest's frames that called this test
    expect(appended.every((line) => line.startsWith('    at '))).toBe(true);
    expect(appended.join('\n')).not.toMatch(/submittedHere|call-site/);
  });

  it('leaves values that are not errors with a writable string stack as they are', () => {
    const site = submittedHere();
    expect(appendCallSite('text', site)).toBe('text');
    expect(appendCallSite(undefined, site)).toBeUndefined();
    const noStack = { code: 'X' };
    expect(appendCallSite(noStack, site)).toEqual({ code: 'X' });
    const frozen = Object.freeze(new Error('frozen'));
    const before = frozen.stack;
    expect(appendCallSite(frozen, site)).toBe(frozen);
    expect(frozen.stack).toBe(before);
  });

  it('gives an error that reaches several callers no call site, and the same caller only one', () => {
    const error = new Error('a failed batch COMMIT');
    const own = error.stack;
    const first = submittedHere();
    appendCallSite(error, first);
    appendCallSite(error, first);
    expect(error.stack!.match(/<submitted from>/g)).toHaveLength(1);
    appendCallSite(error, submittedHere());
    expect(error.stack).toBe(own);
  });
});
