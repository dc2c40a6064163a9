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
  /** Answers for lookups already ended (or never ours). */
  late: number
  foundSent: number
  retries: number
}

interface Lookup {
  r: number
  content: ContentRef
  wanted: PieceRanges | null
  askProvider: boolean
  collect: boolean
  startMs: number
  lastNeedMs: number
  rounds: number
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
  refresh: Timer
  watchdog: Timer
}

export interface FollowHandle { stop (): void }

const sortHolders = (wanted: PieceRanges | null) => (a: Holder, b: Holder): number =>
  Number(covers(b.pieces, wanted)) - Number(covers(a.pieces, wanted)) || a.load - b.load || a.answeredMs - b.answeredMs

export class Requester {
  readonly stats: RequesterStats = { lookups: 0, outcomes: { hit: 0, partial: 0, downloading: 0, miss: 0 }, late: 0, foundSent: 0, retries: 0 }
  private readonly lookups = new Map<number, Lookup>()
  private readonly follows = new Map<string, Follow>()
  private readonly timers: TimerGroup
  private readonly unsubscribe: Array<() => void> = []
  private closed = false

  constructor (private readonly o: RequesterOptions) {
    this.timers = new TimerGroup(o.clock)
  }

  start (): void {
    const { wire } = this.o
    this.unsubscribe.push(
      wire.on('HAVE', (m) => { this.onHave(m) }),
      wire.on('DOWNLOADING', (m) => { this.onDownloading(m) }),
      wire.on('PROVIDER', (m) => { this.onProvider(m) })
    )
  }

  stop (): void {
    this.closed = true
    for (const u of this.unsubscribe.splice(0)) u()
    for (const l of [...this.lookups.values()]) this.end(l, 'miss')
    for (const f of [...this.follows.values()]) this.unfollow(f)
    this.timers.clearAll()
  }

  get active (): number { return this.lookups.size }

  /** Who on the LAN has this content (and which pieces, and where), or who is fetching it. */
  resolve (content: ContentRef, options: ResolveOptions = {}): Promise<Resolution> {
    if (this.closed) return Promise.reject(new CanopyError('CLOSED', 'resolver stopped'))
    if (this.lookups.size >= RESOLVE_LOOKUPS_COUNT_MAX) return Promise.reject(new CanopyError('LIMIT_REACHED', `${RESOLVE_LOOKUPS_COUNT_MAX} lookups already in progress`))
    let wanted: PieceRanges | null
    try {
      if (parseContentRef(content) !== content) throw new CanopyError('INPUT_INVALID', 'content must be in its normal form (lowercase hex id or URL)')
      wanted = options.pieces === undefined || options.pieces === null ? null : normalizeRanges(options.pieces)
      if (wanted === null && options.pieces !== undefined && options.pieces !== null) throw new CanopyError('INPUT_INVALID', 'too many piece ranges for one NEED')
    } catch (err) {
      return Promise.reject(err)
    }
    const { clock, timing } = this.o
    return new Promise<Resolution>((resolve) => {
      const now = clock.nowMs()
      const known = this.o.provider.current()
      const l: Lookup = {
        r: this.newRequestId(),
        content,
        wanted,
        askProvider: known === null,
        collect: options.collect === true,
        startMs: now,
        lastNeedMs: now,
        rounds: 0,
        answered: new Set(),
        holders: new Map(),
        downloads: new Map(),
        provider: known === null ? null : { ...known, via: this.o.wire.nodeId },
        timers: [],
        finish: resolve
      }
      this.lookups.set(l.r, l)
      this.stats.lookups++
      this.sendNeed(l)
      l.timers.push(this.timers.setTimeout(() => { this.settle(l) }, timing.settleMs))
      for (let i = 1; i <= timing.retries; i++) {
        l.timers.push(this.timers.setTimeout(() => { this.retry(l) }, i * timing.retryMs))
      }
      l.timers.push(this.timers.setTimeout(() => { this.end(l, this.fallbackOutcome(l)) }, timing.missMs))
    })
  }

  /**
   * Follow a peer's download of content (from a `downloading` resolution):
   * progress events until it completes, or `lost` when the peer falls silent.
   */
  follow (download: Pick<Download, 'nodeId' | 'address'> & { udpPort?: number }, content: ContentRef, onEvent: (e: FollowEvent) => void): FollowHandle {
    if (this.closed) throw new CanopyError('CLOSED', 'resolver stopped')
    const key = `${download.nodeId}|${content}`
    if (this.follows.has(key)) throw new CanopyError('INPUT_INVALID', 'already following this download')
    if (this.follows.size >= RESOLVE_FOLLOWERS_COUNT_MAX) throw new CanopyError('LIMIT_REACHED', 'too many downloads followed')
    const now = this.o.clock.nowMs()
    const f: Follow = {
      key,
      nodeId: download.nodeId,
      content,
      fallback: { address: download.address, port: download.udpPort ?? this.o.wire.port },
      onEvent,
      lastHeardMs: now,
      refresh: this.timers.setInterval(() => { this.subscribe(f) }, RESOLVE_FOLLOW_REFRESH_MS),
      watchdog: this.timers.setInterval(() => {
        if (this.o.clock.nowMs() - f.lastHeardMs >= RESOLVE_FOLLOW_EXPIRE_MS) this.endFollow(f, { type: 'lost' })
      }, RESOLVE_FOLLOW_REFRESH_MS / 2)
    }
    this.follows.set(key, f)
    this.subscribe(f)
    return { stop: () => { this.unfollow(f) } }
  }

  // ---- lookups -----------------------------------------------------------------

  private newRequestId (): number {
    for (;;) {
      const r = 1 + this.o.random.int(0xffff_fffe)
      if (!this.lookups.has(r)) return r
    }
  }

  private sendNeed (l: Lookup): void {
    l.rounds++
    l.lastNeedMs = this.o.clock.nowMs()
    this.o.wire.broadcast('NEED', { r: l.r, c: l.content, p: l.wanted ?? undefined, q: l.askProvider }, { except: l.answered })
  }

  private retry (l: Lookup): void {
    if (!this.lookups.has(l.r) || this.covered(l)) return
    this.stats.retries++
    this.sendNeed(l)
  }

  private settle (l: Lookup): void {
    if (!this.lookups.has(l.r)) return
    if (l.holders.size > 0 || l.downloads.size > 0) this.end(l, this.covered(l) ? 'hit' : this.fallbackOutcome(l))
  }

  private settled (l: Lookup): boolean { return this.o.clock.nowMs() - l.startMs >= this.o.timing.settleMs }

  private covered (l: Lookup): boolean {
    return l.holders.size > 0 && covers(unionRanges([...l.holders.values()].map((h) => h.pieces)), l.wanted)
  }

  private fallbackOutcome (l: Lookup): Outcome {
    return l.holders.size > 0 ? 'partial' : l.downloads.size > 0 ? 'downloading' : 'miss'
  }

  private lookupFor (m: Inbound<'HAVE' | 'DOWNLOADING' | 'PROVIDER'>): Lookup | undefined {
    const l = this.lookups.get(m.body.r)
    if (l === undefined || l.content !== m.body.c) { this.stats.late++; return undefined }
    return l
  }

  private holderOf (l: Lookup, m: Inbound<'HAVE' | 'DOWNLOADING'>): Holder {
    const address = m.peer?.address ?? m.from.address
    return {
      nodeId: m.sender.nodeId,
      baseUrl: baseUrlOf(address, m.body.h),
      address,
      httpPort: m.body.h,
      pieces: m.body.p ?? null,
      load: m.body.l / 100,
      answeredMs: this.o.clock.nowMs() - l.startMs
    }
  }

  private onHave (m: Inbound<'HAVE'>): void {
    if (m.body.r === 0) { this.onFollowHave(m); return }
    const l = this.lookupFor(m)
    if (l === undefined) return
    l.answered.add(m.sender.nodeId)
    if (l.holders.size < RESOLVE_HOLDERS_COUNT_MAX) l.holders.set(m.sender.nodeId, this.holderOf(l, m))
    if (this.covered(l) && (!l.collect || this.settled(l))) this.end(l, 'hit')
    else if (this.settled(l)) this.end(l, 'partial')
  }

  private onDownloading (m: Inbound<'DOWNLOADING'>): void {
    if (m.body.r === 0) { this.onFollowProgress(m); return }
    const l = this.lookupFor(m)
    if (l === undefined) return
    l.answered.add(m.sender.nodeId)
    if (l.downloads.size < RESOLVE_HOLDERS_COUNT_MAX) {
      const h = this.holderOf(l, m)
      l.downloads.set(m.sender.nodeId, { ...h, pieces: m.body.p, doneBytes: m.body.d * 1024, totalBytes: m.body.t === 0 ? null : m.body.t * 1024 })
    }
    if (this.settled(l)) this.end(l, this.fallbackOutcome(l))
  }

  private onProvider (m: Inbound<'PROVIDER'>): void {
    const l = this.lookupFor(m)
    if (l === undefined) return
    l.answered.add(m.sender.nodeId)
    if (l.provider !== null) return
    const nodeId = m.body.n.toString('hex')
    l.provider = { nodeId, address: m.body.a, httpPort: m.body.h, udpPort: m.body.u, baseUrl: baseUrlOf(m.body.a, m.body.h), self: nodeId === this.o.wire.nodeId, via: m.sender.nodeId }
  }

  private end (l: Lookup, outcome: Outcome): void {
    if (!this.lookups.delete(l.r)) return
    for (const t of l.timers) t.cancel()
    const now = this.o.clock.nowMs()
    const { timing } = this.o
    // Answers may still be pending at the silent peers only within the answer window.
    const window = timing.answerJitterMs + timing.answerLoadMs + (l.askProvider ? timing.thirdPartyMsMax : 0)
    if ((outcome === 'hit' || outcome === 'downloading') && !this.closed && now - l.lastNeedMs < window) {
      const { sent, multicast } = this.o.wire.broadcast('FOUND', { r: l.r, c: l.content, f: false }, { except: l.answered })
      if (sent.length > 0 || multicast) this.stats.foundSent++
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

  private subscribe (f: Follow): void {
    const r = 1 + this.o.random.int(0xffff_fffe)
    this.o.wire.sendToNode(f.nodeId, 'FOUND', { r, c: f.content, f: true }, f.fallback)
  }

  private onFollowProgress (m: Inbound<'DOWNLOADING'>): void {
    const f = this.follows.get(`${m.sender.nodeId}|${m.body.c}`)
    if (f === undefined) { this.stats.late++; return }
    f.lastHeardMs = this.o.clock.nowMs()
    f.onEvent({ type: 'progress', doneBytes: m.body.d * 1024, totalBytes: m.body.t === 0 ? null : m.body.t * 1024, pieces: m.body.p })
  }

  private onFollowHave (m: Inbound<'HAVE'>): void {
    const f = this.follows.get(`${m.sender.nodeId}|${m.body.c}`)
    if (f === undefined) { this.stats.late++; return }
    if (m.body.p === undefined) this.endFollow(f, { type: 'complete' })
  }

  private endFollow (f: Follow, e: FollowEvent): void {
    if (!this.follows.has(f.key)) return
    this.unfollow(f)
    f.onEvent(e)
  }

  private unfollow (f: Follow): void {
    f.refresh.cancel()
    f.watchdog.cancel()
    this.follows.delete(f.key)
  }
}
