// The forward proxy on a whole agent: collapsed forwarding streamed to every
// client, the HTTP caching rules (max-age, no-store, revalidation, Vary,
// conditional requests), Range from the cache, CONNECT, and plain-URL objects
// shared with a device as manifests signed by its provider.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createServer, connect, type AddressInfo } from 'node:net'
import { createSeededRandom } from '../../src/hal'
import { buildContentLan, type ContentNode } from '../helpers/content-lan'
import { httpRequest, type Reply } from '../helpers/http'
import { startOrigin, type Origin } from '../helpers/origin'

/** GET target through the proxy at `proxy`, as curl with http_proxy does (absolute-form request line). */
const viaProxy = (proxy: string, target: string, headers: Record<string, string> = {}): Promise<Reply> =>
  httpRequest(target, { proxy, headers, timeoutMs: 10_000 })

async function withLan (nodes: number, body: (lan: ContentNode[], origin: Origin) => Promise<void>, config?: (i: number) => Record<string, unknown>): Promise<void> {
  const origin = await startOrigin()
  const lan = await buildContentLan({ nodes, config })
  try {
    await body(lan.nodes, origin)
  } finally {
    await lan.stop()
    await origin.close()
  }
}

const bytes = (n: number, seed: number): Buffer => Buffer.from(createSeededRandom(seed).bytes(n))

test('four clients at once: one origin fetch, every client streamed the whole object as it arrives', async () => {
  await withLan(1, async ([gw], origin) => {
    const file = bytes(700_000, 1)
    origin.files.set('/big.iso', { body: file, delayMs: 200 })
    const replies = await Promise.all([0, 1, 2, 3].map(() => viaProxy(gw!.url, origin.url('/big.iso'))))
    for (const r of replies) {
      assert.is(r.status, 200)
      assert.ok(r.body.equals(file))
    }
    assert.is(origin.requests.filter((q) => q.path === '/big.iso').length, 1, 'collapsed into one origin request')
    assert.is(origin.sent.get('/big.iso'), file.length)
    const s = gw!.proxy.status() as any
    assert.is(s.requests.miss, 1)
    assert.is(s.requests.collapsed, 3)
    // Now cached (heuristic freshness from Last-Modified): a hit, with Age, and Range from the cache.
    const hit = await viaProxy(gw!.url, origin.url('/big.iso'), { range: 'bytes=1000-1999' })
    assert.is(hit.status, 206)
    assert.is(hit.headers['x-cache'], 'HIT')
    assert.ok(hit.body.equals(file.subarray(1000, 2000)))
    assert.ok(Number(hit.headers.age) >= 0)
    assert.is(origin.requests.length, 1)
  })
})

test('caching rules: max-age hit, no-store and private pass through, stale revalidated by ETag, Vary, client conditionals', async () => {
  await withLan(1, async ([gw], origin) => {
    const p = gw!.url
    origin.files.set('/fresh', { body: bytes(5_000, 2), headers: { 'cache-control': 'max-age=60' } })
    origin.files.set('/nostore', { body: bytes(5_000, 3), headers: { 'cache-control': 'no-store' } })
    origin.files.set('/private', { body: bytes(5_000, 4), headers: { 'cache-control': 'private, max-age=60' } })
    origin.files.set('/stale', { body: bytes(5_000, 5), headers: { 'cache-control': 'max-age=0' } })
    origin.files.set('/vary', { body: bytes(5_000, 6), headers: { 'cache-control': 'max-age=60', vary: 'Accept-Language' } })
    const count = (path: string): number => origin.requests.filter((q) => q.path === path).length
    for (let i = 0; i < 3; i++) await viaProxy(p, origin.url('/fresh'))
    assert.is(count('/fresh'), 1, 'max-age: served from the cache')
    for (let i = 0; i < 2; i++) await viaProxy(p, origin.url('/nostore'))
    assert.is(count('/nostore'), 2, 'no-store: never stored')
    for (let i = 0; i < 2; i++) await viaProxy(p, origin.url('/private'))
    assert.is(count('/private'), 2, 'private: not for a shared cache')
    const first = await viaProxy(p, origin.url('/stale'))
    const second = await viaProxy(p, origin.url('/stale'))
    assert.is(second.headers['x-cache'], 'REVALIDATED')
    assert.ok(second.body.equals(first.body))
    const last = origin.requests.filter((q) => q.path === '/stale').pop()!
    assert.is(last.headers['if-none-match'], first.headers.etag, 'revalidated with the ETag')
    assert.is(origin.sent.get('/stale'), 5_000, 'the body crossed once; the revalidation was a 304')
    await viaProxy(p, origin.url('/vary'), { 'accept-language': 'en' })
    await viaProxy(p, origin.url('/vary'), { 'accept-language': 'en' })
    assert.is(count('/vary'), 1)
    await viaProxy(p, origin.url('/vary'), { 'accept-language': 'fr' })
    assert.is(count('/vary'), 2, 'another variant goes to the origin')
    const etag = String((await viaProxy(p, origin.url('/fresh'))).headers.etag)
    const nm = await viaProxy(p, origin.url('/fresh'), { 'if-none-match': etag })
    assert.is(nm.status, 304)
    assert.is(count('/fresh'), 1)
    const reload = await viaProxy(p, origin.url('/fresh'), { 'cache-control': 'no-cache' })
    assert.is(reload.status, 200)
    assert.is(count('/fresh'), 2, 'a client\'s no-cache revalidates')
  })
})

test('an object over proxy.objectBytesMax, or without a length, passes through without being stored', async () => {
  await withLan(1, async ([gw], origin) => {
    origin.files.set('/huge', { body: bytes(300_000, 9), headers: { 'cache-control': 'max-age=600' } })
    for (let i = 0; i < 2; i++) assert.is((await viaProxy(gw!.url, origin.url('/huge'))).body.length, 300_000)
    assert.is(origin.requests.filter((q) => q.path === '/huge').length, 2)
    assert.is((gw!.proxy.status() as any).requests.pass, 0, 'asked as cacheable, turned out too large')
    assert.is((gw!.proxy.status() as any).entries, 0)
  }, () => ({ proxy: { objectBytesMax: 100_000 } }))
})

test('CONNECT is tunnelled to allowed ports only, never cached', async () => {
  const echo = createServer((s) => { s.pipe(s) })
  await new Promise<void>((resolve) => { echo.listen(0, '127.0.0.1', resolve) })
  const port = (echo.address() as AddressInfo).port
  try {
    await withLan(1, async ([gw]) => {
      const p = new URL(gw!.url)
      const tunnel = (target: string): Promise<string> => new Promise((resolve, reject) => {
        const s = connect(Number(p.port), p.hostname, () => { s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`) })
        let got = ''
        s.on('data', (c) => {
          got += c.toString()
          if (got.startsWith('HTTP/1.1 200') && got.endsWith('\r\n\r\n')) s.write('ping')
          if (got.endsWith('ping') || got.startsWith('HTTP/1.1 403')) { s.destroy(); resolve(got) }
        })
        s.on('error', reject)
        setTimeout(() => { s.destroy(); resolve(got) }, 3_000)
      })
      const ok = await tunnel(`127.0.0.1:${port}`)
      assert.match(ok, /^HTTP\/1\.1 200 Connection Established\r\n\r\nping$/)
      assert.match(await tunnel('127.0.0.1:1'), /^HTTP\/1\.1 403/)
      assert.is((gw!.proxy.status() as any).requests.tunnel, 1)
    }, () => ({ proxy: { connectPorts: [port] } }))
  } finally {
    echo.close()
  }
})

test('an object the gateway cached reaches a device as a manifest signed by its provider, in verified pieces from the LAN', async () => {
  await withLan(3, async ([gw, d1, d2], origin) => {
    const file = bytes(400_000, 7)
    origin.files.set('/pkg.deb', { body: file, headers: { 'cache-control': 'max-age=600' } })
    const url = origin.url('/pkg.deb')
    assert.ok((await viaProxy(gw!.url, url)).body.equals(file))
    // The gateway offers it on the LAN by URL, with a manifest it signed.
    const m = await httpRequest(`${gw!.url}/p2p/manifest?url=${encodeURIComponent(url)}`)
    assert.is(m.status, 200)
    assert.is(m.json().publisher, gw!.agent.identity.publicKeyText)
    for (const d of [d1!, d2!]) {
      const r = await httpRequest(`${d.url}/api/content?url=${encodeURIComponent(url)}`, { timeoutMs: 10_000 })
      assert.is(r.status, 200)
      assert.ok(r.body.equals(file))
    }
    assert.is(origin.requests.filter((q) => q.path === '/pkg.deb').length, 1, 'the origin saw one request in all')
    const t = (d2!.agent.status() as any).transfers.list[0]
    assert.is(t.fromOriginBytes, 0)
    // Not cached anywhere yet: a device goes through its provider's proxy (still one origin fetch for the LAN).
    origin.files.set('/new.bin', { body: bytes(50_000, 8), headers: { 'cache-control': 'max-age=600' } })
    const a = await httpRequest(`${d1!.url}/api/content?url=${encodeURIComponent(origin.url('/new.bin'))}`)
    const b = await viaProxy(gw!.url, origin.url('/new.bin'))
    assert.ok(a.body.equals(b.body))
    assert.is(origin.requests.filter((q) => q.path === '/new.bin').length, 1)
  })
})

test.run()
