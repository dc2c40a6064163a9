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
import type { Agent } from '../agent/agent'
import type { Service } from '../agent/service'
import { formatPublicKey } from '../crypto'
import { CanopyError } from '../errors'
import type { FlashCacheService } from '../flash-cache'
import { TimerGroup, type Scanner } from '../hal'
import { httpOpen, readBody } from '../http/client'
import {
  CONTENT_STATE_BYTES_MAX, CONTENT_STATE_WRITE_MS, KNOWN_CONTENT_COUNT_MAX, MANIFEST_BYTES_MAX, ON_DEMAND_WAIT_MS, ON_DEMAND_WAITERS_COUNT_MAX,
  PROVIDER_WAIT_MS, SOURCE_BUSY_BACKOFF_MS, TRANSFER_RESOLVE_MS, TRANSFERS_COUNT_MAX
} from '../limits'
import { listeners } from '../protocol/listeners'
import { lruSet } from '../protocol/lru'
import { isContentId, type ContentIndex, type ContentRef, type Election, type LocalContent, type PeerDirectory, type ProviderRef, type Resolver } from '../protocol'
import { checkTrust, parseManifest, sha256, type Manifest } from './manifest'
import { createPieces, type Pieces } from './pieces'
import { originSource, peerSource, type PeerSource } from './sources'
import type { PieceSource } from './transfer'
import { createTransfer, rangesWhere, type Transfer } from './transfer'
import { createWanGate } from './wan'
import { createCredit } from './credit'

export interface ContentLan { resolver: Resolver, election: Election, peers: PeerDirectory }

export interface Active {
  m: Manifest
  t: Transfer
  // Short names: this shape never leaves the process (status() spells them out).
  /** Fetched on behalf of a peer. */
  b: boolean
  /** The manifest's URL, if known. */
  u: string | null
  /** The scan, once started. */
  s: Promise<void> | null
  /** The scanner's verdict ('clean', 'vetoed: …'). */
  v: string | null
}

/** Sent by agents on their own upstream requests: a proxy that sees it goes direct (no loops between two nodes that each think the other is the provider). */
export const VIA = '1.1 canopy'
const FROM = { peer: 'fromPeersBytes', provider: 'fromProviderBytes', origin: 'fromOriginBytes' } as const
const vetoed = (a?: Active): boolean => a?.v?.startsWith('vetoed') === true
const running = (t?: Transfer): boolean => t?.state === 'running'
/** Running or done: not to be started again. */
const alive = (a?: Active): a is Active => running(a?.t) || a?.t.state === 'done'

export interface ContentService extends Service, ContentIndex {
  pieces: Pieces | null
  lan: ContentLan | null
  /** The proxy's answer for URLs (plain objects the gateway cached and signed). */
  byUrl: ((url: string) => LocalContent | null) | null
  readonly totals: Record<'fromPeersBytes' | 'fromProviderBytes' | 'fromOriginBytes' | 'servedBytes' | 'servedPieces' | 'corruptPieces' | 'peersIsolated' | 'vetoed', number>
  uploads: number
  emit (c: ContentRef): void
  /** Remember a manifest (to answer NEEDs for it and find it again by id). */
  keep (m: Manifest): void
  /** A manifest by URL (through the provider's proxy, which caches it), checked against the trusted publishers and `extra` (from the CLI on this box). */
  manifestFrom (url: string, extra?: readonly string[]): Promise<Manifest>
  /** Where this node's own fetches from the internet go: the provider's proxy when another node is the provider. */
  via (): string | undefined
  /** A plain URL's manifest signed by this node's designated provider (which cached the object), or null. */
  providerManifest (url: string): Promise<Manifest | null>
  /** The transfer of m, started (or resumed from the cache) if need be. */
  open (m: Manifest, onBehalf?: boolean, manifestUrl?: string | null): Active
  /** A piece a peer asked the provider for: wait (bounded) until this node's transfer has it. */
  onDemand (hash: string, c: string, manifestUrl: string | null): Promise<Buffer | undefined>
  /** Resolves once the whole file passed the scanner (at once without one); rejects CONTENT_VETOED. */
  scanned (a: Active): Promise<void>
  /** Piece i of a's file, verified: waits for it (fetched again if it was evicted meanwhile). */
  read (a: Active, i: number): Promise<Buffer>
  status (): Record<string, unknown>
}

// A closure rather than a class: its private names minify to one letter.
export function createContentService (agent: Agent, cacheService: FlashCacheService, scanner: Scanner | null): ContentService {
  const { hal, config, log } = agent
  const { clock } = hal
  const cfg = config.content
  const credit = createCredit(clock)
  const gate = createWanGate(clock, config.wan.rateBytesPerSecond, config.wan.offPeak)
  const timers = new TimerGroup(clock)
  const active = new Map<string, Active>()
  const known = new Map<string, Manifest>()
  const pendingBehalf = new Map<string, Promise<Active | null>>()
  const changes = listeners<ContentRef>()
  const statePath = join(hal.dataDir, 'transfers.json')
  const totals = { fromPeersBytes: 0, fromProviderBytes: 0, fromOriginBytes: 0, servedBytes: 0, servedPieces: 0, corruptPieces: 0, peersIsolated: 0, vetoed: 0 }
  let waiting = 0
  let dirty = false
  const vetoedError = (m: Manifest, a: Active): CanopyError => new CanopyError('CONTENT_VETOED', `"${m.name}" was ${a.v}`)
  const origin = (m: Manifest): PieceSource => originSource(m, cfg.originSlots, gate)

  const manifest = (id: string): Manifest | undefined => active.get(id)?.m ?? known.get(id)
  /** A small body from the internet: through the provider's proxy (collapsed and cached there), else or if that fails directly. */
  const upstream = async (url: string, max: number): Promise<Buffer> => await viaOrDirect(S.via(), (via) => fetchBody(url, max, via))
  const current = (): ProviderRef | null => S.lan?.election.current() ?? null
  /** The designated provider when it is another node. */
  const other = (): ProviderRef | undefined => {
    const p = current()
    return p !== null && !p.self ? p : undefined
  }

  const S: ContentService = {
    name: 'transfers',
    pieces: null,
    lan: null,
    byUrl: null,
    totals,
    uploads: 0,

    async start () {
      const cache = cacheService.cache
      if (cache === null) return // no flash cache: no transfers (the cache service says why)
      S.pieces = createPieces(cache)
      await restore()
      timers.setInterval(() => { void save() }, CONTENT_STATE_WRITE_MS)
    },

    async stop () {
      timers.clearAll()
      dirty = true
      await save()
      for (const a of active.values()) a.t.stop()
    },

    // ---- what this node holds (resolution asks on every NEED) -------------------------

    lookup (ref) {
      if (!isContentId(ref)) return S.byUrl?.(ref) ?? null
      const a = active.get(ref)
      const m = manifest(ref)
      const pieces = S.pieces
      if (vetoed(a) || m === undefined || pieces === null) return null
      const n = m.pieces.length
      const held = rangesWhere(n, (i) => pieces.has(m.pieces[i]!))
      if (running(a?.t)) return { state: 'downloading', pieces: held, doneBytes: a!.t.doneBytes, totalBytes: m.size }
      if (held.length === 0 && n > 0) return null
      return { state: 'have', pieces: held[0]?.[0] === 0 && held[0][1] === n ? null : held } // [0, n) is all
    },

    load: () => Math.min(1, S.uploads / cfg.uploadSlots),

    on: changes.on,
    emit: changes.emit,

    // ---- manifests ---------------------------------------------------------------------

    keep (m) {
      lruSet(known, m.id, m, KNOWN_CONTENT_COUNT_MAX)
      dirty = true
    },

    async manifestFrom (url, extra = []) {
      const m = checkTrust(parseManifest(await upstream(url, MANIFEST_BYTES_MAX)), [...config.trustedPublishers, ...extra])
      S.keep(m)
      return manifest(m.id) ?? m
    },

    via: () => other()?.baseUrl,

    async providerManifest (url) {
      const p = other()
      const key = p === undefined ? undefined : S.lan!.peers.get(p.nodeId)?.publicKey
      if (key === undefined) return null
      const b = await fetchBody(`${p!.baseUrl}/p2p/manifest?url=${encodeURIComponent(url)}`, MANIFEST_BYTES_MAX).catch(() => null)
      if (b === null) return null
      // Accepted only from our own designated provider, signed by its own key.
      const m = checkTrust(parseManifest(b), [formatPublicKey(key)])
      if (!m.urls.includes(url)) throw new CanopyError('MANIFEST_INVALID', 'the provider\'s manifest is for another URL')
      S.keep(m)
      return m
    },

    // ---- transfers ------------------------------------------------------------------------

    open (m, onBehalf = false, manifestUrl = null) {
      const old = active.get(m.id)
      if (old !== undefined) {
        if (vetoed(old)) throw vetoedError(m, old)
        if (alive(old)) {
          if (!onBehalf) old.b = false
          old.u ??= manifestUrl
          return old
        }
        active.delete(m.id) // failed or stopped: start again
      }
      const pieces = S.pieces
      if (pieces === null) throw new CanopyError('HTTP_UNAVAILABLE', 'no flash cache here')
      if (active.size >= TRANSFERS_COUNT_MAX) {
        const ended = [...active.values()].find((a) => !running(a.t))
        if (ended === undefined) throw new CanopyError('LIMIT_REACHED', `${TRANSFERS_COUNT_MAX} transfers running`)
        active.delete(ended.m.id)
      }
      S.keep(m)
      // The manifest is a piece too: peers, and this node after a restart, find it by its id.
      pieces.put(m.id, m.bytes).catch(() => {}) // too large for a cache block: kept in memory only
      const cache = pieces.cache
      // The sourcing state of this transfer (the policy in the header).
      let provider: string | null = null
      let noProviderSinceMs: number | null = null
      let lastResolveMs = -Infinity
      let resolving = false
      /** Sources not to add again before this (ms): they just failed. */
      const avoid = new Map<string, number>()
      // Its pieces stay while it runs if it fits in half the cache; a larger file streams through (an evicted piece is fetched again when read).
      let pinned = m.size <= cache.stats().bytesMax / 2
      if (pinned) for (const h of m.pieces) cache.pin(h)

      /** Sources for a running transfer, on every tick. */
      const policy = (): void => {
        const lan = S.lan
        if (!running(t) || lan === null) {
          if (lan === null && !t.uses('origin')) t.add(origin(m))
          return
        }
        const now = clock.nowMs()
        const usable = (id: string): boolean => (avoid.get(id) ?? 0) <= now && !credit.banned(id)
        const s = sourcing(current(), usable, noProviderSinceMs, now)
        const p = s.provider
        noProviderSinceMs = s.sinceMs
        if (provider !== null && provider !== p?.nodeId) t.drop(provider) // the provider changed
        if (p !== null && t.source(p.nodeId)?.kind !== 'provider') {
          t.drop(p.nodeId) // it may have been listed as a plain peer
          t.add(peerSource(p.nodeId, 'provider', p.baseUrl, m, cfg.providerSlots, null, `?c=${m.id}${a.u === null ? '' : `&m=${encodeURIComponent(a.u)}`}`))
        }
        provider = p?.nodeId ?? null
        if (s.origin !== t.uses('origin')) {
          if (s.origin) t.add(origin(m))
          else t.drop('origin')
        }
        if (!resolving && now - lastResolveMs >= TRANSFER_RESOLVE_MS) {
          resolving = true
          lastResolveMs = now
          lan.resolver.resolve(m.id, { collect: true }).then((r) => {
            if (!running(t)) return
            for (const h of [...r.holders, ...r.downloads]) {
              if (h.nodeId === provider || !usable(h.nodeId)) continue
              const cur = t.source(h.nodeId) as PeerSource | undefined
              if (cur !== undefined) cur.pieces = h.pieces
              else t.add(peerSource(h.nodeId, 'peer', h.baseUrl, m, cfg.peerSlots, h.pieces))
            }
          }, () => {}).finally(() => { resolving = false })
        }
      }

      const t = createTransfer(m, {
        store: pieces,
        clock,
        rank: (s) => credit.score(s.id),
        events: {
          tick: policy,
          received: (s, n, ms) => {
            if (s.kind !== 'origin') credit.good(s.id, n, ms)
            totals[FROM[s.kind]] += n
          },
          failed: (s) => {
            if (s.kind !== 'origin') credit.fail(s.id)
            // Dropped by the engine (failures in a row): do not add it again for a while.
            queueMicrotask(() => { if (!t.uses(s.id)) avoid.set(s.id, clock.nowMs() + 5 * SOURCE_BUSY_BACKOFF_MS) })
          },
          corrupt: (s) => {
            credit.ban(s.id)
            totals.corruptPieces++
            totals.peersIsolated++
            dirty = true
            log.warn('peer isolated: a corrupt piece', { nodeId: s.id, content: m.id })
          },
          stored: () => { S.emit(m.id) },
          ended: () => {
            queueMicrotask(() => {
              if (pinned) for (const h of m.pieces) cache.unpin(h)
              pinned = false
              dirty = true
              S.emit(m.id)
              log.info(`transfer ${t.state}`, { content: m.id, ...t.from, err: t.error })
              if (t.state === 'done') void S.scanned(a).catch(() => {})
            })
          }
        }
      })
      const a: Active = { m, t, b: onBehalf, u: manifestUrl, s: null, v: null }
      active.set(m.id, a)
      dirty = true
      log.info('transfer', { content: m.id, name: m.name, size: m.size, held: t.held, onBehalf })
      policy()
      S.emit(m.id)
      return a
    },

    async onDemand (hash, c, manifestUrl) {
      const busy = (why: string): CanopyError => new CanopyError('HTTP_UNAVAILABLE', why)
      if (waiting >= ON_DEMAND_WAITERS_COUNT_MAX) throw busy('busy')
      waiting++
      try {
        const a = await onBehalf(c, manifestUrl)
        const i = a?.m.pieces.indexOf(hash) ?? -1
        if (a === null || i < 0) return undefined
        await within(a.t.piece(i), ON_DEMAND_WAIT_MS, clock, () => busy('not here yet; ask again'))
        return await S.pieces?.get(hash)
      } catch (err) {
        throw CanopyError.is(err, 'HTTP_UNAVAILABLE') ? err : CanopyError.from(err, 'UPSTREAM_FAILED')
      } finally {
        waiting--
      }
    },
    async read ({ m, t }, i) {
      for (let tries = 0; tries < 3; tries++) {
        await t.piece(i)
        const b = await S.pieces?.get(m.pieces[i]!)
        if (b !== undefined) return b
      }
      throw new CanopyError('CACHE_NOT_FOUND', 'evicted again and again')
    },

    async scanned (a) {
      if (scanner !== null) await (a.s ??= scan(a, scanner))
    },

    // ---- status -----------------------------------------------------------------------

    status: () => ({
      ...totals,
      uploads: S.uploads,
      list: [...active.values()].map((a) => {
        const { t, m } = a
        return {
          id: m.id,
          name: m.name,
          state: vetoed(a) ? 'vetoed' : t.state,
          sizeBytes: m.size,
          doneBytes: t.doneBytes,
          ...Object.fromEntries(Object.entries(FROM).map(([k, n]) => [n, t.from[k as keyof typeof FROM]])),
          seconds: ((t.endedMs ?? clock.nowMs()) - t.startedMs) / 1000,
          onBehalf: a.b,
          note: t.error?.message ?? a.v
        }
      }),
      peers: credit.status()
    })
  }

  /** This node is the provider and a peer asked for a piece of content c: run that transfer (the manifest from the cache or from its URL). */
  async function onBehalf (c: string, manifestUrl: string | null): Promise<Active | null> {
    const a = active.get(c)
    if (alive(a)) return a
    if (current()?.self !== true) return null
    let p = pendingBehalf.get(c)
    if (p === undefined) {
      p = (async () => {
        let m = manifest(c)
        if (m === undefined) {
          const bytes = await S.pieces?.get(c) ?? (manifestUrl === null ? undefined : await upstream(manifestUrl, MANIFEST_BYTES_MAX))
          if (bytes === undefined) return null
          if (sha256(bytes) !== c) throw new CanopyError('MANIFEST_INVALID', 'not the manifest asked for')
          m = parseManifest(bytes) // its signature must hold; trust is the asker's policy
        }
        return S.open(m, true, manifestUrl)
      })().finally(() => { pendingBehalf.delete(c) })
      pendingBehalf.set(c, p)
    }
    return await p
  }

  async function scan (a: Active, scanner: Scanner): Promise<void> {
    const { m, t } = a
    const pieces = S.pieces!
    try {
      const r = await scanner.scan(m.name, (async function * () {
        for (let i = 0; i < m.pieces.length; i++) yield await S.read(a, i)
      })())
      a.v = r.clean ? 'clean' : `vetoed: ${r.detail}`
    } catch (err) {
      if (t.state === 'failed') throw err
      a.v = `vetoed: no scan (${CanopyError.from(err, 'FILE_IO').message})`
    }
    if (a.v === 'clean') return
    totals.vetoed++
    log.warn('vetoed', { content: m.id, name: m.name, verdict: a.v })
    for (const h of m.pieces) await pieces.delete(h).catch(() => {})
    S.emit(m.id)
    throw vetoedError(m, a)
  }

  // ---- saved state: running transfers (resumed at start), bans ------------------------

  async function save (): Promise<void> {
    if (!dirty) return
    dirty = false
    const state = {
      running: [...active.values()].filter((a) => running(a.t)).map((a) => [a.m.id, a.u, a.b]),
      bans: credit.saveBans()
    }
    await hal.files.writeAtomic(statePath, Buffer.from(JSON.stringify(state))).catch((err: unknown) => { log.warn('state not saved', { err }) })
  }

  async function restore (): Promise<void> {
    let state: { running?: unknown, bans?: unknown } | null
    try {
      state = JSON.parse((await hal.files.read(statePath, CONTENT_STATE_BYTES_MAX))?.toString() ?? 'null')
    } catch {
      return // unreadable: start without it
    }
    credit.loadBans(state?.bans)
    for (const r of Array.isArray(state?.running) ? state.running.slice(0, TRANSFERS_COUNT_MAX) : []) {
      // The manifest is in the cache under its content id; its pieces too, as far as they came.
      try { S.open(parseManifest((await S.pieces!.get(String(r[0])))!), r[2] === true, typeof r[1] === 'string' ? r[1] : null) } catch { /* gone */ }
    }
  }

  // ---- metrics --------------------------------------------------------------------

  const metrics = agent.metrics
  const bytes = metrics.counter('canopy_content_bytes_total', 'Verified piece bytes received, by source.', ['source'])
  const served = metrics.counter('canopy_content_served_bytes_total', 'Piece bytes served to peers.')
  const isolated = metrics.counter('canopy_content_peers_isolated_total', 'Peers isolated for a corrupt piece.')
  metrics.onCollect(() => {
    for (const [k, n] of Object.entries(FROM)) bytes.set({ source: k }, totals[n])
    served.set(totals.servedBytes)
    isolated.set(totals.peersIsolated)
  })

  return S
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

/** Through the provider's proxy `via` when there is one, directly if that fails; directly without one. */
export const viaOrDirect = async <T>(via: string | undefined, open: (proxy?: string) => Promise<T>): Promise<T> =>
  await (via === undefined ? open() : open(via).catch(async () => await open()))

/** p, or `err()` after ms on the HAL clock. */
export function within<T> (p: Promise<T>, ms: number, clock: { setTimeout (fn: () => void, ms: number): { cancel (): void } }, err: () => Error): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = clock.setTimeout(() => { reject(err()) }, ms)
    p.then((v) => { timer.cancel(); resolve(v) }, (e: unknown) => { timer.cancel(); reject(e) })
  })
}
