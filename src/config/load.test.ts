import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, loadConfig } from './load.js';
import { DEFAULTS } from './schema.js';

test('defaults apply when nothing is given, and the result is frozen', () => {
  const c = loadConfig({ cwd: '/srv' });
  assert.equal(c.port, DEFAULTS.port);
  assert.equal(c.dataDir, '/srv/.berth');
  assert.equal(c.region, 'us-east-1');
  assert.ok(Object.isFrozen(c));
  assert.ok(Object.isFrozen(c.images));
});

test('flags beat environment, which beats the file; image tables merge', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'berth.json');
  writeFileSync(file, JSON.stringify({ port: 1111, region: 'eu-west-1', logLevel: 'debug', images: { a: { command: ['a'] } } }));
  const c = loadConfig({
    configFile: file,
    env: { BERTH_PORT: '2222', BERTH_REGION: 'us-west-2', UNRELATED: 'x' },
    flags: { port: 3333, images: { b: { command: ['b'] } } },
    cwd: dir,
  });
  assert.equal(c.port, 3333);
  assert.equal(c.region, 'us-west-2');
  assert.equal(c.logLevel, 'debug');
  assert.deepEqual(Object.keys(c.images).sort(), ['a', 'b']);
  assert.equal(loadConfig({ env: { BERTH_CONFIG: file }, cwd: dir }).port, 1111);
});

test('unknown keys, bad values and unreadable files are refused with the reason', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-config-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'berth.json');
  writeFileSync(file, JSON.stringify({ prot: 1 }));
  assert.throws(() => loadConfig({ configFile: file }), (e: Error) => e instanceof ConfigError && /Unrecognized key.*"prot"/.test(e.message));
  assert.throws(() => loadConfig({ flags: { accountId: '12' } }), /accountId: twelve digits/);
  assert.throws(() => loadConfig({ env: { BERTH_PORT: 'eighty' } }), /BERTH_PORT=eighty is not a whole number/);
  assert.throws(() => loadConfig({ configFile: join(dir, 'missing.json') }), /cannot read config file/);
  writeFileSync(file, '{');
  assert.throws(() => loadConfig({ configFile: file }), /is not valid JSON/);
  assert.throws(() => loadConfig({ flags: { images: { x: { command: [] } } } }), /images\.x\.command/);
});

test('the Python container settings: interpreter and requirements install, off by default', () => {
  const d = loadConfig({});
  assert.equal(d.python, 'python3');
  assert.equal(d.pythonInstallRequirements, false);
  const c = loadConfig({ env: { BERTH_PYTHON: '/usr/bin/python3', BERTH_PYTHON_INSTALL_REQUIREMENTS: 'true' } });
  assert.equal(c.python, '/usr/bin/python3');
  assert.equal(c.pythonInstallRequirements, true);
  assert.equal(loadConfig({ env: { BERTH_PYTHON_INSTALL_REQUIREMENTS: '1' }, flags: { python: '/opt/py/bin/python' } }).python, '/opt/py/bin/python');
  assert.throws(() => loadConfig({ env: { BERTH_PYTHON_INSTALL_REQUIREMENTS: 'yes' } }), /BERTH_PYTHON_INSTALL_REQUIREMENTS=yes is not true or false/);
});

test('the gateway polls for a lone answer for 1000 µs unless told otherwise, never more than 100 ms', () => {
  assert.equal(loadConfig({}).spinWaitMicros, 1000);
  assert.equal(loadConfig({ env: { BERTH_SPIN_WAIT_MICROS: '0' } }).spinWaitMicros, 0);
  assert.throws(() => loadConfig({ env: { BERTH_SPIN_WAIT_MICROS: '500000' } }), ConfigError);
  assert.equal(loadConfig({}).spinWaitBackoffMs, 1000);
  assert.equal(loadConfig({ env: { BERTH_SPIN_WAIT_BACKOFF_MS: '0' } }).spinWaitBackoffMs, 0);
  assert.equal(loadConfig({}).nativeFront, true);
  assert.equal(loadConfig({ env: { BERTH_NATIVE_FRONT: 'false' } }).nativeFront, false);
  assert.throws(() => loadConfig({ env: { BERTH_SPIN_WAIT_BACKOFF_MS: '-1' } }), ConfigError);
});
