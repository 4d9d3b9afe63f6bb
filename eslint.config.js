import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'web-ui/public/vendor/**', '.lab/**', 'coverage/**'] },
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  {
    // The raw database handle never leaves store/ (issue 15): product code outside it gets Repos (typed
    // stores) and `Store` (journaled write transactions, replication, backup), never SQL. Tests and
    // benches may open a connection of their own to a database file, as an outsider would.
    files: ['master/**/*.ts', 'web-ui/**/*.ts'],
    ignores: ['master/store/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'better-sqlite3', message: 'SQL stays in master/store/: add a method to a store there.' },
          ],
          patterns: [
            {
              group: ['**/store/db.js'],
              importNames: ['SqliteStore', 'sqliteOf', 'Db'],
              message: 'The raw database handle stays in master/store/: use Repos or the Store type.',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['web-ui/public/**/*.js'],
    languageOptions: {
      globals: {
        window: 'readonly',
        document: 'readonly',
        fetch: 'readonly',
        EventSource: 'readonly',
        console: 'readonly',
        setTimeout: 'readonly',
        setInterval: 'readonly',
        clearInterval: 'readonly',
        URLSearchParams: 'readonly',
        FormData: 'readonly',
      },
    },
  },
);
