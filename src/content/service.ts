// Content distribution as one of the agent's services ("transfers" in
// /api/status): this node's transfers, what it tells the LAN it holds (the
// ContentIndex resolution asks), where every transfer gets its pieces, the
// provider fetching on behalf of peers, trust, the scanner hook, peer credit,
// saved state and metrics.
//
// Where pieces come from, so that each piece crosses the WAN once per LAN:
//   * LAN peers that hold them (resolution, asked again every TRANSFER_RESOLVE_MS);
//   * the designated provider when another node is it: it may be asked for
//     any piece (?c=<content id>&m=<manifest URL>) and fetches what it lacks
//     from the origin on the asker's behalf;
//   * the origin only when this node is the provider, or when no usable
//     provider has been known for PROVIDER_WAIT_MS (none on this LAN, an
//     election after the provider died, a banned provider).

import { join } from 'node:path'
import { Readable } from 'node:stream'
import type { Agent } from '../agent/agent'
import type { Service } from '../agent/service'
import { CanopyError } from '../errors'
import type { FlashCacheService } from '../flash-cache'
import { TimerGroup, type Scanner } from '../hal'
import { httpOpen, readBody } from '../http/client'
import {
  CONTENT_STATE_BYTES_MAX, CONTENT_STATE_WRITE_MS, KNOWN_CONTENT_COUNT_MAX, MANIFEST_BYTES_MAX, ON_DEMAND_WAIT_MS, ON_DEMAND_WAITERS_COUNT_MAX,
  PROVIDER_WAIT_MS, SOURCE_BUSY_BACKOFF_MS, TRANSFER_RESOLVE_MS, TRANSFERS_COUNT_MAX
} from '../limits'
import { isContentId, type ContentIndex, type ContentRef, type Election, type LocalContent, type PeerDirectory, type ProviderRef, type Resolver } from '../protocol'
import { checkTrust, parseManifest, sha256, type Manifest } from './manifest'
import { Pieces } from './pieces'
import { originSource, peerSource, type PeerSource } from './sources'
import { rangesWhere, Transfer } from './transfer'
import { WanGate } from './wan'
import { Credit } from './credit'

export interface ContentLan { resolver: Resolver, election: Election, peers: PeerDirectory }

export interface Active {
  m: Manifest
  t: Transfer
  onBehalf: boolean
  manifestUrl: string | null
  provider: string | null
  noProviderSinceMs: number | null
  lastResolveMs: number
  resolving: boolean
  /** Sources not to add again before this (ms): they just failed. */
  avoid: Map<string, number>
  scan: Promise<void> | null
  verdict: string | null
  pinned: boolean
}

/** Sent by agents on their own upstream requests: a proxy that sees it goes direct (no loops between two nodes that each think the other is the provider). */
export const VIA = '1.1 canopy'
const FROM = { peer: 'fromPeersBytes', provider: 'fromProviderBytes', origin: 'fromOriginBytes' } as const
const STATE_FILE = 'transfers.json'
const vetoed = (a?: Active): boolean => a?.verdict?.startsWith('vetoed') === true
/** Running or done: not to be started again. */
const alive = (a?: Active): a is Active => a?.t.state === 'running' || a?.t.state === 'done'

export class ContentService implements Service, ContentIndex {
  readonly name = 'transfers'
  readonly #credit: Credit
  readonly #gate: WanGate
  pieces: Pieces | null = null
  lan: ContentLan | null = null
  /** The proxy's answer for URLs (plain objects the gateway cached and signed). */
  urlIndex: ((url: string) => LocalContent | null) | null = null
  readonly totals = { fromPeersBytes: 0, fromProviderBytes: 0, fromOriginBytes: 0, servedBytes: 0, servedPieces: 0, corruptPieces: 0, peersIsolated: 0, vetoed: 0 }
  uploads = 0
  #waiting = 0
  readonly #active = new Map<string, Active>()
  readonly #known = new Map<string, Manifest>()
  readonly #pendingBehalf = new Map<string, Promise<Active | null>>()
  readonly #listeners = new Set<(c: ContentRef) => void>()
  readonly #timers: TimerGroup
  #dirty = false

  readonly #agent: Agent
  readonly #cacheService: FlashCacheService
  readonly #scanner: Scanner | null
  constructor (agent: Agent, cacheService: FlashCacheService, scanner: Scanner | null) {
    this.#agent = agent
    this.#cacheService = cacheService
    this.#scanner = scanner
    const { hal, config } = agent
    this.#credit = new Credit(hal.clock)
    this.#gate = new WanGate(hal.clock, config.wan.rateBytesPerSecond, config.wan.offPeak)
    this.#timers = new TimerGroup(hal.clock)
    this.#registerMetrics()
  }

  get #config () { return this.#agent.config.content }

  async start (): Promise<void> {
    const cache = this.#cacheService.cache
    if (cache === null) return // no flash cache: no transfers (the cache service says why)
    this.pieces = new Pieces(cache)
    await this.#restore()
    this.#timers.setInterval(() => { void this.#save() }, CONTENT_STATE_WRITE_MS)
  }

  async stop (): Promise<void> {
    this.#timers.clearAll()
    this.#dirty = true
    await this.#save(true)
    for (const a of this.#active.values()) a.t.stop()
  }

  // ---- what this node holds (resolution asks on every NEED) -------------------------

  lookup (ref: ContentRef): LocalContent | null {
    if (!isContentId(ref)) return this.urlIndex?.(ref) ?? null
    const a = this.#active.get(ref)
    if (vetoed(a)) return null
    if (a !== undefined && a.t.state === 'running') return { state: 'downloading', pieces: a.t.ranges(), doneBytes: a.t.doneBytes, totalBytes: a.m.size }
    const m = a?.m ?? this.#known.get(ref)
    const pieces = this.pieces
    if (m === undefined || pieces === null) return null
    const n = m.pieces.length
    const held = rangesWhere(n, (i) => pieces.has(m.pieces[i]!))
    if (held.length === 0 && n > 0) return null
    return { state: 'have', pieces: held.length === 1 && held[0]![0] === 0 && held[0]![1] === n ? null : held }
  }

  load (): number { return Math.min(1, this.uploads / this.#config.uploadSlots) }

  on (listener: (c: ContentRef) => void): () => void {
    this.#listeners.add(listener)
    return () => { this.#listeners.delete(listener) }
  }

  emit (c: ContentRef): void { for (const l of [...this.#listeners]) l(c) }

  // ---- manifests ---------------------------------------------------------------------

  /** Remember a manifest (to answer NEEDs for it and find it again by id). */
  remember (m: Manifest): void {
    this.#known.delete(m.id)
    this.#known.set(m.id, m)
    if (this.#known.size > KNOWN_CONTENT_COUNT_MAX) this.#known.delete(this.#known.keys().next().value as string)
    this.#dirty = true
  }

  manifest (id: string): Manifest | undefined { return this.#active.get(id)?.m ?? this.#known.get(id) }

  /** A manifest by URL (through the provider's proxy, which caches it), checked against the trusted publishers and `extra` (from the CLI on this box). */
  async manifestFrom (url: string, extra: readonly string[] = []): Promise<Manifest> {
    const m = checkTrust(parseManifest(await this.upstream(url, MANIFEST_BYTES_MAX)), [...this.#agent.config.trustedPublishers, ...extra])
    this.remember(m)
    return this.manifest(m.id) ?? m
  }

  /** Where this node's own fetches from the internet go: the provider's proxy when another node is the provider. */
  viaProvider (): string | undefined {
    const p = this.lan?.election.current() ?? null
    return p !== null && !p.self ? p.baseUrl : undefined
  }

  /** A small body from the internet: through the provider's proxy (collapsed and cached there), else or if that fails directly. */
  async upstream (url: string, max: number): Promise<Buffer> {
    const via = this.viaProvider()
    return await (via === undefined ? fetchBody(url, max) : fetchBody(url, max, via).catch(async () => await fetchBody(url, max)))
  }

  /** A plain URL's manifest signed by this node's designated provider (which cached the object), or null. */
  async providerManifest (url: string): Promise<Manifest | null> {
    const p = this.lan?.election.current() ?? null
    const key = p === null || p.self ? undefined : this.lan?.peers.get(p.nodeId)?.publicKey
    if (p === null || key === undefined) return null
    const b = await fetchBody(`${p.baseUrl}/p2p/manifest?url=${encodeURIComponent(url)}`, MANIFEST_BYTES_MAX).catch(() => null)
    if (b === null) return null
    const m = parseManifest(b)
    // Accepted only from our own designated provider, signed by its own key.
    checkTrust(m, [`ed25519:${key.toString('base64url')}`])
    if (!m.urls.includes(url)) throw new CanopyError('MANIFEST_INVALID', 'the provider\'s manifest is for another URL')
    this.remember(m)
    return m
  }

  // ---- transfers ------------------------------------------------------------------------

  /** The transfer of m, started (or resumed from the cache) if need be. */
  open (m: Manifest, onBehalf = false, manifestUrl: string | null = null): Active {
    const old = this.#active.get(m.id)
    if (old !== undefined) {
      if (vetoed(old)) throw new CanopyError('CONTENT_VETOED', `"${m.name}" was ${old.verdict}`)
      if (alive(old)) {
        if (!onBehalf) old.onBehalf = false
        old.manifestUrl ??= manifestUrl
        return old
      }
      this.#active.delete(m.id) // failed or stopped: start again
    }
    const pieces = this.pieces
    if (pieces === null) throw new CanopyError('HTTP_UNAVAILABLE', 'no flash cache here')
    if (this.#active.size >= TRANSFERS_COUNT_MAX) {
      const ended = [...this.#active.values()].find((a) => a.t.state !== 'running')
      if (ended === undefined) throw new CanopyError('LIMIT_REACHED', `${TRANSFERS_COUNT_MAX} transfers are already running`)
      this.#active.delete(ended.m.id)
    }
    this.remember(m)
    // The manifest is a piece too: peers, and this node after a restart, find it by its id.
    pieces.put(m.id, m.bytes).catch(() => {}) // too large for a cache block: kept in memory only
    const cache = pieces.cache
    const a: Active = {
      m, t: null as unknown as Transfer, onBehalf, manifestUrl, provider: null, noProviderSinceMs: null, lastResolveMs: -Infinity,
      resolving: false, avoid: new Map(), scan: null, verdict: null,
      // Its pieces stay while it runs if it fits in half the cache; a larger file streams through (an evicted piece is fetched again when read).
      pinned: m.size <= cache.stats().bytesMax / 2
    }
    if (a.pinned) for (const h of m.pieces) cache.pin(h)
    const { clock } = this.#agent.hal
    a.t = new Transfer(m, {
      store: pieces,
      clock,
      rank: (s) => this.#credit.score(s.id),
      events: {
        tick: () => { this.#policy(a) },
        received: (s, n, ms) => {
          if (s.kind !== 'origin') this.#credit.good(s.id, n, ms)
          this.totals[FROM[s.kind]] += n
        },
        failed: (s) => {
          if (s.kind !== 'origin') this.#credit.fail(s.id)
          // Dropped by the engine (failures in a row): do not add it again for a while.
          queueMicrotask(() => { if (!a.t.hasSource(s.id)) a.avoid.set(s.id, clock.nowMs() + 5 * SOURCE_BUSY_BACKOFF_MS) })
        },
        corrupt: (s) => {
          this.#credit.ban(s.id)
          this.totals.corruptPieces++
          this.totals.peersIsolated++
          this.#dirty = true
          this.#agent.log.warn('peer isolated: a piece failed verification', { nodeId: s.id, content: m.id })
        },
        stored: () => { this.emit(m.id) },
        ended: () => { queueMicrotask(() => { this.#ended(a) }) }
      }
    })
    this.#active.set(m.id, a)
    this.#dirty = true
    this.#agent.log.info('transfer', { content: m.id, name: m.name, size: m.size, held: a.t.doneCount, onBehalf })
    this.#policy(a)
    this.emit(m.id)
    return a
  }

  /** This node is the provider and a peer asked for a piece of content c: run that transfer (the manifest from the cache or from its URL). */
  onBehalf (c: string, manifestUrl: string | null): Promise<Active | null> {
    const a = this.#active.get(c)
    if (alive(a)) return Promise.resolve(a)
    if (this.lan?.election.current()?.self !== true) return Promise.resolve(null)
    let p = this.#pendingBehalf.get(c)
    if (p === undefined) {
      p = (async () => {
        let m = this.manifest(c)
        if (m === undefined) {
          const bytes = await this.pieces?.get(c) ?? (manifestUrl === null ? undefined : await this.upstream(manifestUrl, MANIFEST_BYTES_MAX))
          if (bytes === undefined) return null
          if (sha256(bytes) !== c) throw new CanopyError('MANIFEST_INVALID', 'not the manifest asked for')
          m = parseManifest(bytes) // its signature must hold; trust is the asker's policy
        }
        return this.open(m, true, manifestUrl)
      })().finally(() => { this.#pendingBehalf.delete(c) })
      this.#pendingBehalf.set(c, p)
    }
    return p
  }

  /** A piece a peer asked the provider for: wait (bounded) until this node's transfer has it. */
  async onDemand (hash: string, c: string, manifestUrl: string | null): Promise<Buffer | undefined> {
    if (this.#waiting >= ON_DEMAND_WAITERS_COUNT_MAX) throw new CanopyError('HTTP_UNAVAILABLE', 'busy')
    this.#waiting++
    try {
      const a = await this.onBehalf(c, manifestUrl)
      const i = a?.m.pieces.indexOf(hash) ?? -1
      if (a === null || i < 0) return undefined
      await within(a.t.piece(i), ON_DEMAND_WAIT_MS, this.#agent.hal.clock, () => new CanopyError('HTTP_UNAVAILABLE', 'not here yet; ask again'))
      return await this.pieces?.get(hash)
    } catch (err) {
      throw CanopyError.is(err, 'HTTP_UNAVAILABLE') ? err : CanopyError.from(err, 'UPSTREAM_FAILED')
    } finally {
      this.#waiting--
    }
  }

  /** Resolves once the whole file passed the scanner (at once without one); rejects CONTENT_VETOED. */
  scanned (a: Active): Promise<void> {
    if (this.#scanner === null) return Promise.resolve()
    a.scan ??= this.#scan(a)
    return a.scan
  }

  async #scan (a: Active): Promise<void> {
    const { m, t } = a
    const pieces = this.pieces!
    try {
      await Promise.all(m.pieces.map((_, i) => t.piece(i)))
      const body = Readable.from((async function * () {
        for (const h of m.pieces) {
          const b = await pieces.get(h)
          if (b === undefined) throw new CanopyError('CACHE_NOT_FOUND', 'evicted')
          yield b
        }
      })())
      const r = await this.#scanner!.scan(m.name, body)
      a.verdict = r.clean ? 'clean' : `vetoed: ${r.detail}`
    } catch (err) {
      if (t.state === 'failed') throw err
      a.verdict = `vetoed: no scan (${CanopyError.from(err, 'FILE_IO').message})`
    }
    if (a.verdict === 'clean') return
    this.totals.vetoed++
    this.#agent.log.warn('vetoed', { content: m.id, name: m.name, verdict: a.verdict })
    for (const h of m.pieces) await pieces.delete(h).catch(() => {})
    this.emit(m.id)
    throw new CanopyError('CONTENT_VETOED', `"${m.name}" was ${a.verdict}`)
  }

  #ended (a: Active): void {
    const { t, m } = a
    if (a.pinned) {
      for (const h of m.pieces) this.pieces?.cache.unpin(h)
      a.pinned = false
    }
    this.#dirty = true
    this.emit(m.id)
    this.#agent.log.info(`transfer ${t.state}`, { content: m.id, ...t.bytesFrom, err: t.error })
    if (t.state === 'done') void this.scanned(a).catch(() => {})
  }

  /** Sources for a running transfer, on every tick (the policy in the header). */
  #policy (a: Active): void {
    const { t, m } = a
    if (t.state !== 'running' || this.lan === null) {
      if (this.lan === null && !t.hasSource('origin')) t.addSource(originSource(m, this.#config.originSlots, this.#gate))
      return
    }
    const now = this.#agent.hal.clock.nowMs()
    const usable = (id: string): boolean => (a.avoid.get(id) ?? 0) <= now && !this.#credit.banned(id)
    const { provider, origin, sinceMs } = sourcing(this.lan.election.current(), usable, a.noProviderSinceMs, now)
    a.noProviderSinceMs = sinceMs
    for (const id of t.sourceIds()) if (t.source(id)?.kind === 'provider' && id !== provider?.nodeId) t.dropSource(id)
    if (provider !== null && t.source(provider.nodeId)?.kind !== 'provider') {
      t.dropSource(provider.nodeId) // it may have been listed as a plain peer
      const q = `?c=${m.id}${a.manifestUrl === null ? '' : `&m=${encodeURIComponent(a.manifestUrl)}`}`
      t.addSource(peerSource({ id: provider.nodeId, kind: 'provider', baseUrl: provider.baseUrl, m, slots: this.#config.providerSlots, pieces: null, query: q }))
    }
    a.provider = provider?.nodeId ?? null
    if (origin && !t.hasSource('origin')) t.addSource(originSource(m, this.#config.originSlots, this.#gate))
    if (!origin && t.hasSource('origin')) t.dropSource('origin')
    if (!a.resolving && now - a.lastResolveMs >= TRANSFER_RESOLVE_MS) {
      a.resolving = true
      a.lastResolveMs = now
      this.lan.resolver.resolve(m.id, { collect: true }).then((r) => {
        if (t.state !== 'running') return
        for (const h of [...r.holders, ...r.downloads]) {
          if (h.nodeId === a.provider || !usable(h.nodeId)) continue
          const cur = t.source(h.nodeId) as PeerSource | undefined
          if (cur !== undefined) cur.pieces = h.pieces
          else t.addSource(peerSource({ id: h.nodeId, kind: 'peer', baseUrl: h.baseUrl, m, slots: this.#config.peerSlots, pieces: h.pieces }))
        }
      }, () => {}).finally(() => { a.resolving = false })
    }
  }

  // ---- saved state: running transfers (resumed at start), bans ------------------------

  get #statePath (): string { return join(this.#agent.hal.dataDir, STATE_FILE) }

  async #save (force = false): Promise<void> {
    if (!this.#dirty && !force) return
    this.#dirty = false
    const state = {
      running: [...this.#active.values()].filter((a) => a.t.state === 'running').map((a) => [a.m.id, a.manifestUrl, a.onBehalf]),
      bans: this.#credit.saveBans()
    }
    await this.#agent.hal.files.writeAtomic(this.#statePath, Buffer.from(JSON.stringify(state))).catch((err: unknown) => { this.#agent.log.warn('state not saved', { err }) })
  }

  async #restore (): Promise<void> {
    let state: { running?: unknown, bans?: unknown }
    try {
      const raw = await this.#agent.hal.files.read(this.#statePath, CONTENT_STATE_BYTES_MAX)
      if (raw === null) return
      state = JSON.parse(raw.toString('utf8'))
      if (typeof state !== 'object' || state === null) return
    } catch {
      return // unreadable: start without it
    }
    this.#credit.loadBans(state.bans)
    for (const r of Array.isArray(state.running) ? state.running.slice(0, TRANSFERS_COUNT_MAX) : []) {
      // The manifest is in the cache under its content id; its pieces too, as far as they came.
      try { this.open(parseManifest((await this.pieces!.get(String(r[0])))!), r[2] === true, typeof r[1] === 'string' ? r[1] : null) } catch { /* gone */ }
    }
  }

  // ---- status and metrics -----------------------------------------------------------

  #summary (a: Active): Record<string, unknown> {
    const { t, m } = a
    return {
      id: m.id,
      name: m.name,
      state: vetoed(a) ? 'vetoed' : t.state,
      sizeBytes: m.size,
      doneBytes: t.doneBytes,
      ...Object.fromEntries(Object.entries(FROM).map(([k, n]) => [n, t.bytesFrom[k as keyof typeof FROM]])),
      seconds: ((t.endedMs ?? this.#agent.hal.clock.nowMs()) - t.startedMs) / 1000,
      onBehalf: a.onBehalf,
      note: t.error?.message ?? a.verdict
    }
  }

  status (): Record<string, unknown> {
    return { ...this.totals, uploads: this.uploads, list: [...this.#active.values()].map((a) => this.#summary(a)), peers: this.#credit.status() }
  }

  #registerMetrics (): void {
    const m = this.#agent.metrics
    const bytes = m.counter('canopy_content_bytes_total', 'Verified piece bytes received, by source.', ['source'])
    const served = m.counter('canopy_content_served_bytes_total', 'Piece bytes served to peers.')
    const isolated = m.counter('canopy_content_peers_isolated_total', 'Peers isolated for a corrupt piece.')
    m.onCollect(() => {
      const s = this.totals
      for (const [k, n] of Object.entries(FROM)) bytes.set({ source: k }, s[n])
      served.set(s.servedBytes)
      isolated.set(s.peersIsolated)
    })
  }
}

/**
 * Where a transfer's pieces may come from now: the provider to ask (another
 * node, usable), and whether this node fetches from the origin itself (it is
 * the provider, or no usable provider has been known since `sinceMs` for
 * PROVIDER_WAIT_MS). Returns the new `sinceMs`.
 */
export function sourcing (p: ProviderRef | null, usable: (id: string) => boolean, sinceMs: number | null, nowMs: number): { provider: ProviderRef | null, origin: boolean, sinceMs: number | null } {
  const provider = p !== null && !p.self && usable(p.nodeId) ? p : null
  const since = p?.self === true || provider !== null ? null : sinceMs ?? nowMs
  return { provider, origin: p?.self === true || (since !== null && nowMs - since >= PROVIDER_WAIT_MS), sinceMs: since }
}

/** A 200's body, at most max bytes (through an HTTP proxy if given). */
export async function fetchBody (url: string, max: number, proxy?: string): Promise<Buffer> {
  const res = await httpOpen(url, { proxy, headers: { via: VIA } })
  if (res.statusCode === 200) return await readBody(res, max)
  res.resume()
  throw new CanopyError('UPSTREAM_FAILED', `${url.slice(0, 200)}: HTTP ${res.statusCode ?? 0}`)
}

/** p, or `err()` after ms on the HAL clock. */
export function within<T> (p: Promise<T>, ms: number, clock: { setTimeout (fn: () => void, ms: number): { cancel (): void } }, err: () => Error): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = clock.setTimeout(() => { reject(err()) }, ms)
    p.then((v) => { timer.cancel(); resolve(v) }, (e: unknown) => { timer.cancel(); reject(e) })
  })
}
