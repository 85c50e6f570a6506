// Lets Node load the pages' modules as the browser does: an import of '/static/x.js' is the file
// contest/static/x.js (the server serves that path, content-hashed). Used by the unit tests:
//   node --import ./static-paths.js --test
import { register } from 'node:module';
import { isMainThread } from 'node:worker_threads';

const STATIC = new URL('../../contest/static/', import.meta.url).href;

/** The module resolution hook: '/static/...' from the static directory, everything else as usual. */
export async function resolve(specifier, context, nextResolve) {
  if (specifier.startsWith('/static/')) return nextResolve(STATIC + specifier.slice('/static/'.length), context);
  return nextResolve(specifier, context);
}

// --import runs this file on the main thread, which registers it; the hooks thread loads it again
// for resolve() only
if (isMainThread) register(import.meta.url);
