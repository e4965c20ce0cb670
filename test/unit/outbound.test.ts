import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { checkUrl, classifyAddress, DEFAULT_OUTBOUND, outboundFetch, OutboundError } from '../../server/net/outbound.ts';

test('addresses are classified: metadata and link-local are never fetched', () => {
  const table: [string, string][] = [
    ['169.254.169.254', 'forbidden'],
    ['169.254.1.1', 'forbidden'],
    ['fe80::1', 'forbidden'],
    ['fd00:ec2::254', 'forbidden'],
    ['100.100.100.200', 'forbidden'],
    ['0.0.0.0', 'forbidden'],
    ['::', 'forbidden'],
    ['127.0.0.1', 'loopback'],
    ['127.5.5.5', 'loopback'],
    ['::1', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.20.0.1', 'private'],
    ['192.168.1.1', 'private'],
    ['100.64.0.1', 'private'],
    ['fd12::1', 'private'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:169.254.169.254', 'forbidden'],
    ['8.8.8.8', 'public'],
    ['2606:4700::1111', 'public'],
  ];
  for (const [address, expected] of table) assert.equal(classifyAddress(address), expected, address);
});

test('URLs: literal metadata, loopback and private addresses are refused under the default policy; other schemes too', () => {
  for (const url of ['http://169.254.169.254/latest/meta-data', 'http://127.0.0.1:8080/jwks', 'http://[::1]/x', 'http://10.0.0.5/x', 'file:///etc/passwd', 'gopher://x/', 'http://user:pw@example.com/']) {
    assert.throws(() => checkUrl(new URL(url), DEFAULT_OUTBOUND), OutboundError, url);
  }
  assert.doesNotThrow(() => checkUrl(new URL('https://idp.example.com/.well-known/openid-configuration'), DEFAULT_OUTBOUND));
  assert.doesNotThrow(() => checkUrl(new URL('http://127.0.0.1/x'), { ...DEFAULT_OUTBOUND, allowLoopback: true }));
  assert.throws(() => checkUrl(new URL('http://169.254.169.254/'), { ...DEFAULT_OUTBOUND, allowLoopback: true, allowPrivateNetworks: true }), OutboundError);
});

test('a host name that resolves to loopback is refused at connect time unless allowed; bodies are capped', async () => {
  const server = createServer((_req, res) => res.end('x'.repeat(5000)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  try {
    await assert.rejects(outboundFetch(DEFAULT_OUTBOUND)(`http://localhost:${port}/`), /loopback/);
    const allowed = await outboundFetch({ ...DEFAULT_OUTBOUND, allowLoopback: true })(`http://localhost:${port}/`);
    assert.equal((await allowed.text()).length, 5000);
    await assert.rejects(outboundFetch({ ...DEFAULT_OUTBOUND, allowLoopback: true, maxResponseBytes: 1000 })(`http://localhost:${port}/`), /more than 1000 bytes/);
  } finally {
    server.close();
  }
});

test('a silent server times out', async () => {
  const server = createServer(() => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    await assert.rejects(outboundFetch({ ...DEFAULT_OUTBOUND, allowLoopback: true, timeoutMs: 200 })(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`), /did not answer within 200 ms/);
  } finally {
    server.closeAllConnections();
    server.close();
  }
});
