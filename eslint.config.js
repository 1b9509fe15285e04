// One lint setup for the whole repository: typescript-eslint's recommended rules for src/ and the
// TypeScript tests, eslint's own recommended rules for the plain ESM support scripts.
import js from '@eslint/js'
import globals from 'globals'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '__tests__/e2e/node24/', 'coverage/'] },
  js.configs.recommended,
  { languageOptions: { globals: { ...globals.node }, ecmaVersion: 2023, sourceType: 'module' } },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommended],
    rules: {
      // registry answers and action.yml are untyped JSON: `any` at those edges is deliberate
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }]
    }
  },
  {
    files: ['**/*.test.ts', '__tests__/**/*.ts'],
    languageOptions: { globals: { ...globals.jest } },
    rules: { '@typescript-eslint/ban-ts-comment': 'off' }
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    rules: {
      'no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      'no-empty': ['error', { allowEmptyCatch: true }]
    }
  }
)
