/**
 * `prom-client` and `@opentelemetry/api` are optional peers: only the `…/prometheus` and
 * `…/opentelemetry` entries may load them. Here they are made unloadable (as in an app that never
 * installed them) and the other entries are loaded from scratch.
 */
const OPTIONAL = ['prom-client', '@opentelemetry/api'];

/* eslint-disable @typescript-eslint/no-require-imports -- each entry is loaded afresh inside jest.isolateModules */

function withoutOptionalPeers<T>(load: () => T): T {
  let loaded!: T;
  jest.isolateModules(() => {
    for (const name of OPTIONAL) {
      jest.doMock(name, () => {
        throw new Error(`Cannot find module '${name}' (not installed in this test)`);
      });
    }
    loaded = load();
  });
  return loaded;
}

describe('the optional observability peers', () => {
  afterEach(() => OPTIONAL.forEach((name) => jest.dontMock(name)));

  it('are not needed by the main entry nor by the Nest-free entry', () => {
    const main = withoutOptionalPeers(() => require('@app/write-coordinator'));
    const core = withoutOptionalPeers(() => require('@app/write-coordinator/core'));
    expect(typeof main.WriteCoordinatorModule).toBe('function');
    expect(typeof core.Coordinator).toBe('function');
  });

  it('are needed by their own entries (so the check above can fail)', () => {
    expect(() =>
      withoutOptionalPeers(() => require('@app/write-coordinator/observability/prometheus')),
    ).toThrow("Cannot find module 'prom-client'");
    expect(() =>
      withoutOptionalPeers(() => require('@app/write-coordinator/observability/opentelemetry')),
    ).toThrow("Cannot find module '@opentelemetry/api'");
  });
});
