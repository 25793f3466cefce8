// ESLint's recommended rules and typescript-eslint's (syntax only: the type checker already runs
// in `npm run typecheck`, and type-aware linting would double the cost on two cores).
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'dist.tmp-*/', 'dist.old-*/', 'node_modules/', '.venv/', '.retool/', 'scratch/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: globals.node },
    rules: {
      // `_name` marks a value left unused on purpose (a destructured field dropped from a payload).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', caughtErrors: 'none' },
      ],
    },
  },
  {
    // Tests read the CLI's JSON output and mock activity inputs; their assertions check the shape.
    files: ['test/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
