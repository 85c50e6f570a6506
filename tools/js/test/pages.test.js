// ESLint sees the pages' scripts as files: a script written into a page would escape it (and the
// content-hashed URLs of contest/web/static_assets.py), so the pages keep none.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const STATIC = fileURLToPath(new URL('../../../contest/static/', import.meta.url));

function pages(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === 'vendor' ? [] : pages(path);
    return entry.name.endsWith('.html') ? [path] : [];
  });
}

test('no page has an inline script or an inline event handler', () => {
  const found = pages(STATIC);
  assert.ok(found.length >= 5, found.join(', '));
  for (const page of found) {
    const html = readFileSync(page, 'utf8');
    const scripts = html.match(/<script\b[^>]*>/gi) || [];
    assert.deepEqual(scripts.filter((tag) => !/\ssrc=/i.test(tag)), [], `${page}: inline <script>`);
    assert.deepEqual(html.match(/<[^>]+\son[a-z]+\s*=/gi) || [], [], `${page}: inline event handler`);
  }
});
