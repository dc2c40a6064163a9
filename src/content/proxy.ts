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
// manifest by this node and offered to the LAN by its URL (HAVE,
// GET /p2p/manifest?url=), so peers fetch it in verified pieces from anyone;
// they accept such manifests only from their own designated provider.

import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Agent } from '../agent/agent'
import type { Service } from '../agent/service'
import { CanopyError } from '../errors'
import { httpOpen } from '../http/client'
import { closing, tunnel } from '../http/tunnel'
import { PROXY_ENTRIES_COUNT_MAX, PROXY_FILLS_COUNT_MAX, PROXY_TUNNEL_IDLE_MS, PROXY_TUNNELS_COUNT_MAX } from '../limits'
import { lruSet } from '../protocol/lru'
import { directive, endToEnd, lifetime, storable, varyMatches, varyValues, type Headers } from './http-cache'
import { pieceSizeFor, sha256, signManifest } from './manifest'
import type { Pieces } from './pieces'
import { VIA, viaOrDirect, type ContentService } from './service'
import { sendBody } from './stream'

// Short names: these shapes never leave the proxy.
interface Entry {
  /** Its URL (the key in entries). */
  u: string
  /** Response headers replayed to clients (end-to-end; length and age are ours). */
  h: Headers
  /** The request headers its Vary names, as the origin saw them. */
  v: Record<string, string> | null
  /** Size in bytes (its Content-Length). */
  s: number
  /** Piece size. */
  z: number
  /** Piece hashes, filled in order while the object arrives. */
  p: string[]
  /** Born: when the origin made it, in monotonic ms (receipt or revalidation less the Age it came with). */
  t: number
  /** Its freshness lifetime (s). */
  l: number
  /** Content id of the manifest this node signed for it. */
  m?: string
  /** The fill still bringing it in. */
  f?: Fill
}

interface Fill {
  /** Resolves with the entry to stream from (e), or with a response that cannot be stored (r). */
  h: Promise<{ e: Entry } | { r: IncomingMessage }>
  /** Creator: the request that started it; it alone may take a response that cannot be stored. */
  c: IncomingMessage
  /** Bytes received. */
  n: number
  /** Pieces still in memory: the one arriving and those being stored. */
  b: Map<number, Buffer>
  /** Why it failed. */
  x?: CanopyError
  /** Readers to wake. */
  w: Array<() => void>
}

const CONDITIONALS = ['host', 'range', 'if-range', 'if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since']
const OURS = ['content-length', 'age', 'accept-ranges', 'content-range']
type Result = 'hit' | 'miss' | 'revalidated' | 'collapsed' | 'pass' | 'tunnel' | 'refused'

export interface Proxy extends Service {
  /** The manifest this node signed for a fresh object. */
  shared (url: string): string | undefined
  /** One proxied request (absolute-form, or /api/content?url=). */
  serve (req: IncomingMessage, res: ServerResponse, target: URL): Promise<void>
  status (): Record<string, unknown>
}

// A closure rather than a class: its private names minify to one letter.
export function createProxy (agent: Agent, content: ContentService): Proxy {
  const { clock } = agent.hal
  const entries = new Map<string, Entry>()
  const fills = new Map<string, Fill>()
  const counts: Record<Result, number> = { hit: 0, miss: 0, revalidated: 0, collapsed: 0, pass: 0, tunnel: 0, refused: 0 }
  let tunnels = 0
  let upBytes = 0
  const store = (): Pieces => content.pieces!
  const wake = (f: Fill): void => { for (const w of f.w.splice(0)) w() }
  /** Seconds since the origin made it (its Age plus our time with it). */
  const age = (e: Entry): number => (clock.nowMs() - e.t) / 1000
  const fresh = (e: Entry): boolean => directive(e.h['cache-control'], 'no-cache') === undefined && age(e) < e.l

  // Offered to the LAN: a fresh object with a signed manifest.
  content.byUrl = (url) => P.shared(url) === undefined ? null : { state: 'have', pieces: null }
  const requests = agent.metrics.counter('canopy_proxy_requests_total', 'Proxy requests by result.', ['result'])
  agent.metrics.onCollect(() => { for (const [r, n] of Object.entries(counts)) requests.set({ result: r }, n) })

  const P: Proxy = {
    name: 'proxy',

    async start () {
      const { http, config } = agent
      http.setProxy(async ({ req, res, url }) => { await P.serve(req, res, url) })
      http.setConnect((req, socket, head) => {
        const m = /^([A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]):(\d{1,5})$/.exec(req.url ?? '')
        if (m === null || !config.proxy.connectPorts.includes(Number(m[2])) || tunnels >= PROXY_TUNNELS_COUNT_MAX) {
          counts.refused++
          socket.end(closing('403 Forbidden'))
          return
        }
        counts.tunnel++
        tunnels++
        tunnel(socket, head, m[1]!.replace(/^\[|\]$/g, ''), Number(m[2]), PROXY_TUNNEL_IDLE_MS, () => { tunnels-- })
      })
    },

    status: () => ({ entries: entries.size, fills: fills.size, tunnels, requests: counts, upstreamBytes: upBytes }),

    shared (url) {
      const e = entries.get(url)
      return e !== undefined && fresh(e) ? e.m : undefined
    },

    async serve (req, res, target) {
      const cc = req.headers['cache-control']
      const key = target.href
      const pass = async (): Promise<void> => {
        counts.pass++
        relay(res, await upstream(req, key, endToEnd(req.headers, ['host']), req.method === 'GET' || req.method === 'HEAD' ? undefined : req))
      }
      if (req.method !== 'GET' || req.headers.authorization !== undefined || directive(cc, 'no-store') !== undefined || content.pieces === null) return await pass()
      let e = entries.get(key)
      if (e !== undefined && (!varyMatches(e.v, req.headers) || !e.p.every((h) => store().has(h)))) e = undefined
      if (e !== undefined && fresh(e) && directive(cc, 'no-cache') === undefined && directive(cc, 'max-age') !== '0' && req.headers.pragma !== 'no-cache') {
        counts.hit++
        commit(e)
        return await send(req, res, e, 'HIT')
      }
      let f = fills.get(key)
      if (f !== undefined) counts.collapsed++
      else if (fills.size >= PROXY_FILLS_COUNT_MAX) return await pass()
      else f = fill(req, key, e)
      const got = await f.h
      if ('e' in got) {
        if (varyMatches(got.e.v, req.headers)) return await send(req, res, got.e, got.e === e ? 'REVALIDATED' : 'MISS')
      } else if (f.c === req) {
        // Not storable: the one who asked first gets that response (unless it wanted a range); everyone else asks for itself.
        if (req.headers.range === undefined) return relay(res, got.r)
        got.r.destroy()
      }
      await pass()
    }
  }

  /** Upstream: through the designated provider's proxy when another node is it (unless this request came from an agent), else direct. */
  async function upstream (req: IncomingMessage, url: string, headers: Headers, body?: IncomingMessage): Promise<IncomingMessage> {
    const from = req.headers.via
    headers.via = from === undefined ? VIA : `${String(from)}, ${VIA}`
    const via = String(from).includes('canopy') || body !== undefined ? undefined : content.via()
    return await viaOrDirect(via, (proxy) => httpOpen(url, { proxy, headers, method: req.method, body }))
  }

  function relay (res: ServerResponse, up: IncomingMessage): void {
    if (res.destroyed) { up.destroy(); return }
    res.writeHead(up.statusCode ?? 502, { ...endToEnd(up.headers), via: VIA })
    up.on('data', (c: Buffer) => { upBytes += c.length })
    const cut = (): void => { res.destroy() }
    up.on('error', cut)
    up.on('aborted', cut)
    res.on('close', () => { up.destroy() })
    up.pipe(res)
  }

  /** One origin fetch for everyone asking for this URL now; a stale `old` is revalidated. */
  function fill (req: IncomingMessage, key: string, old: Entry | undefined): Fill {
    const f: Fill = { h: null as unknown as Fill['h'], c: req, n: 0, b: new Map(), w: [] }
    fills.set(key, f)
    f.h = (async () => {
      const headers = endToEnd(req.headers, CONDITIONALS)
      if (old?.h.etag !== undefined) headers['if-none-match'] = old.h.etag
      if (old?.h['last-modified'] !== undefined) headers['if-modified-since'] = old.h['last-modified']
      const up = await upstream(req, key, headers).catch((err: unknown) => { fills.delete(key); throw err })
      if (up.statusCode === 304 && old !== undefined) {
        fills.delete(key)
        up.resume()
        counts.revalidated++
        old.h = { ...old.h, ...endToEnd(up.headers, OURS) }
        stamp(old, up)
        commit(old)
        return { e: old }
      }
      const max = store().cache.stats().bytesMax
      const set = agent.config.proxy.objectBytesMax
      if (!storable(up.statusCode ?? 0, up.headers, set === 0 ? max / 4 : Math.min(set, max / 2))) {
        fills.delete(key)
        return { r: up }
      }
      counts.miss++
      const size = Number(up.headers['content-length'])
      const e: Entry = { u: key, h: endToEnd(up.headers, OURS), v: varyValues(up.headers.vary, req.headers), s: size, z: pieceSizeFor(size), p: [], t: 0, l: 0, f }
      stamp(e, up)
      pour(key, f, e, up)
      return { e }
    })()
    f.h.catch(() => {})
    return f
  }

  function stamp (e: Entry, up: IncomingMessage): void {
    e.t = clock.nowMs() - 1000 * Math.max(0, Number(up.headers.age) || 0)
    e.l = lifetime(e.h) ?? 0
  }

  /** Upstream bytes into pieces in the cache (pinned until the object is complete); readers woken as they land. */
  function pour (key: string, f: Fill, e: Entry, up: IncomingMessage): void {
    const pieces = store()
    const pinned: string[] = []
    const failed = (why: string): CanopyError => new CanopyError('UPSTREAM_FAILED', why)
    const end = (err?: CanopyError): void => {
      if (e.f === undefined) return
      delete e.f
      fills.delete(key)
      for (const h of pinned) pieces.cache.unpin(h)
      if (err === undefined) {
        commit(e)
        void sign(e)
      } else {
        f.x = err
        up.destroy()
      }
      wake(f)
    }
    let storing = 0
    up.on('data', (c: Buffer) => {
      upBytes += c.length
      if (f.n + c.length > e.s) { end(failed('longer than Content-Length')); return }
      while (c.length > 0) {
        const i = Math.floor(f.n / e.z)
        const at = f.n - i * e.z
        const buf = f.b.get(i) ?? Buffer.allocUnsafe(Math.min(e.z, e.s - i * e.z))
        f.b.set(i, buf)
        const n = c.copy(buf, at)
        f.n += n
        c = c.subarray(n)
        if (at + n < buf.length) continue
        const h = sha256(buf)
        pieces.cache.pin(h)
        pinned.push(h)
        if (++storing > 1) up.pause() // at most two pieces in memory besides the one arriving
        pieces.put(h, buf).then(() => {
          e.p[i] = h
          f.b.delete(i)
          if (--storing <= 1) up.resume()
          if (storing === 0 && f.n === e.s) end() // every piece stored, whatever order the puts finished in
          wake(f)
        }, (err: unknown) => { end(CanopyError.from(err, 'CACHE_FULL')) })
      }
      wake(f)
    })
    up.on('end', () => { if (f.n !== e.s) end(failed('shorter than Content-Length')); else if (e.s === 0) end() })
    up.on('error', (err) => { end(CanopyError.from(err, 'UPSTREAM_FAILED')) })
    up.on('aborted', () => { end(failed('aborted')) })
  }

  const commit = (e: Entry): void => { lruSet(entries, e.u, e, PROXY_ENTRIES_COUNT_MAX) }

  /** Sign the object as a manifest of this node's, so LAN peers can fetch it in pieces from anyone. */
  async function sign (e: Entry): Promise<void> {
    try {
      const name = decodeURIComponent(new URL(e.u).pathname.split('/').pop() ?? '').slice(0, 200) || 'index'
      const { identity } = agent
      const m = signManifest({ name, size: e.s, pieceSize: e.z, pieces: e.p, urls: [e.u] }, { privateKey: identity.privateKey, publicRaw: identity.publicKey })
      await store().put(m.id, m.bytes)
      content.keep(m)
      e.m = m.id
      content.emit(e.u)
    } catch { /* not shared: an odd URL or a full cache */ }
  }

  async function send (req: IncomingMessage, res: ServerResponse, e: Entry, tag: string): Promise<void> {
    const { etag, 'last-modified': lm } = e.h
    const inm = req.headers['if-none-match']
    if (inm !== undefined ? inm.split(',').some((s) => s.trim() === etag) : lm !== undefined && req.headers['if-modified-since'] === lm) {
      res.writeHead(304, { ...e.h, via: VIA }).end() // the client's copy is current
      return
    }
    await sendBody(req, res, e.s, { ...e.h, age: String(Math.floor(age(e))), 'x-cache': tag, via: VIA }, async (p) => await chunk(e, p))
  }

  /** Bytes of e from offset p: from the cache, or from the fill as they arrive. */
  async function chunk (e: Entry, p: number): Promise<Buffer> {
    const i = Math.floor(p / e.z)
    const off = p - i * e.z
    for (;;) {
      const h = e.p[i]
      const f = e.f
      const buf = h === undefined ? f?.b.get(i) : await store().get(h)
      const have = h === undefined ? Math.min(buf?.length ?? 0, (f?.n ?? 0) - i * e.z) : buf?.length ?? 0
      if (have > off) return buf!.subarray(off, have)
      if (h !== undefined || f === undefined || f.x !== undefined) throw f?.x ?? new CanopyError('CACHE_NOT_FOUND', 'incomplete')
      await new Promise<void>((resolve) => { f.w.push(resolve) })
    }
  }

  return P
}
