import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { connect, type Socket } from 'node:net'
import { request } from 'node:http'
import { CanopyError } from '../../src/errors'
import { HttpServer, readJson, sendJson } from '../../src/http'
import { silentLogger } from '../../src/log'

interface Reply { status: number, body: string, headers: Record<string, string | string[] | undefined> }

function get (port: number, path: string, options: { method?: string, body?: string, headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers, timeout: 3000 }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }))
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', reject)
    req.end(options.body)
  })
}

/** Send raw bytes; resolve with everything the server sends until it closes (or the deadline). */
function raw (port: number, data: string | Buffer, deadlineMs = 4000): Promise<{ text: string, closed: boolean }> {
  return new Promise((resolve) => {
    const s: Socket = connect(port, '127.0.0.1')
    let text = ''
    const timer = setTimeout(() => { s.destroy(); resolve({ text, closed: false }) }, deadlineMs)
    s.on('data', (c) => { text += c.toString('latin1') })
    s.on('close', () => { clearTimeout(timer); resolve({ text, closed: true }) })
    s.on('error', () => {})
    s.write(data)
  })
}

async function server (allow: (r: string) => boolean = () => true, headersTimeoutMs = 1000): Promise<{ s: HttpServer, port: number }> {
  const s = new HttpServer({ host: '127.0.0.1', port: 0, connectionsMax: 16, headersTimeoutMs, requestTimeoutMs: 2000, allow, log: silentLogger })
  s.route('GET', '/ok', ({ res }) => sendJson(res, 200, { ok: true }))
  s.route('GET', '/items/:id', ({ res, params }) => sendJson(res, 200, params))
  s.route('GET', '/files/*rest', ({ res, params }) => sendJson(res, 200, params))
  s.route('POST', '/echo', async ({ req, res }) => sendJson(res, 200, await readJson(req, 64)))
  s.route('GET', '/throws', () => { throw new Error('boom') })
  s.route('GET', '/rejects', async () => { throw new CanopyError('LIMIT_REACHED', 'too many') })
  s.route('GET', '/open', ({ res }) => sendJson(res, 200, {}), { access: 'any' })
  const a = await s.listen()
  return { s, port: a.port }
}

test('routes: exact, params, rest, 404, 405, HEAD', async () => {
  const { s, port } = await server()
  assert.is((await get(port, '/ok')).status, 200)
  assert.equal(JSON.parse((await get(port, '/items/a%20b')).body), { id: 'a b' })
  assert.equal(JSON.parse((await get(port, '/files/x/y/z')).body), { rest: 'x/y/z' })
  const nf = await get(port, '/nope')
  assert.is(nf.status, 404)
  assert.is(JSON.parse(nf.body).error.code, 'HTTP_NOT_FOUND')
  assert.is((await get(port, '/ok', { method: 'DELETE' })).status, 405)
  const head = await get(port, '/ok', { method: 'HEAD' })
  assert.is(head.status, 200)
  assert.is(head.body, '')
  await s.close(100)
})

test('handler errors become coded responses, and the server lives on', async () => {
  const { s, port } = await server()
  const a = await get(port, '/throws')
  assert.is(a.status, 500)
  assert.is(JSON.parse(a.body).error.code, 'ASSERTION')
  const b = await get(port, '/rejects')
  assert.is(b.status, 429)
  assert.is(JSON.parse(b.body).error.code, 'LIMIT_REACHED')
  assert.is((await get(port, '/ok')).status, 200)
  assert.is(s.counters.errors, 1)
  await s.close(100)
})

test('JSON bodies: bounded before buffering, invalid JSON is a 400', async () => {
  const { s, port } = await server()
  assert.equal(JSON.parse((await get(port, '/echo', { method: 'POST', body: '{"a":1}' })).body), { a: 1 })
  assert.is((await get(port, '/echo', { method: 'POST', body: 'x'.repeat(100) })).status, 413)
  assert.is((await get(port, '/echo', { method: 'POST', body: '{nope' })).status, 400)
  await s.close(100)
})

test('source policy: refused sources get 403, open routes still answer', async () => {
  const { s, port } = await server(() => false)
  const r = await get(port, '/ok')
  assert.is(r.status, 403)
  assert.is(JSON.parse(r.body).error.code, 'HTTP_FORBIDDEN')
  assert.is((await get(port, '/open')).status, 200)
  assert.is(s.counters.forbidden, 1)
  await s.close(100)
})

test('absolute-form and CONNECT requests are refused without a proxy', async () => {
  const { s, port } = await server()
  const a = await raw(port, 'GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n')
  assert.match(a.text, /^HTTP\/1\.1 403/)
  const c = await raw(port, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n')
  assert.match(c.text, /^HTTP\/1\.1 403/)
  assert.ok(c.closed)
  await s.close(100)
})

test('malformed HTTP gets 4xx or a closed socket while good requests still succeed', async () => {
  const { s, port } = await server()
  const slow = connect(port, '127.0.0.1') // slow headers on one connection...
  slow.on('error', () => {})
  let slowClosed = false
  slow.on('close', () => { slowClosed = true })
  slow.write('GET /ok HTTP/1.1\r\nHost: x\r\n')
  const drip = setInterval(() => { slow.write('X-Drip: 1\r\n') }, 200)

  const huge = await raw(port, `GET /ok HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(9000)}\r\n\r\n`)
  assert.match(huge.text, /^HTTP\/1\.1 431/, 'oversized headers')
  const garbage = await raw(port, 'HELLO THERE\r\n\r\n')
  assert.match(garbage.text, /^HTTP\/1\.1 400/, 'garbage request line')
  const binary = await raw(port, Buffer.from([0, 1, 2, 3, 255, 254, 13, 10, 13, 10]))
  assert.match(binary.text, /^HTTP\/1\.1 400/, 'binary junk')
  const noHost = await raw(port, 'GET /ok HTTP/1.1\r\n\r\n')
  assert.match(noHost.text, /^HTTP\/1\.1 400/, 'HTTP/1.1 without Host')
  assert.is((await get(port, '/ok')).status, 200, 'a well-formed request on another connection succeeds meanwhile')

  const deadline = Date.now() + 4000
  while (!slowClosed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  clearInterval(drip)
  slow.destroy()
  assert.ok(slowClosed, 'slow headers are cut off after headersTimeout')
  assert.ok(s.counters.clientErrors >= 4)
  await s.close(100)
})

test('close: in-flight connections are cut at the deadline, listening stops', async () => {
  const { s, port } = await server()
  const idle = connect(port, '127.0.0.1')
  idle.on('error', () => {})
  await new Promise((r) => idle.on('connect', r))
  const t0 = Date.now()
  await s.close(300)
  assert.ok(Date.now() - t0 < 2000)
  const refused = await get(port, '/ok').then(() => false, () => true)
  assert.ok(refused)
  idle.destroy()
})

test('a body still arriving after requestTimeoutMs gets 408, unless the route takes long bodies', async () => {
  const { s, port } = await server()
  s.route('POST', '/long', ({ req, res }) => { let n = 0; req.on('data', (c: Buffer) => { n += c.length }); req.on('end', () => sendJson(res, 200, { n })) }, { longBody: true })
  const drip = (path: string, ms: number): Promise<string> => new Promise((resolve) => {
    const r = request({ host: '127.0.0.1', port, path, method: 'POST', headers: { 'content-type': 'application/octet-stream' } }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => { body += c.toString() })
      res.on('end', () => resolve(`${res.statusCode ?? 0} ${body}`))
    })
    r.on('error', (e) => resolve(`error ${e.message}`))
    const t0 = Date.now()
    const tick = setInterval(() => {
      if (r.destroyed) { clearInterval(tick); return }
      if (Date.now() - t0 >= ms) { clearInterval(tick); r.end(); return }
      r.write('x')
    }, 100)
  })
  const [short, long] = await Promise.all([drip('/echo', 3000), drip('/long', 3000)])
  assert.match(short, /^(408|error)/, 'the ordinary route is cut off')
  assert.match(long, /^200 \{"n":\d+\}/, 'the long-body route is not')
  await s.close(100)
})

test('a taken port is a coded error that says what to do', async () => {
  const { s, port } = await server()
  const other = new HttpServer({ host: '127.0.0.1', port, connectionsMax: 4, headersTimeoutMs: 1000, requestTimeoutMs: 2000, allow: () => true, log: silentLogger })
  try {
    await other.listen()
    assert.unreachable()
  } catch (err) {
    assert.is((err as CanopyError).code, 'ADDRESS_IN_USE')
    assert.match((err as Error).message, /--http/)
  }
  await s.close(100)
})

test.run()
