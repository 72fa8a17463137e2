// Nest 12 packages are ESM-only: @swc/jest transpiles our TypeScript and the @nestjs packages to
// CommonJS so Jest on Node 20 can load them. swc does not type-check; `npm run typecheck` does.
const swc = [
  '@swc/jest',
  {
    jsc: {
      parser: { syntax: 'typescript', decorators: true },
      transform: { legacyDecorator: true, decoratorMetadata: true },
      target: 'es2022',
    },
    module: { type: 'commonjs' },
  },
];

const shared = {
  testEnvironment: 'node',
  transform: { '^.+\\.(t|j|mj)s$': swc },
  transformIgnorePatterns: ['/node_modules/(?!@nestjs/)'],
  moduleFileExtensions: ['ts', 'js', 'mjs', 'json'],
  moduleNameMapper: {
    // The package name, as the demo and users import it (its entries, as in its `exports`).
    '^nestjs-sqlite-write-coordinator$': '<rootDir>/libs/write-coordinator/src',
    '^nestjs-sqlite-write-coordinator/core$': '<rootDir>/libs/write-coordinator/src/core',
    '^nestjs-sqlite-write-coordinator/prometheus$': '<rootDir>/libs/write-coordinator/src/observability/prometheus',
    '^nestjs-sqlite-write-coordinator/opentelemetry$': '<rootDir>/libs/write-coordinator/src/observability/opentelemetry',
    // The monorepo alias the tests use.
    '^@app/write-coordinator$': '<rootDir>/libs/write-coordinator/src',
    '^@app/write-coordinator/(.*)$': '<rootDir>/libs/write-coordinator/src/$1',
  },
};

/** @type {import('jest').Config} */
module.exports = {
  projects: [
    { ...shared, displayName: 'unit', testMatch: ['<rootDir>/libs/**/*.spec.ts'] },
    { ...shared, displayName: 'e2e', testMatch: ['<rootDir>/test/**/*.e2e-spec.ts'] },
  ],
};
