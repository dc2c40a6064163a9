// The answering side of resolution. A NEED for content this node holds is
// answered HAVE, for content it is fetching DOWNLOADING, after a random delay
// that grows with its load (so the least loaded holder usually answers first
// and load spreads without a scheduler); a FOUND for the request cancels the
// answer. A NEED that asks for the designated provider is answered PROVIDER by
// the provider itself, or later by any peer that knows it (the seed's
// third-party response). Nodes that FOUND-follow a download get its progress
// pushed to them, and a HAVE when it completes.

import { TimerGroup, type Clock, type Random, type Timer } from '../../hal'
import {
  RESOLVE_ANSWERED_COUNT_MAX, RESOLVE_FOLLOW_EXPIRE_MS, RESOLVE_FOLLOW_REFRESH_MS, RESOLVE_FOLLOWERS_COUNT_MAX,
  RESOLVE_PENDING_ANSWERS_COUNT_MAX, RESOLVE_PROGRESS_MS, RESOLVE_REANSWER_MS
} from '../../limits'
import type { Logger } from '../../log'
import { lruSet } from '../lru'
import { intersects, trimRanges, type ContentRef } from '../content'
import type { Address, Inbound, WireTransport } from '../transport/transport'
import type { Body } from '../wire/messages'
import type { ContentIndex, LocalContent } from './content-index'
import type { ProviderRef, ProviderView, ResolveTiming } from './types'

export interface ResponderOptions {
  wire: WireTransport
  index: ContentIndex
  provider: ProviderView
  clock: Clock
  random: Random
  timing: ResolveTiming
  httpPort: () => number
  log: Logger
}

export interface ResponderStats {
  have: number
  downloading: number
  provider: number
  thirdParty: number
  cancelled: number
  followers: number
}

/** A peer following our download of content, and where to push to. */
interface Follower { content: ContentRef, to: Address, expiresMs: number }

const kib = (bytes: number): number => Math.min(0xffff_ffff, Math.floor(bytes / 1024))

export class Responder {
  readonly stats: ResponderStats = { have: 0, downloading: 0, provider: 0, thirdParty: 0, cancelled: 0, followers: 0 }
  readonly #pending = new Map<string, Timer>()
  /** `${nodeId}:${r}` → when we last answered it (recency order). */
  readonly #answered = new Map<string, number>()
  /** `${content}|${nodeId}` → follower; at most RESOLVE_FOLLOWERS_COUNT_MAX, so scans are cheap. */
  readonly #followers = new Map<string, Follower>()
  /** content → a trailing progress push already scheduled. */
  readonly #pushes = new Map<ContentRef, Timer>()
  readonly #lastPush = new Map<ContentRef, number>()
  readonly #timers: TimerGroup
  readonly #unsubscribe: Array<() => void> = []

  constructor (private readonly o: ResponderOptions) {
    this.#timers = new TimerGroup(o.clock)
  }

  start (): void {
    const { wire } = this.o
    this.#unsubscribe.push(
      wire.on('NEED', (m) => { this.#onNeed(m) }),
      wire.on('FOUND', (m) => { this.#onFound(m) }),
      this.o.index.on((c) => { this.#onChange(c) })
    )
    this.#timers.setInterval(() => { this.#expireFollowers() }, RESOLVE_FOLLOW_REFRESH_MS)
  }

  stop (): void {
    for (const u of this.#unsubscribe.splice(0)) u()
    this.#timers.clearAll()
    this.#pending.clear()
    this.#pushes.clear()
    this.#followers.clear()
    this.stats.followers = 0
  }

  get pendingCount (): number { return this.#pending.size }

  #now (): number { return this.o.clock.nowMs() }

  /** What we can say to a NEED now: our own content, the provider (to a NEED that asks for it), or nothing. */
  #offer (m: Inbound<'NEED'>): LocalContent | ProviderRef | null {
    const local = this.o.index.lookup(m.body.c)
    // A download's progress is worth hearing even before its first piece.
    if (local !== null && (local.state === 'downloading' || intersects(local.pieces, m.body.p ?? null))) return local
    const p = m.body.q ? this.o.provider.current() : null
    return p === null || p.nodeId === m.sender.nodeId ? null : p
  }

  #onNeed (m: Inbound<'NEED'>): void {
    const key = `${m.sender.nodeId}:${m.body.r}`
    // Pending, or a duplicate (not a retry) of one just answered.
    if (this.#pending.has(key) || this.#now() - (this.#answered.get(key) ?? -Infinity) < RESOLVE_REANSWER_MS) return
    const { timing, random } = this.o
    const offer = this.#offer(m)
    if (offer === null) return
    if (this.#pending.size >= RESOLVE_PENDING_ANSWERS_COUNT_MAX) return // the table is full: others will answer
    const delay = 'state' in offer
      ? random.float() * timing.answerJitterMs + this.o.index.load() * timing.answerLoadMs
      : offer.self
        ? random.float() * timing.answerJitterMs
        : timing.thirdPartyMsMin + random.float() * (timing.thirdPartyMsMax - timing.thirdPartyMsMin)
    this.#pending.set(key, this.#timers.setTimeout(() => {
      this.#pending.delete(key)
      this.#remember(key)
      this.#answer(m)
    }, delay))
  }

  /** Decide again at send time: the content may have changed while we waited. */
  #answer (m: Inbound<'NEED'>): void {
    const { wire } = this.o
    const { r, c } = m.body
    const offer = this.#offer(m)
    if (offer === null) return
    if (!('state' in offer)) {
      if (wire.reply(m, 'PROVIDER', { r, c, n: Buffer.from(offer.nodeId, 'hex'), a: offer.address, h: offer.httpPort, u: offer.udpPort })) {
        this.stats[offer.self ? 'provider' : 'thirdParty']++
      }
    } else if (offer.state === 'have') {
      if (wire.reply(m, 'HAVE', this.#haveBody(r, c, offer))) this.stats.have++
    } else if (wire.reply(m, 'DOWNLOADING', this.#downloadingBody(r, c, offer))) {
      this.stats.downloading++
    }
  }

  #haveBody (r: number, c: ContentRef, local: LocalContent & { state: 'have' }): Body<'HAVE'> {
    return { r, c, p: local.pieces === null ? undefined : trimRanges(local.pieces), l: Math.round(this.o.index.load() * 100), h: this.o.httpPort() }
  }

  #downloadingBody (r: number, c: ContentRef, local: LocalContent & { state: 'downloading' }): Body<'DOWNLOADING'> {
    // A download may hold more ranges than one datagram carries: then report the first ones.
    return { r, c, p: trimRanges(local.pieces), d: kib(local.doneBytes), t: local.totalBytes === null ? 0 : kib(local.totalBytes), l: Math.round(this.o.index.load() * 100), h: this.o.httpPort() }
  }

  #remember (key: string): void {
    lruSet(this.#answered, key, this.#now(), RESOLVE_ANSWERED_COUNT_MAX)
  }

  #onFound (m: Inbound<'FOUND'>): void {
    const key = `${m.sender.nodeId}:${m.body.r}`
    const t = this.#pending.get(key)
    if (t !== undefined) {
      t.cancel()
      this.#pending.delete(key)
      this.#remember(key)
      this.stats.cancelled++
    }
    if (m.body.f) this.#follow(m)
  }

  /** A peer follows our download of c: remember it (bounded) and tell it where we are now. */
  #follow (m: Inbound<'FOUND'>): void {
    const c = m.body.c
    const local = this.o.index.lookup(c)
    const to = m.peer !== undefined ? { address: m.peer.address, port: m.peer.udpPort } : m.from
    const key = `${c}|${m.sender.nodeId}`
    if (local?.state === 'have') {
      if (local.pieces === null) this.o.wire.sendTo('HAVE', this.#haveBody(0, c, local), to)
    } else if (local !== null && (this.#followers.has(key) || this.#followers.size < RESOLVE_FOLLOWERS_COUNT_MAX)) {
      this.#followers.set(key, { content: c, to, expiresMs: this.#now() + RESOLVE_FOLLOW_EXPIRE_MS })
      this.stats.followers = this.#followers.size
      this.o.wire.sendTo('DOWNLOADING', this.#downloadingBody(0, c, local), to)
    }
  }

  /** The followers of content c. */
  #of (c: ContentRef): Follower[] { return [...this.#followers.values()].filter((f) => f.content === c) }

  /** Progress to followers at most every RESOLVE_PROGRESS_MS; completion at once. */
  #onChange (c: ContentRef): void {
    const local = this.o.index.lookup(c)
    if (this.#of(c).length === 0) return
    if (local?.state !== 'downloading') {
      // Complete: tell them. Aborted or shrunk: followers notice the silence and fall back.
      if (local?.pieces === null) for (const f of this.#of(c)) this.o.wire.sendTo('HAVE', this.#haveBody(0, c, local), f.to)
      this.#dropFollowers(c)
      return
    }
    if (this.#pushes.has(c)) return
    const since = this.#now() - (this.#lastPush.get(c) ?? -Infinity)
    this.#pushes.set(c, this.#timers.setTimeout(() => {
      this.#pushes.delete(c)
      this.#lastPush.set(c, this.#now())
      const now = this.o.index.lookup(c)
      if (now?.state === 'downloading') for (const f of this.#of(c)) this.o.wire.sendTo('DOWNLOADING', this.#downloadingBody(0, c, now), f.to)
    }, Math.max(0, RESOLVE_PROGRESS_MS - since)))
  }

  /** Forget content c's followers (all of them, or only the expired ones). */
  #dropFollowers (c: ContentRef | null, now = Infinity): void {
    for (const [key, f] of this.#followers) {
      if ((c === null || f.content === c) && f.expiresMs <= now) this.#followers.delete(key)
    }
    for (const content of c === null ? [...this.#pushes.keys(), ...this.#lastPush.keys()] : [c]) {
      if (this.#of(content).length > 0) continue
      this.#lastPush.delete(content)
      this.#pushes.get(content)?.cancel()
      this.#pushes.delete(content)
    }
    this.stats.followers = this.#followers.size
  }

  #expireFollowers (): void { this.#dropFollowers(null, this.#now()) }
}
