#!/usr/bin/env -S node --min-semi-space-size=8 --no-parallel-scavenge
// The `berth` command. The TypeScript sources are compiled to dist/ by `npm ci` (the prepare script).
//
// The line above tunes V8's young generation for the gateway, whose garbage all dies young:
// - an 8 MB young generation. V8 keeps it at 1 MB while the server idles and grows it only when much
//   of it survives, which an invocation's garbage never does; so under load at one connection the
//   gateway collected it every 60–100 invocations, each collection delaying the invocation in
//   flight by up to a millisecond. At 8 MB it is every ~600, each a little longer (0.6 against
//   0.26 ms): a better p99 by a blocking client, a worse one by wrk, which counts long pauses more.
// - collections on the main thread alone: what survives is ~30 KB, so helper threads have nothing to
//   share, and waking them took CPU from the containers' workers.
// bench/python measures the first (row f, and its collector table; docs/python.md, "What the tail is
// made of"). V8 reads these only when the process starts, so they are flags here, not settings;
// bench/lib.ts reads them from this line.
import { main } from '../dist/src/cli/main.js';

main(process.argv.slice(2)).then(
  (code) => { if (typeof code === 'number') process.exitCode = code; },
  (err) => { console.error(err instanceof Error ? err.message : err); process.exitCode = 1; },
);
