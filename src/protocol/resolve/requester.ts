// The asking side of resolution. A lookup sends one signed NEED to every peer
// (unicast; multicast only while the peer list is empty), collects HAVE /
// DOWNLOADING / PROVIDER answers, re-sends the NEED to the peers still silent
// after RESOLVE_RETRY_MS (loss), and ends:
//   hit          as soon as holders cover every wanted piece,
//   partial /
//   downloading  from RESOLVE_SETTLE_MS on, when someone answered,
//   miss         at RESOLVE_MISS_MS.
// While answers may still be on their way, a FOUND to the silent peers
// cancels them. Followers of a download get its progress as events.

import { CanopyError } from '../../errors'
import { TimerGroup, type Clock, type Random, type Timer } from '../../hal'
import { RESOLVE_FOLLOW_EXPIRE_MS, RESOLVE_FOLLOW_REFRESH_MS, RESOLVE_FOLLOWERS_COUNT_MAX, RESOLVE_HOLDERS_COUNT_MAX, RESOLVE_LOOKUPS_COUNT_MAX } from '../../limits'
import type { Logger } from '../../log'
import { covers, normalizeRanges, parseContentRef, unionRanges, type ContentRef, type PieceRanges } from '../content'
import type { Inbound, WireTransport } from '../transport/transport'
import { baseUrlOf, type Download, type FollowEvent, type Holder, type Outcome, type ProviderView, type Resolution, type ResolveTiming } from './types'

export interface RequesterOptions {
  wire: WireTransport
  provider: ProviderView
  clock: Clock
  random: Random
  timing: ResolveTiming
  log: Logger
}

export interface ResolveOptions {
  /** Wanted pieces; null or absent: all. */
  pieces?: PieceRanges | null
  /** Collect every answer until the settle time instead of ending at the first covering holder (a transfer wants every source). */
  collect?: boolean
}

export interface RequesterStats {
  lookups: number
  outcomes: Record<Outcome, number>
  retries: number
}

/** A lookup in progress. In-process only: short names, those of the NEED body where one exists (r, c, q). */
interface Lookup {
  r: number
  c: ContentRef
  /** Wanted pieces (null: all). */
  w: PieceRanges | null
  /** Ask for the designated provider (none known yet). */
  q: boolean
  /** Collect until settled (ResolveOptions.collect). */
  all: boolean
  /** Started, and the last NEED sent (clock ms). */
  t0: number
  sent: number
  /** NEEDs sent. */
  n: number
  /** Peers that answered: later NEEDs and the FOUND skip them. */
  a: Set<string>
  /** Holders and downloads heard, by node id. */
  hs: Map<string, Holder>
  ds: Map<string, Download>
  pv: Resolution['provider']
  ts: Timer[]
  done: (r: Resolution) => void
}

/** A followed download (in-process only): key `${id}|${c}`, the peer's address as fallback, last progress heard. */
interface Follow {
  k: string
  id: string
  c: ContentRef
  to: { address: string, port: number }
  ev: (e: FollowEvent) => void
  heard: number
  ts: Timer[]
}

export interface FollowHandle { stop (): void }

const sortHolders = (wanted: PieceRanges | null) => (a: Holder, b: Holder): number =>
  Number(covers(b.pieces, wanted)) - Number(covers(a.pieces, wanted)) || a.load - b.load || a.answeredMs - b.answeredMs

const kib = (n: number): number | null => (n === 0 ? null : n * 1024)

export interface Requester {
  readonly stats: RequesterStats
  /** Lookups in progress. */
  readonly active: number
  start (): void
  stop (): void
  /** Who on the LAN has this content (and which pieces, and where), or who is fetching it. */
  resolve (content: ContentRef, options?: ResolveOptions): Promise<Resolution>
  /**
   * Follow a peer's download of content (from a `downloading` resolution):
   * progress events until it completes, or `lost` when the peer falls silent.
   */
  follow (download: Pick<Download, 'nodeId' | 'address'> & { udpPort?: number }, content: ContentRef, onEvent: (e: FollowEvent) => void): FollowHandle
}

export function requester (o: RequesterOptions): Requester {
  const { wire, clock, random, timing } = o
  const stats: RequesterStats = { lookups: 0, outcomes: { hit: 0, partial: 0, downloading: 0, miss: 0 }, retries: 0 }
  const lookups = new Map<number, Lookup>()
  const follows = new Map<string, Follow>()
  const timers = new TimerGroup(clock)
  const unsubscribe: Array<() => void> = []
  let closed = false
  const now = (): number => clock.nowMs()

  /** Throws CLOSED or LIMIT_REACHED: this side's state, not the caller's input. */
  const check = (size: number, max: number): void => {
    if (closed) throw new CanopyError('CLOSED', 'resolver stopped')
    if (size >= max) throw new CanopyError('LIMIT_REACHED', `${max} in progress`)
  }

  /** A request id in [1, 2^32 - 1]: 0 marks unsolicited messages. */
  const requestId = (): number => 1 + random.int(0xffff_fffe)

  const sendNeed = (l: Lookup): void => {
    l.n++
    l.sent = now()
    wire.broadcast('NEED', { r: l.r, c: l.c, p: l.w ?? undefined, q: l.q }, { except: l.a })
  }

  const covered = (l: Lookup): boolean =>
    l.hs.size > 0 && covers(unionRanges([...l.hs.values()].map((h) => h.pieces)), l.w)

  /** The lookup an answer belongs to, after noting who answered; undefined when it ended (or was never ours). */
  const lookupFor = (m: Inbound<'HAVE' | 'DOWNLOADING' | 'PROVIDER'>): Lookup | undefined => {
    const l = lookups.get(m.body.r)
    if (l?.c !== m.body.c) return undefined
    l.a.add(m.sender.nodeId)
    return l
  }

  const holderOf = (l: Lookup, m: Inbound<'HAVE' | 'DOWNLOADING'>): Holder => {
    const address = m.peer?.address ?? m.from.address
    const { h, p, l: load } = m.body
    return { nodeId: m.sender.nodeId, baseUrl: baseUrlOf(address, h), address, httpPort: h, pieces: p ?? null, load: load / 100, answeredMs: now() - l.t0 }
  }

  /** From settleMs on, any answer ends the lookup. */
  const settled = (l: Lookup): boolean => now() - l.t0 >= timing.settleMs

  /** End a lookup: as told, or else by what was heard (partial, downloading, miss). */
  const end = (l: Lookup, told?: Outcome): void => {
    if (!lookups.delete(l.r)) return
    for (const t of l.ts) t.cancel()
    const outcome = told ?? (l.hs.size > 0 ? 'partial' : l.ds.size > 0 ? 'downloading' : 'miss')
    const t = now()
    // Answers may still be pending at the silent peers only within the answer window.
    const window = timing.answerJitterMs + timing.answerLoadMs + (l.q ? timing.thirdPartyMsMax : 0)
    if ((outcome === 'hit' || outcome === 'downloading') && !closed && t - l.sent < window) {
      wire.broadcast('FOUND', { r: l.r, c: l.c, f: false }, { except: l.a })
    }
    stats.outcomes[outcome]++
    l.done({
      content: l.c,
      pieces: l.w,
      requestId: l.r,
      outcome,
      holders: [...l.hs.values()].sort(sortHolders(l.w)),
      downloads: [...l.ds.values()].sort((a, b) => b.doneBytes - a.doneBytes || a.load - b.load),
      provider: l.pv,
      elapsedMs: t - l.t0,
      rounds: l.n
    })
  }

  /** FOUND with f set, under a fresh request id: "send me your progress". */
  const subscribe = (f: Follow): void => {
    wire.sendToNode(f.id, 'FOUND', { r: requestId(), c: f.c, f: true }, f.to)
  }

  const unfollow = (f: Follow): void => {
    for (const t of f.ts) t.cancel()
    follows.delete(f.k)
  }

  const endFollow = (f: Follow, e: FollowEvent): void => {
    if (!follows.has(f.k)) return
    unfollow(f)
    f.ev(e)
  }

  const onHave = (m: Inbound<'HAVE'>): void => {
    if (m.body.r === 0) {
      // A followed download completed.
      const f = follows.get(`${m.sender.nodeId}|${m.body.c}`)
      if (f && !m.body.p) endFollow(f, { type: 'complete' })
      return
    }
    const l = lookupFor(m)
    if (!l) return
    if (l.hs.size < RESOLVE_HOLDERS_COUNT_MAX) l.hs.set(m.sender.nodeId, holderOf(l, m))
    if (covered(l) && (!l.all || settled(l))) end(l, 'hit')
    else if (settled(l)) end(l)
  }

  const onDownloading = (m: Inbound<'DOWNLOADING'>): void => {
    const { r, c, p, d, t } = m.body
    const progress = { pieces: p, doneBytes: d * 1024, totalBytes: kib(t) }
    if (r === 0) {
      // Progress of a followed download.
      const f = follows.get(`${m.sender.nodeId}|${c}`)
      if (!f) return
      f.heard = now()
      f.ev({ type: 'progress', ...progress })
      return
    }
    const l = lookupFor(m)
    if (!l) return
    if (l.ds.size < RESOLVE_HOLDERS_COUNT_MAX) l.ds.set(m.sender.nodeId, { ...holderOf(l, m), ...progress })
    if (settled(l)) end(l)
  }

  const onProvider = (m: Inbound<'PROVIDER'>): void => {
    const l = lookupFor(m)
    if (!l || l.pv) return
    const { n, a, h, u } = m.body
    const nodeId = n.toString('hex')
    l.pv = { nodeId, address: a, httpPort: h, udpPort: u, baseUrl: baseUrlOf(a, h), self: nodeId === wire.nodeId, via: m.sender.nodeId }
  }

  return {
    stats,
    get active () { return lookups.size },

    start () {
      unsubscribe.push(wire.on('HAVE', onHave), wire.on('DOWNLOADING', onDownloading), wire.on('PROVIDER', onProvider))
    },

    stop () {
      closed = true
      for (const u of unsubscribe.splice(0)) u()
      for (const l of [...lookups.values()]) end(l, 'miss')
      for (const f of [...follows.values()]) unfollow(f)
      timers.clearAll()
    },

    async resolve (content, options = {}) {
      check(lookups.size, RESOLVE_LOOKUPS_COUNT_MAX)
      const pieces = options.pieces ?? null
      const wanted = pieces && normalizeRanges(pieces)
      if (parseContentRef(content) !== content) throw new CanopyError('INPUT_INVALID', 'content not in normal form (lowercase hex id or URL)')
      if (pieces && !wanted) throw new CanopyError('INPUT_INVALID', 'too many piece ranges')
      return await new Promise<Resolution>((resolve) => {
        const t = now()
        const known = o.provider.current()
        let r = requestId()
        while (lookups.has(r)) r = requestId()
        const l: Lookup = {
          r,
          c: content,
          w: wanted,
          q: !known,
          all: options.collect === true,
          t0: t,
          sent: t,
          n: 0,
          a: new Set(),
          hs: new Map(),
          ds: new Map(),
          pv: known && { ...known, via: wire.nodeId },
          ts: [],
          done: resolve
        }
        lookups.set(r, l)
        stats.lookups++
        sendNeed(l)
        const at = (ms: number, fn: () => void): void => { l.ts.push(timers.setTimeout(fn, ms)) }
        at(timing.settleMs, () => { if (l.hs.size + l.ds.size > 0) end(l, covered(l) ? 'hit' : undefined) })
        for (let i = 1; i <= timing.retries; i++) {
          at(i * timing.retryMs, () => {
            if (covered(l)) return
            stats.retries++
            sendNeed(l)
          })
        }
        at(timing.missMs, () => { end(l) })
      })
    },

    follow (download, content, onEvent) {
      const key = `${download.nodeId}|${content}`
      if (follows.has(key)) throw new CanopyError('INPUT_INVALID', 'already following this download')
      check(follows.size, RESOLVE_FOLLOWERS_COUNT_MAX)
      const f: Follow = {
        k: key,
        id: download.nodeId,
        c: content,
        to: { address: download.address, port: download.udpPort ?? wire.port },
        ev: onEvent,
        heard: now(),
        ts: [
          timers.setInterval(() => { subscribe(f) }, RESOLVE_FOLLOW_REFRESH_MS),
          timers.setInterval(() => {
            if (now() - f.heard >= RESOLVE_FOLLOW_EXPIRE_MS) endFollow(f, { type: 'lost' })
          }, RESOLVE_FOLLOW_REFRESH_MS / 2)
        ]
      }
      follows.set(key, f)
      subscribe(f)
      return { stop: () => { unfollow(f) } }
    }
  }
}
