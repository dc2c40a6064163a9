// The forward proxy for unmodified LAN clients, on the agent's port
// (http_proxy=http://gateway:8787). Concurrent requests for one URL collapse
// into one origin fetch (a fill); its bytes become pieces in the flash cache
// and every waiting client is streamed from it as they arrive, each at its
// own pace. Responses are kept by the HTTP caching rules (http-cache.ts),
// revalidated with ETag / Last-Modified when stale, and Range requests are
// answered from the cache. What cannot be stored passes through untouched.
// CONNECT is tunnelled to the configured ports, never cached.
//
// The index lives in memory: after a restart objects are fetched again (their
// old pieces age out of the flash cache). A stored object is also signed as a
// manifest by this node and offered to
// the LAN by its URL (HAVE, GET /p2p/manifest?url=), so peers fetch it in
// verified pieces from anyone; they accept such manifests only from their
// own designated provider.

import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Agent } from '../agent/agent'
import type { Service } from '../agent/service'
import { CanopyError } from '../errors'
import { httpOpen } from '../http/client'
import { tunnel } from '../http/tunnel'
import { PIECE_BYTES_MAX, PROXY_ENTRIES_COUNT_MAX, PROXY_FILLS_COUNT_MAX, PROXY_TUNNEL_IDLE_MS, PROXY_TUNNELS_COUNT_MAX } from '../limits'
import type { LocalContent } from '../protocol'
import { directives, endToEnd, lifetime, unstorable, varyMatches, varyValues, type Headers } from './http-cache'
import { pieceSizeFor, sha256, signManifest } from './manifest'
import { VIA, type ContentService } from './service'
import { sendBody } from './stream'

interface Entry {
  url: string
  /** Response headers replayed to clients (end-to-end; length and age are ours). */
  head: Headers
  vary: Record<string, string> | null
  size: number
  pieceSize: number
  /** Piece hashes, filled in order while the object arrives. */
  pieces: string[]
  /** Monotonic ms of receipt or revalidation. */
  receivedMs: number
  ageS: number
  lifeS: number
  noCache: boolean
  /** Content id of the manifest this node signed for it. */
  manifest: string | null
  fill?: Fill
}

interface Fill {
  /** Resolves with the entry to stream from, or with a response that cannot be stored. */
  head: Promise<{ entry: Entry } | { res: IncomingMessage }>
  /** Bytes received so far. */
  received: number
  /** Pieces still in memory: the one arriving and those being stored. */
  bufs: Map<number, Buffer>
  failed: CanopyError | null
  /** The request that started it: it alone may take a response that cannot be stored. */
  creator: IncomingMessage
  wake: Array<() => void>
}

const STORED_HEADERS_DROP = ['content-length', 'age', 'accept-ranges', 'content-range', 'x-cache']
type Result = 'hit' | 'miss' | 'revalidated' | 'collapsed' | 'pass' | 'tunnel' | 'refused'

export class Proxy implements Service {
  readonly name = 'proxy'
  private readonly entries = new Map<string, Entry>()
  private readonly fills = new Map<string, Fill>()
  private tunnels = 0
  readonly counts: Record<Result, number> = { hit: 0, miss: 0, revalidated: 0, collapsed: 0, pass: 0, tunnel: 0, refused: 0 }
  readonly bytes = { upstream: 0, clients: 0 }

  constructor (private readonly agent: Agent, private readonly content: ContentService) {
    content.urlIndex = (url) => this.lookup(url)
    const m = agent.metrics
    const requests = m.counter('canopy_proxy_requests_total', 'Proxy requests by result.', ['result'])
    const upstream = m.counter('canopy_proxy_upstream_bytes_total', 'Body bytes the proxy fetched upstream.')
    const clients = m.counter('canopy_proxy_client_bytes_total', 'Body bytes the proxy sent to clients.')
    m.onCollect(() => {
      for (const [r, n] of Object.entries(this.counts)) requests.set({ result: r }, n)
      upstream.set(this.bytes.upstream)
      clients.set(this.bytes.clients)
    })
  }

  private get pieces () { return this.content.pieces }

  async start (): Promise<void> {
    const { http, config } = this.agent
    http.setProxy(async ({ req, res, url }) => { await this.serve(req, res, url) })
    http.setConnect((req, socket, head) => {
      const m = /^([A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]):(\d{1,5})$/.exec(req.url ?? '')
      const port = Number(m?.[2])
      if (m === null || !config.proxy.connectPorts.includes(port) || this.tunnels >= PROXY_TUNNELS_COUNT_MAX) {
        this.counts.refused++
        socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n')
        return
      }
      this.counts.tunnel++
      this.tunnels++
      tunnel(socket, head, m[1]!.replace(/^\[|\]$/g, ''), port, PROXY_TUNNEL_IDLE_MS, (n) => { this.bytes.upstream += n }, () => { this.tunnels-- })
    })
  }

  status (): Record<string, unknown> {
    return { entries: this.entries.size, fills: this.fills.size, tunnels: this.tunnels, requests: this.counts, upstreamBytes: this.bytes.upstream, clientBytes: this.bytes.clients }
  }

  /** Offered to the LAN: a fresh object with a signed manifest. */
  lookup (url: string): LocalContent | null {
    const e = this.entries.get(url)
    return e?.manifest != null && this.fresh(e) ? { state: 'have', pieces: null } : null
  }

  async manifestBytes (url: string): Promise<Buffer | undefined> {
    const e = this.entries.get(url)
    return e?.manifest != null && this.fresh(e) ? await this.pieces?.get(e.manifest) : undefined
  }

  private fresh (e: Entry): boolean {
    return !e.noCache && e.ageS + (this.agent.hal.clock.nowMs() - e.receivedMs) / 1000 < e.lifeS
  }

  private objectBytesMax (): number {
    const max = this.pieces?.cache.stats().bytesMax ?? 0
    const set = this.agent.config.proxy.objectBytesMax
    return set === 0 ? max / 4 : Math.min(set, max / 2)
  }

  /** One proxied request (absolute-form, or /api/content?url=). */
  async serve (req: IncomingMessage, res: ServerResponse, target: URL): Promise<void> {
    const method = req.method ?? 'GET'
    const cc = directives(req.headers['cache-control'])
    const key = target.href
    if (method !== 'GET' || req.headers.authorization !== undefined || cc.has('no-store') || this.pieces === null) {
      // HEAD on a fresh entry is answered below; anything else that cannot be cached goes straight through.
      const e = this.entries.get(key)
      if (!(method === 'HEAD' && e !== undefined && this.fresh(e) && varyMatches(e.vary, req.headers))) return await this.pass(req, res, target)
    }
    let e = this.entries.get(key)
    if (e !== undefined && (!varyMatches(e.vary, req.headers) || !e.pieces.every((h) => this.pieces!.has(h)))) e = undefined
    const revalidate = cc.has('no-cache') || cc.get('max-age') === '0' || String(req.headers.pragma ?? '').includes('no-cache')
    if (e !== undefined && !revalidate && this.fresh(e)) {
      this.counts.hit++
      this.entries.delete(key)
      this.entries.set(key, e)
      await this.send(req, res, e, 'HIT')
      return
    }
    if (method === 'HEAD') return await this.pass(req, res, target)
    let f = this.fills.get(key)
    if (f !== undefined) this.counts.collapsed++
    else if (this.fills.size >= PROXY_FILLS_COUNT_MAX) return await this.pass(req, res, target)
    else f = this.fill(req, target, e)
    const got = await f.head
    if ('entry' in got) {
      if (!varyMatches(got.entry.vary, req.headers)) return await this.pass(req, res, target)
      await this.send(req, res, got.entry, got.entry === e ? 'REVALIDATED' : 'MISS')
    } else if (f.creator === req && req.headers.range === undefined) {
      this.relay(res, got.res)
    } else {
      // Not storable: the one who asked first gets that response; everyone else (and a Range request) asks for itself.
      if (f.creator === req) got.res.destroy()
      await this.pass(req, res, target)
    }
  }

  /** Upstream: through the designated provider's proxy when another node is it (unless this request came from an agent), else direct. */
  private async upstream (req: IncomingMessage, url: string, headers: Headers, body?: IncomingMessage): Promise<IncomingMessage> {
    headers.via = req.headers.via === undefined ? VIA : `${String(req.headers.via)}, ${VIA}`
    const via = String(req.headers.via ?? '').includes('canopy') ? undefined : this.content.viaProvider()
    if (via !== undefined && body === undefined) {
      try { return await httpOpen(url, { proxy: via, headers, method: req.method }) } catch { /* the provider is gone: go direct */ }
    }
    return await httpOpen(url, { headers, method: req.method, body })
  }

  private async pass (req: IncomingMessage, res: ServerResponse, target: URL): Promise<void> {
    this.counts.pass++
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD'
    this.relay(res, await this.upstream(req, target.href, endToEnd(req.headers, ['host']), hasBody ? req : undefined))
  }

  private relay (res: ServerResponse, up: IncomingMessage): void {
    if (res.destroyed) { up.destroy(); return }
    res.writeHead(up.statusCode ?? 502, { ...endToEnd(up.headers), via: VIA })
    up.on('data', (c: Buffer) => { this.bytes.upstream += c.length; this.bytes.clients += c.length })
    up.on('error', () => { res.destroy() })
    up.on('aborted', () => { res.destroy() })
    res.on('close', () => { up.destroy() })
    up.pipe(res)
  }

  /** One origin fetch for everyone asking for this URL now. */
  private fill (req: IncomingMessage, target: URL, old: Entry | undefined): Fill {
    const key = target.href
    const f: Fill = { head: null as unknown as Fill['head'], received: 0, bufs: new Map(), failed: null, creator: req, wake: [] }
    this.fills.set(key, f)
    f.head = (async () => {
      const headers = endToEnd(req.headers, ['host', 'range', 'if-range', 'if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since'])
      if (old !== undefined) {
        if (old.head.etag !== undefined) headers['if-none-match'] = old.head.etag
        if (old.head['last-modified'] !== undefined) headers['if-modified-since'] = old.head['last-modified']
      }
      let up: IncomingMessage
      try {
        up = await this.upstream(req, key, headers)
      } catch (err) {
        this.fills.delete(key)
        throw err
      }
      if (up.statusCode === 304 && old !== undefined) {
        up.resume()
        this.fills.delete(key)
        this.counts.revalidated++
        old.head = { ...old.head, ...endToEnd(up.headers, STORED_HEADERS_DROP) }
        this.stamp(old, up.headers)
        this.commit(old)
        return { entry: old }
      }
      if (unstorable(up.statusCode ?? 0, up.headers, this.objectBytesMax()) !== null) {
        this.fills.delete(key)
        return { res: up }
      }
      this.counts.miss++
      const size = Number(up.headers['content-length'])
      const e: Entry = {
        url: key, head: endToEnd(up.headers, STORED_HEADERS_DROP), vary: varyValues(up.headers.vary, req.headers), size,
        pieceSize: pieceSizeFor(size), pieces: [], receivedMs: 0, ageS: 0, lifeS: 0, noCache: false, manifest: null, fill: f
      }
      this.stamp(e, up.headers)
      this.pour(key, f, e, up)
      return { entry: e }
    })()
    f.head.catch(() => {})
    return f
  }

  private stamp (e: Entry, h: IncomingMessage['headers']): void {
    e.receivedMs = this.agent.hal.clock.nowMs()
    e.ageS = Math.max(0, Number(h.age) || 0)
    e.lifeS = lifetime(e.head) ?? 0
    e.noCache = directives(e.head['cache-control']).has('no-cache')
  }

  /** Upstream bytes into pieces in the cache (pinned until the object is complete); readers woken as they land. */
  private pour (key: string, f: Fill, e: Entry, up: IncomingMessage): void {
    const pieces = this.pieces!
    const wake = (): void => { for (const w of f.wake.splice(0)) w() }
    const pinned: string[] = []
    const fail = (err: CanopyError): void => {
      if (f.failed !== null || e.fill === undefined) return
      f.failed = err
      delete e.fill
      this.fills.delete(key)
      for (const h of pinned) pieces.cache.unpin(h)
      up.destroy()
      wake()
    }
    let storing = 0
    const landed = (i: number, buf: Buffer): void => {
      const h = sha256(buf)
      pieces.cache.pin(h)
      pinned.push(h)
      storing++
      if (storing > 1) up.pause() // at most two pieces in memory besides the one arriving
      pieces.put(h, buf).then(() => {
        e.pieces[i] = h
        f.bufs.delete(i)
        if (--storing <= 1) up.resume()
        wake()
        if (e.pieces.length * e.pieceSize >= e.size && f.received === e.size) this.complete(key, e)
      }, (err: unknown) => { fail(CanopyError.from(err, 'CACHE_FULL')) })
    }
    up.on('data', (c: Buffer) => {
      this.bytes.upstream += c.length
      while (c.length > 0 && f.failed === null) {
        if (f.received + c.length > e.size) { fail(new CanopyError('UPSTREAM_FAILED', 'longer than Content-Length')); return }
        const i = Math.floor(f.received / e.pieceSize)
        const at = f.received - i * e.pieceSize
        let buf = f.bufs.get(i)
        if (buf === undefined) {
          buf = Buffer.allocUnsafe(Math.min(e.pieceSize, e.size - i * e.pieceSize))
          f.bufs.set(i, buf)
        }
        const n = Math.min(c.length, buf.length - at)
        c.copy(buf, at, 0, n)
        f.received += n
        c = c.subarray(n)
        if (at + n === buf.length) landed(i, buf)
      }
      wake()
    })
    up.on('end', () => {
      if (f.received !== e.size) fail(new CanopyError('UPSTREAM_FAILED', 'shorter than Content-Length'))
      else if (e.size === 0) this.complete(key, e)
    })
    up.on('error', (err) => { fail(CanopyError.from(err, 'UPSTREAM_FAILED')) })
    up.on('aborted', () => { fail(new CanopyError('UPSTREAM_FAILED', 'aborted')) })
  }

  private complete (key: string, e: Entry): void {
    const f = e.fill
    if (f === undefined) return
    delete e.fill
    this.fills.delete(key)
    for (const h of e.pieces) this.pieces!.cache.unpin(h)
    this.commit(e)
    for (const w of f.wake.splice(0)) w()
    void this.sign(e)
  }

  private commit (e: Entry): void {
    this.entries.delete(e.url)
    this.entries.set(e.url, e)
    if (this.entries.size > PROXY_ENTRIES_COUNT_MAX) this.entries.delete(this.entries.keys().next().value as string)
  }

  /** Sign the object as a manifest of this node's, so LAN peers can fetch it in pieces from anyone. */
  private async sign (e: Entry): Promise<void> {
    if (e.pieceSize > PIECE_BYTES_MAX || e.url.length > 2_048) return
    try {
      const name = decodeURIComponent(new URL(e.url).pathname.split('/').pop() ?? '').slice(0, 200) || 'index'
      const { identity } = this.agent
      const m = signManifest({ name, size: e.size, pieceSize: e.pieceSize, pieces: e.pieces, urls: [e.url] }, { privateKey: identity.privateKey, publicRaw: identity.publicKey })
      await this.pieces!.put(m.id, m.bytes)
      this.content.remember(m)
      e.manifest = m.id
      this.content.emit(e.url)
    } catch { /* not shared: an odd URL or a full cache */ }
  }

  private async send (req: IncomingMessage, res: ServerResponse, e: Entry, tag: string): Promise<void> {
    const { etag, 'last-modified': lm, 'cache-control': cc } = e.head
    const inm = req.headers['if-none-match']
    const ims = req.headers['if-modified-since']
    if (inm !== undefined ? etag !== undefined && inm.split(',').map((s) => s.trim()).includes(String(etag)) : ims !== undefined && ims === lm) {
      const h: Headers = { via: VIA }
      if (etag !== undefined) h.etag = etag
      if (cc !== undefined) h['cache-control'] = cc
      res.writeHead(304, h)
      res.end()
      return
    }
    const age = Math.floor(e.ageS + Math.max(0, this.agent.hal.clock.nowMs() - e.receivedMs) / 1000)
    const h: Headers = { ...e.head, age: String(Number.isFinite(age) ? age : 0), 'x-cache': tag, via: VIA }
    this.bytes.clients += await sendBody(req, res, e.size, h, async (p) => await this.chunk(e, p))
  }

  /** Bytes of e from offset p: from the cache, or from the fill as they arrive. */
  private async chunk (e: Entry, p: number): Promise<Buffer> {
    const i = Math.floor(p / e.pieceSize)
    const off = p - i * e.pieceSize
    for (;;) {
      const h = e.pieces[i]
      if (h !== undefined) {
        const b = await this.pieces!.get(h)
        if (b === undefined) throw new CanopyError('CACHE_NOT_FOUND', 'evicted')
        return b.subarray(off)
      }
      const f = e.fill
      if (f === undefined || f.failed !== null) throw f?.failed ?? new CanopyError('CACHE_NOT_FOUND', 'incomplete')
      const buf = f.bufs.get(i)
      const have = Math.min(buf?.length ?? 0, f.received - i * e.pieceSize)
      if (buf !== undefined && have > off) return buf.subarray(off, have)
      await new Promise<void>((resolve) => { f.wake.push(resolve) })
    }
  }
}
