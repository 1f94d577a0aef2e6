#!/usr/bin/env node
// Builds berth's native invocation front (src/wire/native/front.c → build/Release/berth_front.node)
// with node-gyp, at install (package.json's "install" script). The front is an optimisation, not a
// requirement: without a C compiler and Node's headers the build fails, this says so, and berth serves
// invocations from its Node front instead (docs/architecture.md, "The invocation path").
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

// npm gives install scripts its own node-gyp; run by hand, find the one beside npm.
const candidates = [
  process.env['npm_config_node_gyp'],
  join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
].filter((p) => p !== undefined && existsSync(p));
const nodeGyp = candidates[0];
if (nodeGyp === undefined) {
  console.warn('berth: node-gyp not found; the native invocation front is not built, and the Node front will serve invocations.');
  process.exit(0);
}
// Node's own headers when they are installed beside it (Debian's nodejs-dev, official tarballs), so
// that node-gyp need not download them (this machine may have no internet).
const prefix = join(dirname(process.execPath), '..');
const nodedir = process.env['npm_config_nodedir'] ?? (existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined);
const res = spawnSync(process.execPath, [nodeGyp, 'rebuild', ...(nodedir ? [`--nodedir=${nodedir}`] : [])], { stdio: 'inherit' });
if (res.status !== 0) {
  console.warn('berth: building the native invocation front failed (above); the Node front will serve invocations.');
}
