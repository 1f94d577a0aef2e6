// The artifact cache against hostile archives, a counting https server and a stalled one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ArtifactCache } from './artifacts.js';
import type { ArtifactOptions } from './artifacts.js';

const FIXTURES = resolve(import.meta.dirname, '..', '..', '..', 'test', 'fixtures');

function setup(t: { after: (fn: () => void) => void }, overrides: Partial<ArtifactOptions> = {}): { cache: ArtifactCache; dir: string; tars: string } {
  const dir = mkdtempSync(join(tmpdir(), 'berth-artifacts-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const tars = join(dir, 'tars');
  execFileSync('python3', [join(FIXTURES, 'make_hostile_tars.py'), tars]);
  const cache = new ArtifactCache({
    dataDir: join(dir, 'data'),
    s3: { forcePathStyle: true, region: 'us-east-1' },
    maxDownloadBytes: 1 << 30,
    maxUnpackedBytes: 1 << 30,
    maxEntries: 10_000,
    ...overrides,
  });
  return { cache, dir, tars };
}

const opts = { timeoutMs: 10_000, container: 'primary' };
const gz = (path: string) => ({ url: pathToFileURL(path).href, compression: 'Gzip' as const, dataType: 'S3Object' as const });

test('hostile archives are refused whole, naming the entry, and nothing lands outside', async (t) => {
  const { cache, tars, dir } = setup(t);
  const cases: [string, RegExp][] = [
    ['dotdot.tar.gz', /entry "\.\.\/\.\.\/escaped\.txt" climbs out of the model folder with "\.\."/],
    ['absolute.tar.gz', /entry "\/tmp\/berth-absolute-escape\.txt" has an absolute path/],
    ['symlink-out.tar.gz', /entry "evil" is a symbolic link to "\/etc", outside the model folder/],
    ['symlink-relative-out.tar.gz', /entry "up" is a symbolic link to "\.\.\/\.\.\/\.\.", outside the model folder/],
    ['hardlink-out.tar.gz', /entry "shadow" is a hard link to "\/etc\/hostname", outside the model folder/],
    ['symlink-chain.tar.gz', /entry "x\/escaped-through-chain\.txt" would be written through a link outside the model folder/],
    ['device.tar.gz', /entry "device" is a CharacterDevice, which a model folder may not hold/],
    ['not-gzip.tar.gz', /it is not gzip-compressed \(the first bytes are not 1f 8b\); ModelDataUrl must name a model\.tar\.gz/],
    ['truncated.tar.gz', /its gzip stream is corrupt|not a valid tar archive/],
  ];
  for (const [name, reason] of cases) {
    const url = pathToFileURL(join(tars, name)).href;
    await assert.rejects(cache.materialize(gz(join(tars, name)), opts), (err: Error) => {
      assert.equal(err.name, 'ArtifactError');
      assert.ok(err.message.startsWith(`Model data for container "primary" from URL "${url}" was refused: `), err.message);
      assert.match(err.message, reason);
      return true;
    }, name);
  }
  assert.ok(!existsSync('/tmp/berth-absolute-escape.txt'));
  assert.ok(!existsSync(join(dir, 'escaped.txt')));
  assert.ok(!existsSync(join(dir, 'data', 'escaped-through-chain.txt')));
  // Refused archives leave no cache entry and no partial folder behind.
  assert.deepEqual(readdirSync(join(dir, 'data', 'artifacts')), []);
});

test('limits on files and unpacked bytes stop decompression bombs', async (t) => {
  const { cache, tars } = setup(t, { maxEntries: 20, maxUnpackedBytes: 1 << 20 });
  await assert.rejects(cache.materialize(gz(join(tars, 'many-files.tar.gz')), opts), /was refused: it holds more than 20 entries/);
  await assert.rejects(cache.materialize(gz(join(tars, 'bomb.tar.gz')), opts), /was refused: it unpacks to more than 1048576 bytes/);
});

test('links that stay inside are kept; the cache reuses an unpacked artifact', async (t) => {
  const { cache, tars } = setup(t);
  const dir = await cache.materialize(gz(join(tars, 'safe-links.tar.gz')), opts);
  assert.equal(readFileSync(join(dir, 'current'), 'utf8'), 'AAAA');
  assert.equal(readlinkSync(join(dir, 'current')), 'weights/a.bin');
  assert.ok(lstatSync(join(dir, 'current')).isSymbolicLink());
  assert.equal(statSync(join(dir, 'hard.bin')).ino, statSync(join(dir, 'weights', 'a.bin')).ino);
  assert.equal(await cache.materialize(gz(join(tars, 'safe-links.tar.gz')), opts), dir);
  assert.equal(cache.downloads, 1);
});

function selfSigned(dir: string): { key: string; cert: string } {
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    '-days', '1', '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
}

test('https: concurrent requests for one artifact download it once; a changed ETag downloads again; errors name the cause', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-https-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const { key, cert } = selfSigned(dir);
  execFileSync('python3', [join(FIXTURES, 'make_hostile_tars.py'), join(dir, 'tars')]);
  const body = readFileSync(join(dir, 'tars', 'safe-links.tar.gz'));
  let gets = 0;
  let etag = '"v1"';
  const server = createServer({ key, cert }, (req, res) => {
    if (req.url === '/stall.tar.gz') return; // never answers
    if (req.url !== '/model.tar.gz') return void res.writeHead(404).end();
    if (req.method === 'GET') gets += 1;
    res.writeHead(200, { etag, 'content-length': body.length });
    // Slow enough that concurrent callers overlap.
    setTimeout(() => res.end(req.method === 'GET' ? body : undefined), 100);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => { server.closeAllConnections(); server.close(); });
  const base = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const cache = new ArtifactCache({
    dataDir: join(dir, 'data'), s3: { forcePathStyle: true, region: 'us-east-1' }, httpsCa: cert,
    maxDownloadBytes: 1 << 30, maxUnpackedBytes: 1 << 30, maxEntries: 1000,
  });
  const src = { url: `${base}/model.tar.gz`, compression: 'Gzip' as const, dataType: 'S3Object' as const };
  const dirs = await Promise.all(Array.from({ length: 5 }, () => cache.materialize(src, opts)));
  assert.equal(new Set(dirs).size, 1);
  assert.equal(gets, 1);
  etag = '"v2"';
  const again = await cache.materialize(src, opts);
  assert.notEqual(again, dirs[0]);
  assert.equal(gets, 2);
  await assert.rejects(cache.materialize({ ...src, url: `${base}/missing.tar.gz` }, opts),
    { message: `Failed to download model data for container "primary" from URL: "${base}/missing.tar.gz": the server answered 404 Not Found.` });
  await assert.rejects(cache.materialize({ ...src, url: `${base}/stall.tar.gz` }, { ...opts, timeoutMs: 300 }),
    { message: `Failed to download model data for container "primary" from URL: "${base}/stall.tar.gz": the download did not finish within 0 seconds (ModelDataDownloadTimeoutInSeconds).` });
  // Without the CA the server's certificate is not trusted.
  const untrusting = new ArtifactCache({ dataDir: join(dir, 'data2'), s3: { forcePathStyle: true, region: 'us-east-1' }, maxDownloadBytes: 1 << 30, maxUnpackedBytes: 1 << 30, maxEntries: 1000 });
  await assert.rejects(untrusting.materialize(src, opts), /from URL: "https:\/\/127\.0\.0\.1:\d+\/model\.tar\.gz": self.signed certificate/);
  const small = new ArtifactCache({ dataDir: join(dir, 'data3'), s3: { forcePathStyle: true, region: 'us-east-1' }, httpsCa: cert, maxDownloadBytes: 10, maxUnpackedBytes: 1 << 30, maxEntries: 1000 });
  await assert.rejects(small.materialize(src, opts), /the object is \d+ bytes, more than the 10 berth downloads \(setting artifactMaxDownloadBytes\)/);
});
