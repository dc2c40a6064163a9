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
}

export interface RequesterStats {
  lookups: number
  outcomes: Record<Outcome, number>
  retries: number
}

interface Lookup {
  r: number
  content: ContentRef
  wanted: PieceRanges | null
  askProvider: boolean
  startMs: number
  lastNeedMs: number
  rounds: number
  /** Peers that answered: later NEEDs and the FOUND skip them. */
  answered: Set<string>
  holders: Map<string, Holder>
  downloads: Map<string, Download>
  provider: Resolution['provider']
  timers: Timer[]
  finish: (r: Resolution) => void
}

interface Follow {
  key: string
  nodeId: string
  content: ContentRef
  fallback: { address: string, port: number }
  onEvent: (e: FollowEvent) => void
  lastHeardMs: number
  timers: Timer[]
}

export interface FollowHandle { stop (): void }

const sortHolders = (wanted: PieceRanges | null) => (a: Holder, b: Holder): number =>
  Number(covers(b.pieces, wanted)) - Number(covers(a.pieces, wanted)) || a.load - b.load || a.answeredMs - b.answeredMs

const kib = (n: number): number | null => (n === 0 ? null : n * 1024)

export class Requester {
  readonly stats: RequesterStats = { lookups: 0, outcomes: { hit: 0, partial: 0, downloading: 0, miss: 0 }, retries: 0 }
  readonly #lookups = new Map<number, Lookup>()
  readonly #follows = new Map<string, Follow>()
  readonly #timers: TimerGroup
  readonly #unsubscribe: Array<() => void> = []
  #closed = false

  constructor (private readonly o: RequesterOptions) {
    this.#timers = new TimerGroup(o.clock)
  }

  start (): void {
    const { wire } = this.o
    this.#unsubscribe.push(
      wire.on('HAVE', (m) => { this.#onHave(m) }),
      wire.on('DOWNLOADING', (m) => { this.#onDownloading(m) }),
      wire.on('PROVIDER', (m) => { this.#onProvider(m) })
    )
  }

  stop (): void {
    this.#closed = true
    for (const u of this.#unsubscribe.splice(0)) u()
    for (const l of [...this.#lookups.values()]) this.#end(l, 'miss')
    for (const f of [...this.#follows.values()]) this.#unfollow(f)
    this.#timers.clearAll()
  }

  get active (): number { return this.#lookups.size }

  #now (): number { return this.o.clock.nowMs() }

  /** Throws CLOSED or LIMIT_REACHED: this side's state, not the caller's input. */
  #check (size: number, max: number): void {
    if (this.#closed) throw new CanopyError('CLOSED', 'resolver stopped')
    if (size >= max) throw new CanopyError('LIMIT_REACHED', `${max} in progress`)
  }

  /** Who on the LAN has this content (and which pieces, and where), or who is fetching it. */
  async resolve (content: ContentRef, options: ResolveOptions = {}): Promise<Resolution> {
    this.#check(this.#lookups.size, RESOLVE_LOOKUPS_COUNT_MAX)
    const pieces = options.pieces ?? null
    const wanted = pieces && normalizeRanges(pieces)
    if (parseContentRef(content) !== content) throw new CanopyError('INPUT_INVALID', 'content not in normal form (lowercase hex id or URL)')
    if (pieces !== null && wanted === null) throw new CanopyError('INPUT_INVALID', 'too many piece ranges')
    const { timing } = this.o
    return await new Promise<Resolution>((resolve) => {
      const now = this.#now()
      const known = this.o.provider.current()
      const l: Lookup = {
        r: this.#requestId(),
        content,
        wanted,
        askProvider: known === null,
        startMs: now,
        lastNeedMs: now,
        rounds: 0,
        answered: new Set(),
        holders: new Map(),
        downloads: new Map(),
        provider: known && { ...known, via: this.o.wire.nodeId },
        timers: [],
        finish: resolve
      }
      this.#lookups.set(l.r, l)
      this.stats.lookups++
      this.#sendNeed(l)
      const at = (ms: number, fn: () => void): void => { l.timers.push(this.#timers.setTimeout(fn, ms)) }
      at(timing.settleMs, () => { if (l.holders.size + l.downloads.size > 0) this.#end(l) })
      for (let i = 1; i <= timing.retries; i++) {
        at(i * timing.retryMs, () => {
          if (this.#covered(l)) return
          this.stats.retries++
          this.#sendNeed(l)
        })
      }
      at(timing.missMs, () => { this.#end(l) })
    })
  }

  /**
   * Follow a peer's download of content (from a `downloading` resolution):
   * progress events until it completes, or `lost` when the peer falls silent.
   */
  follow (download: Pick<Download, 'nodeId' | 'address'> & { udpPort?: number }, content: ContentRef, onEvent: (e: FollowEvent) => void): FollowHandle {
    const key = `${download.nodeId}|${content}`
    if (this.#follows.has(key)) throw new CanopyError('INPUT_INVALID', 'already following this download')
    this.#check(this.#follows.size, RESOLVE_FOLLOWERS_COUNT_MAX)
    const f: Follow = {
      key,
      nodeId: download.nodeId,
      content,
      fallback: { address: download.address, port: download.udpPort ?? this.o.wire.port },
      onEvent,
      lastHeardMs: this.#now(),
      timers: [
        this.#timers.setInterval(() => { this.#subscribe(f) }, RESOLVE_FOLLOW_REFRESH_MS),
        this.#timers.setInterval(() => {
          if (this.#now() - f.lastHeardMs >= RESOLVE_FOLLOW_EXPIRE_MS) this.#endFollow(f, { type: 'lost' })
        }, RESOLVE_FOLLOW_REFRESH_MS / 2)
      ]
    }
    this.#follows.set(key, f)
    this.#subscribe(f)
    return { stop: () => { this.#unfollow(f) } }
  }

  // ---- lookups -----------------------------------------------------------------

  /** A request id in [1, 2^32 - 1]: 0 marks unsolicited messages. */
  #requestId (): number {
    for (;;) {
      const r = 1 + this.o.random.int(0xffff_fffe)
      if (!this.#lookups.has(r)) return r
    }
  }

  #sendNeed (l: Lookup): void {
    l.rounds++
    l.lastNeedMs = this.#now()
    this.o.wire.broadcast('NEED', { r: l.r, c: l.content, p: l.wanted ?? undefined, q: l.askProvider }, { except: l.answered })
  }

  #covered (l: Lookup): boolean {
    return l.holders.size > 0 && covers(unionRanges([...l.holders.values()].map((h) => h.pieces)), l.wanted)
  }

  /** The lookup an answer belongs to, after noting who answered; undefined when it ended (or was never ours). */
  #lookupFor (m: Inbound<'HAVE' | 'DOWNLOADING' | 'PROVIDER'>): Lookup | undefined {
    const l = this.#lookups.get(m.body.r)
    if (l?.content !== m.body.c) return undefined
    l.answered.add(m.sender.nodeId)
    return l
  }

  #holderOf (l: Lookup, m: Inbound<'HAVE' | 'DOWNLOADING'>): Holder {
    const address = m.peer?.address ?? m.from.address
    const { h, p, l: load } = m.body
    return { nodeId: m.sender.nodeId, baseUrl: baseUrlOf(address, h), address, httpPort: h, pieces: p ?? null, load: load / 100, answeredMs: this.#now() - l.startMs }
  }

  /** From settleMs on, any answer ends the lookup. */
  #settled (l: Lookup): boolean { return this.#now() - l.startMs >= this.o.timing.settleMs }

  #onHave (m: Inbound<'HAVE'>): void {
    if (m.body.r === 0) {
      // A followed download completed.
      const f = this.#follows.get(`${m.sender.nodeId}|${m.body.c}`)
      if (f !== undefined && m.body.p === undefined) this.#endFollow(f, { type: 'complete' })
      return
    }
    const l = this.#lookupFor(m)
    if (l === undefined) return
    if (l.holders.size < RESOLVE_HOLDERS_COUNT_MAX) l.holders.set(m.sender.nodeId, this.#holderOf(l, m))
    if (this.#covered(l)) this.#end(l, 'hit')
    else if (this.#settled(l)) this.#end(l)
  }

  #onDownloading (m: Inbound<'DOWNLOADING'>): void {
    const { r, c, p, d, t } = m.body
    const progress = { pieces: p, doneBytes: d * 1024, totalBytes: kib(t) }
    if (r === 0) {
      // Progress of a followed download.
      const f = this.#follows.get(`${m.sender.nodeId}|${c}`)
      if (f === undefined) return
      f.lastHeardMs = this.#now()
      f.onEvent({ type: 'progress', ...progress })
      return
    }
    const l = this.#lookupFor(m)
    if (l === undefined) return
    if (l.downloads.size < RESOLVE_HOLDERS_COUNT_MAX) l.downloads.set(m.sender.nodeId, { ...this.#holderOf(l, m), ...progress })
    if (this.#settled(l)) this.#end(l)
  }

  #onProvider (m: Inbound<'PROVIDER'>): void {
    const l = this.#lookupFor(m)
    if (l === undefined || l.provider !== null) return
    const { n, a, h, u } = m.body
    const nodeId = n.toString('hex')
    l.provider = { nodeId, address: a, httpPort: h, udpPort: u, baseUrl: baseUrlOf(a, h), self: nodeId === this.o.wire.nodeId, via: m.sender.nodeId }
  }

  /** End a lookup: as told, or else by what was heard (partial, downloading, miss). */
  #end (l: Lookup, told?: Outcome): void {
    if (!this.#lookups.delete(l.r)) return
    for (const t of l.timers) t.cancel()
    const outcome = told ?? (l.holders.size > 0 ? 'partial' : l.downloads.size > 0 ? 'downloading' : 'miss')
    const now = this.#now()
    const { timing } = this.o
    // Answers may still be pending at the silent peers only within the answer window.
    const window = timing.answerJitterMs + timing.answerLoadMs + (l.askProvider ? timing.thirdPartyMsMax : 0)
    if ((outcome === 'hit' || outcome === 'downloading') && !this.#closed && now - l.lastNeedMs < window) {
      this.o.wire.broadcast('FOUND', { r: l.r, c: l.content, f: false }, { except: l.answered })
    }
    this.stats.outcomes[outcome]++
    l.finish({
      content: l.content,
      pieces: l.wanted,
      requestId: l.r,
      outcome,
      holders: [...l.holders.values()].sort(sortHolders(l.wanted)),
      downloads: [...l.downloads.values()].sort((a, b) => b.doneBytes - a.doneBytes || a.load - b.load),
      provider: l.provider,
      elapsedMs: now - l.startMs,
      rounds: l.rounds
    })
  }

  // ---- following downloads -----------------------------------------------------

  /** FOUND with f set, under a fresh request id: "send me your progress". */
  #subscribe (f: Follow): void {
    this.o.wire.sendToNode(f.nodeId, 'FOUND', { r: 1 + this.o.random.int(0xffff_fffe), c: f.content, f: true }, f.fallback)
  }

  #endFollow (f: Follow, e: FollowEvent): void {
    if (!this.#follows.has(f.key)) return
    this.#unfollow(f)
    f.onEvent(e)
  }

  #unfollow (f: Follow): void {
    for (const t of f.timers) t.cancel()
    this.#follows.delete(f.key)
  }
}
