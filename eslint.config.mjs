// @ts-check
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'libs/*/dist/**', 'node_modules/**', 'coverage/**', 'jest.config.js', 'eslint.config.mjs'] },
  eslint.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // A queue lives on promises: every fire-and-forget must be marked with `void`.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // The layers: only the Nest face (the library's root files) and its decorators may use Nest.
    // Every folder below is Nest-free, so a plain script or worker can drive the Coordinator.
    files: ['libs/write-coordinator/src/*/**/*.ts'],
    ignores: ['libs/write-coordinator/src/decorators/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['@nestjs/*'],
              message: 'Nest-free layer: only the library root and decorators/ may import @nestjs/* (docs/design.md).',
            },
            {
              // The Nest face (root files, decorators/) sits above every folder: importing it would load Nest.
              group: ['../write-coordinator.*', '../optional-event-emitter', '../index', '../decorators/*'],
              message: 'Nest-free layer: the Nest face (root files, decorators/) may not be imported from below.',
            },
          ],
        },
      ],
      'no-restricted-syntax': [
        'error',
        {
          selector: "ImportExpression[source.value=/^@nestjs\\//], CallExpression[callee.name='require'][arguments.0.value=/^@nestjs\\//]",
          message: 'Nest-free layer: no dynamic import or require of @nestjs/* either.',
        },
      ],
    },
  },
  {
    files: ['scripts/**/*.mjs', 'bench/**/*.mjs', 'test/**/*.mjs', 'examples/**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      parserOptions: { projectService: false, project: null },
      globals: {
        console: 'readonly',
        process: 'readonly',
        fetch: 'readonly',
        performance: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        setImmediate: 'readonly',
        setTimeout: 'readonly',
      },
    },
  },
  {
    // CommonJS preload hooks and small programs for child processes.
    files: ['test/**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      sourceType: 'commonjs',
      parserOptions: { projectService: false, project: null },
      globals: { require: 'readonly', module: 'writable', process: 'readonly', console: 'readonly' },
    },
    rules: { ...tseslint.configs.disableTypeChecked.rules, '@typescript-eslint/no-require-imports': 'off' },
  },
);
