// ESLint for the pages' scripts (contest/static). Run from the repository root by .ci/run:
//   tools/js/node_modules/.bin/eslint -c tools/js/eslint.config.js --max-warnings 0
// With -c, ESLint reads the patterns below from the current directory, the repository root.
import { readFileSync } from 'node:fs';
import js from '@eslint/js';
import compat from 'eslint-plugin-compat';
import globals from 'globals';

// The browsers of the people who open the pages: WeChat's webviews (iOS WKWebView 13+, Android's
// Chromium-based one from 80). One list, package.json's "browserslist", read here because
// eslint-plugin-compat would look for it beside the linted files, in contest/static.
const { browserslist } = JSON.parse(readFileSync(new URL('./package.json', import.meta.url), 'utf8'));

export default [
  {
    // vendored, minified third-party code (echarts) is not ours to lint
    ignores: ['contest/static/vendor/**', '**/node_modules/**'],
  },
  {
    files: ['contest/static/**/*.js'],
    languageOptions: {
      // ES2019: `??` and `?.` are syntax errors on iOS 13.0-13.3, which would stop a whole page's module
      ecmaVersion: 2019,
      sourceType: 'module',
      globals: { ...globals.browser, echarts: 'readonly' },
    },
    plugins: { compat },
    settings: { browsers: browserslist },
    rules: {
      ...js.configs.recommended.rules,
      ...compat.configs['flat/recommended'].rules,
      'no-unused-vars': ['error', { args: 'after-used', caughtErrors: 'none' }],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      'no-var': 'error',
      'prefer-const': 'error',
      // calls of methods newer than the list, which eslint-plugin-compat cannot see on an object of
      // unknown type (`at` is also a field name here, so only calls are refused)
      'no-restricted-syntax': ['error',
        ...[
          ['replaceChildren', 'Chromium 86+, iOS 14+: clear with textContent, then append'],
          ['replaceAll', 'Chromium 85+, iOS 13.4+: use replace() with a /g regex'],
          ['at', 'Chromium 92+, iOS 15.4+: index with [i] or [length - 1]'],
          ['findLast', 'Chromium 97+, iOS 15.4+'],
          ['findLastIndex', 'Chromium 97+, iOS 15.4+'],
        ].map(([name, why]) => ({ selector: `CallExpression[callee.property.name='${name}']`, message: `${name}(): ${why}` })),
      ],
    },
  },
  {
    files: ['tools/js/**/*.js'],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      globals: { ...globals.node },
    },
    rules: { ...js.configs.recommended.rules },
  },
];
