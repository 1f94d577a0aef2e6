// InvokeEndpoint through @aws-sdk/client-sagemaker-runtime: what reaches the container and comes back,
// and every error in SageMaker's shape (wire-protocol.md §2.5).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvokeEndpointCommand, ModelError, SageMakerRuntimeServiceException, ValidationError } from '@aws-sdk/client-sagemaker-runtime';
import { deployEcho, startTestBerth } from './helpers.js';

test('InvokeEndpoint forwards body, content type, accept and custom attributes, and returns the variant', async (t) => {
  const tb = await startTestBerth(t);
  await deployEcho(tb, 'rt');
  const body = Buffer.from([0, 1, 2, 255, 10, 13]);
  const out = await tb.rt.send(new InvokeEndpointCommand({
    EndpointName: 'rt', Body: body, ContentType: 'application/x-custom', Accept: 'application/json', CustomAttributes: 'trace=abc',
  }));
  assert.equal(out.ContentType, 'application/json');
  assert.equal(out.InvokedProductionVariant, 'AllTraffic');
  assert.equal(out.CustomAttributes, 'echoed=trace=abc');
  const seen = JSON.parse(Buffer.from(out.Body ?? []).toString('utf8')) as Record<string, unknown>;
  assert.equal(seen['bodyBase64'], body.toString('base64'));
  assert.equal(seen['contentType'], 'application/x-custom');
  assert.equal(seen['accept'], 'application/json');
  assert.equal(seen['customAttributes'], 'trace=abc');
  // The container's own response headers are not copied unless SageMaker defines them.
  assert.equal(out.$metadata.httpStatusCode, 200);
  assert.ok(out.$metadata.requestId);
});

test('runtime errors have SageMaker codes, statuses and members', async (t) => {
  const tb = await startTestBerth(t, { invocationTimeoutMs: 700, maxPayloadBytes: 100_000 });
  await deployEcho(tb, 'err');
  const invoke = (body: unknown, extra: Record<string, string> = {}) => tb.rt.send(new InvokeEndpointCommand({
    EndpointName: 'err', Body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)), ContentType: 'application/json', ...extra,
  }));

  await assert.rejects(invoke({ action: 'status', status: 400, message: 'bad input: expected 4 features' }), (err: unknown) => {
    assert.ok(err instanceof ModelError);
    assert.equal(err.$metadata.httpStatusCode, 424);
    assert.equal(err.OriginalStatusCode, 400);
    assert.equal(err.OriginalMessage, 'bad input: expected 4 features');
    assert.equal(err.message, 'Received client error (400) from primary with message "bad input: expected 4 features". See the instance logs (berth logs err) for more information.');
    assert.match(err.LogStreamArn ?? '', /^arn:aws:logs:us-east-1:123456789012:log-group:\/aws\/sagemaker\/Endpoints\/err:log-stream:AllTraffic\/i-[0-9a-f]{16}$/);
    return true;
  });
  await assert.rejects(invoke({ action: 'status', status: 503, message: 'overloaded' }), (err: unknown) => {
    assert.ok(err instanceof ModelError);
    assert.equal(err.OriginalStatusCode, 503);
    assert.match(err.message, /^Received server error \(503\) from primary with message "overloaded"/);
    return true;
  });
  await assert.rejects(invoke({ action: 'sleep', ms: 3000 }), (err: unknown) => {
    assert.ok(err instanceof ModelError);
    assert.equal(err.OriginalStatusCode, 0);
    assert.match(err.OriginalMessage ?? '', /^Your invocation timed out while waiting for a response from container primary\./);
    return true;
  });
  await assert.rejects(invoke({ action: 'big', bytes: 200_000 }), (err: unknown) => {
    assert.ok(err instanceof ModelError);
    assert.match(err.message, /sent a response that is too large/);
    return true;
  });
  // A container that answers with something other than HTTP, or drops the connection mid-answer.
  await assert.rejects(invoke({ action: 'garbage' }), (err: unknown) => {
    assert.ok(err instanceof ModelError);
    assert.equal(err.OriginalStatusCode, 0);
    assert.match(err.message, /^Received server error \(0\) from primary with message "The container primary answered with something that is not HTTP\/1\.1 \(not an HTTP\/1\.x status line: "SSH-2\.0-not-http"\)\."/);
    return true;
  });
  // A bare LF in a header of the container's answer never reaches the client as a header of its own.
  await assert.rejects(invoke({ action: 'inject' }), (err: unknown) => {
    assert.ok(err instanceof ModelError);
    assert.equal(err.OriginalStatusCode, 200);
    assert.match(err.message, /^Received server error \(200\) from primary with message "The container primary answered with something that is not HTTP\/1\.1 \(a control byte in the value of header "content-type"\)\."/);
    return true;
  });
  await assert.rejects(invoke({ action: 'truncate' }), (err: unknown) => {
    assert.ok(err instanceof ModelError);
    assert.equal(err.OriginalStatusCode, 200);
    assert.match(err.message, /^Received server error \(200\) from primary and could not load the entire response body\./);
    return true;
  });
  assert.equal((await invoke({})).InvokedProductionVariant, 'AllTraffic');
  await assert.rejects(invoke('x'.repeat(100_001)), (err: unknown) => {
    assert.ok(err instanceof ValidationError);
    assert.equal(err.$metadata.httpStatusCode, 400);
    assert.match(err.message, /^Request [0-9a-f-]{36} has oversize body\. InvokeEndpoint accepts at most 100000 bytes/);
    return true;
  });
  // The connection survives the refusal: the next call on the same client works.
  assert.equal((await invoke({})).InvokedProductionVariant, 'AllTraffic');
  await assert.rejects(tb.rt.send(new InvokeEndpointCommand({ EndpointName: 'nope', Body: Buffer.from('{}') })), (err: unknown) => {
    assert.ok(err instanceof ValidationError);
    assert.equal(err.message, 'Endpoint nope of account 123456789012 not found.');
    return true;
  });
  // Invocation is case-sensitive, as on SageMaker.
  await assert.rejects(tb.rt.send(new InvokeEndpointCommand({ EndpointName: 'ERR', Body: Buffer.from('{}') })), { name: 'ValidationError', message: 'Endpoint ERR of account 123456789012 not found.' });
  await assert.rejects(invoke({}, { TargetVariant: 'Other' }), { name: 'ValidationError', message: 'Variant Other does not exist on endpoint err; its variants are: AllTraffic.' });
  await assert.rejects(invoke({}, { TargetModel: 'a.tar.gz' }), { name: 'ValidationError', message: 'Endpoint err is not a multi-model endpoint and does not support target model header.' });
  await assert.rejects(invoke({}, { TargetVariant: 'bad variant!' }), (err: unknown) => {
    assert.ok(err instanceof SageMakerRuntimeServiceException);
    assert.equal(err.name, 'ValidationError');
    assert.match(err.message, /^1 validation error detected: Value 'bad variant!' at 'targetVariant' failed to satisfy constraint: Member must satisfy regular expression pattern/);
    return true;
  });
});

test('an oversize body announced by Content-Length is refused before it is read', async (t) => {
  const tb = await startTestBerth(t);
  await deployEcho(tb, 'big');
  const size = 6_291_457;
  const res = await fetch(`${tb.url}/endpoints/big/invocations`, { method: 'POST', body: Buffer.alloc(size, 1), headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(res.status, 400);
  assert.equal(res.headers.get('x-amzn-errortype'), 'ValidationError');
  const json = (await res.json()) as Record<string, string>;
  assert.match(json['message'] ?? '', /has oversize body\. InvokeEndpoint accepts at most 6291456 bytes/);
  // Exactly the limit is accepted.
  const ok = await fetch(`${tb.url}/endpoints/big/invocations`, { method: 'POST', body: Buffer.alloc(size - 1, 1), headers: { 'content-type': 'application/octet-stream' } });
  assert.equal(ok.status, 200);
  assert.equal(((await ok.json()) as Record<string, number>)['bodyLength'], size - 1);
});

test('the native front serves a real endpoint\'s invocations and counts them; with nativeFront false the Node front does', async (t) => {
  const tb = await startTestBerth(t);
  // `npm ci` builds the native front (scripts/build-native.mjs); without it this test cannot show anything.
  assert.equal(tb.berth.front, 'native', 'the native front is not built: run `npm ci` on a machine with a C compiler and Node\'s headers');
  await deployEcho(tb, 'nat');
  for (const trace of ['a', 'b', 'c']) {
    const out = await tb.rt.send(new InvokeEndpointCommand({ EndpointName: 'nat', Body: Buffer.from('{}'), ContentType: 'application/json', CustomAttributes: `trace=${trace}` }));
    assert.equal(out.CustomAttributes, `echoed=trace=${trace}`);
    assert.equal(out.InvokedProductionVariant, 'AllTraffic');
  }
  // An answer in chunks is put together before it is returned.
  const chunked = await tb.rt.send(new InvokeEndpointCommand({ EndpointName: 'nat', Body: Buffer.from('{"action":"chunked"}'), ContentType: 'application/json' }));
  assert.equal(Buffer.from(chunked.Body ?? []).toString(), 'part one, part two');
  assert.equal(chunked.ContentType, 'text/plain');
  // A container that closes an idle keep-alive connection (its own keep-alive timeout): the next
  // call takes a fresh connection instead of failing on the closed one.
  for (let i = 0; i < 3; i++) {
    const out = await tb.rt.send(new InvokeEndpointCommand({ EndpointName: 'nat', Body: Buffer.from('{"action":"close-later"}'), ContentType: 'application/json' }));
    assert.equal(Buffer.from(out.Body ?? []).toString(), 'closing soon');
    await new Promise((r) => setTimeout(r, 200));
  }

  const metrics = await (await fetch(`${tb.url}/metrics`)).text();
  assert.match(metrics, /^Invocations\{EndpointName="nat",VariantName="AllTraffic"\} 7$/m);
  assert.match(metrics, /^ModelLatency_count\{EndpointName="nat",VariantName="AllTraffic"\} 7$/m);
  const node = await startTestBerth(t, { nativeFront: false });
  assert.equal(node.berth.front, 'node');
  await deployEcho(node, 'js');
  const out = await node.rt.send(new InvokeEndpointCommand({ EndpointName: 'js', Body: Buffer.from('{}'), ContentType: 'application/json' }));
  assert.equal(out.InvokedProductionVariant, 'AllTraffic');
});
