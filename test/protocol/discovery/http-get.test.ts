// The bounded GET used for LOCATION fetches: framing, bounds, deadline, on the
// simulated network and on real loopback sockets.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { CanopyError } from '../../../src/errors'
import { SimClock, SimNetwork, createLinuxNet, createRealClock, type StreamSocket } from '../../../src/hal'
import { DESCRIBE_BYTES_MAX, DESCRIBE_HEAD_BYTES_MAX, DESCRIBE_TIMEOUT_MS } from '../../../src/limits'
import { httpGet, responseReader } from '../../../src/protocol/discovery/http-get'

const LIMITS = { timeoutMs: DESCRIBE_TIMEOUT_MS, headBytesMax: DESCRIBE_HEAD_BYTES_MAX, bodyBytesMax: DESCRIBE_BYTES_MAX }
const code = (fn: () => unknown): string => {
  try { fn(); return 'ok' } catch (err) { return CanopyError.is(err) ? err.code : `THREW ${String(err)}` }
}

test('reader: Content-Length framing, in any chunking', () => {
  const wire = Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"a":"bcd"}')
  for (let cut = 1; cut < wire.length; cut++) {
    const r = responseReader(LIMITS)
    const first = r.push(wire.subarray(0, cut))
    const body = first ?? r.push(wire.subarray(cut))
    assert.is(body?.toString(), '{"a":"bcd"}', `cut at ${cut}`)
  }
  const r = responseReader(LIMITS)
  assert.is(r.push(Buffer.from('HTTP/1.0 200 OK\r\n\r\nuntil the end')), null)
  assert.is(r.end().toString(), 'until the end', 'no Content-Length: the connection end frames the body')
})

test('reader: refuses other statuses, chunked bodies, bad lengths, oversize heads and bodies', () => {
  const fails = (wire: string | Buffer, end = false): string => code(() => {
    const r = responseReader(LIMITS)
    r.push(Buffer.isBuffer(wire) ? wire : Buffer.from(wire))
    if (end) r.end()
  })
  assert.is(fails('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n'), 'DESCRIBE_FETCH_FAILED')
  assert.is(fails('HTTP/1.1 301 Moved\r\nLocation: http://evil/\r\n\r\n'), 'DESCRIBE_FETCH_FAILED', 'no redirects')
  assert.is(fails('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'), 'DESCRIBE_FETCH_FAILED')
  assert.is(fails('HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n'), 'DESCRIBE_FETCH_FAILED')
  assert.is(fails('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n'), 'DESCRIBE_FETCH_FAILED')
  assert.is(fails(`HTTP/1.1 200 OK\r\nContent-Length: ${DESCRIBE_BYTES_MAX + 1}\r\n\r\n`), 'DESCRIBE_FETCH_FAILED', 'refused on the declared length')
  assert.is(fails('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabc'), 'DESCRIBE_FETCH_FAILED', 'more than declared')
  assert.is(fails('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab', true), 'DESCRIBE_FETCH_FAILED', 'cut short')
  assert.is(fails(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\n\r\n'), Buffer.alloc(DESCRIBE_BYTES_MAX + 1)])), 'DESCRIBE_FETCH_FAILED', 'unframed body over the bound')
  assert.is(fails(`HTTP/1.1 200 OK\r\nX: ${'y'.repeat(DESCRIBE_HEAD_BYTES_MAX)}`), 'DESCRIBE_FETCH_FAILED', 'endless headers')
  assert.is(fails('HTTP/1.1 200 OK\r\nContent', true), 'DESCRIBE_FETCH_FAILED', 'ended inside the headers')
  assert.is(fails('SSH-2.0-OpenSSH\r\n\r\n'), 'DESCRIBE_FETCH_FAILED')
})

function simPair () {
  const clock = new SimClock()
  const network = new SimNetwork(clock, { seed: 1, conditions: { latencyMs: 2 } })
  const client = network.addHost('c', [{ nic: 'eth0', address: '10.0.0.1', prefixLength: 24 }])
  const server = network.addHost('s', [{ nic: 'eth0', address: '10.0.0.2', prefixLength: 24 }])
  return { clock, client, server }
}

test('sim: a GET sends one well-formed request and reads the body', async () => {
  const { clock, client, server } = simPair()
  let request = ''
  await server.listen({ port: 80 }, (s) => {
    s.on('data', (c: Buffer) => {
      request += c.toString()
      if (request.includes('\r\n\r\n')) s.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi')
    })
  })
  const got = httpGet(client, clock, { host: '10.0.0.2', port: 80, path: '/api/describe?nonce=x' }, LIMITS, 'Canopy/test')
  await clock.advance(50)
  assert.is((await got).toString(), 'hi')
  assert.is(request, 'GET /api/describe?nonce=x HTTP/1.1\r\nHost: 10.0.0.2:80\r\nUser-Agent: Canopy/test\r\nAccept: application/json\r\nConnection: close\r\n\r\n')
})

test('sim: a server that never answers, or trickles forever, is cut at the deadline; a dead port is refused', async () => {
  const { clock, client, server } = simPair()
  const open: StreamSocket[] = []
  await server.listen({ port: 81 }, (s) => { open.push(s) })
  await server.listen({ port: 82 }, (s) => {
    s.write('HTTP/1.1 200 OK\r\n')
    const t = setInterval(() => { if (!s.destroyed) s.write('X-Slow: y\r\n') }, 0)
    s.on('close', () => { clearInterval(t) })
    open.push(s)
  })
  const silent = httpGet(client, clock, { host: '10.0.0.2', port: 81, path: '/' }, LIMITS, 'c').then(() => 'ok', (e: CanopyError) => e.code)
  const refused = httpGet(client, clock, { host: '10.0.0.2', port: 99, path: '/' }, LIMITS, 'c').then(() => 'ok', (e: CanopyError) => e.code)
  await clock.advance(DESCRIBE_TIMEOUT_MS + 10)
  assert.is(await silent, 'TIMEOUT')
  assert.is(await refused, 'NET_REFUSED')
  const slow = httpGet(client, clock, { host: '10.0.0.2', port: 82, path: '/' }, LIMITS, 'c').then(() => 'ok', (e: CanopyError) => e.code)
  for (let i = 0; i < 300; i++) await clock.advance(10)
  const outcome = await slow
  assert.ok(outcome === 'TIMEOUT' || outcome === 'DESCRIBE_FETCH_FAILED', outcome)
  for (const s of open) s.destroy()
})

test('real sockets: GET from a node:http server on loopback; oversize and slow servers are cut', async () => {
  const net = createLinuxNet()
  const clock = createRealClock()
  const server: Server = createServer((req, res) => {
    if (req.url?.startsWith('/big')) { res.writeHead(200); res.end(Buffer.alloc(DESCRIBE_BYTES_MAX + 10, 0x61)); return }
    if (req.url?.startsWith('/slow')) { res.writeHead(200, { 'content-length': 10 }); res.write('12345'); return }
    if (req.url?.startsWith('/chunked')) { res.writeHead(200); res.write('{"ok":'); res.end('true}'); return }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': 11 })
    res.end('{"ok":true}')
  })
  await new Promise<void>((resolve) => { server.listen(0, '127.0.0.1', resolve) })
  const port = (server.address() as AddressInfo).port
  try {
    const body = await httpGet(net, clock, { host: '127.0.0.1', port, path: '/x' }, LIMITS, 'c')
    assert.is(body.toString(), '{"ok":true}')
    const big = await httpGet(net, clock, { host: '127.0.0.1', port, path: '/big' }, LIMITS, 'c').then(() => 'ok', (e: CanopyError) => e.code)
    assert.is(big, 'DESCRIBE_FETCH_FAILED')
    const chunked = await httpGet(net, clock, { host: '127.0.0.1', port, path: '/chunked' }, LIMITS, 'c').then(() => 'ok', (e: CanopyError) => e.code)
    assert.is(chunked, 'DESCRIBE_FETCH_FAILED', 'our describe always has a Content-Length; anything else is refused')
    const t0 = Date.now()
    const slow = await httpGet(net, clock, { host: '127.0.0.1', port, path: '/slow' }, { ...LIMITS, timeoutMs: 300 }, 'c').then(() => 'ok', (e: CanopyError) => e.code)
    assert.is(slow, 'TIMEOUT')
    assert.ok(Date.now() - t0 < 2_000)
  } finally {
    server.closeAllConnections()
    await new Promise((resolve) => { server.close(resolve) })
  }
})

test.run()
