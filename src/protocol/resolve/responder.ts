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
import { intersects, trimRanges, type ContentRef } from '../content'
import type { Address, Inbound, WireTransport } from '../transport/transport'
import type { Body } from '../wire/messages'
import type { ContentIndex, LocalContent } from './content-index'
import type { ProviderView, ResolveTiming } from './types'

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
  /** Answers not scheduled because the pending table was full. */
  overflow: number
  progressPushes: number
  followers: number
}

interface Follower { to: Address, expiresMs: number }

const kib = (bytes: number): number => Math.min(0xffff_ffff, Math.floor(bytes / 1024))

export class Responder {
  readonly stats: ResponderStats = { have: 0, downloading: 0, provider: 0, thirdParty: 0, cancelled: 0, overflow: 0, progressPushes: 0, followers: 0 }
  readonly #pending = new Map<string, Timer>()
  /** `${nodeId}:${r}` → when we last answered it (recency order). */
  readonly #answered = new Map<string, number>()
  /** content → follower nodeId → where to push. */
  readonly #followers = new Map<ContentRef, Map<string, Follower>>()
  #followerCount = 0
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
    this.#followerCount = 0
  }

  get pendingCount (): number { return this.#pending.size }

  #onNeed (m: Inbound<'NEED'>): void {
    const key = `${m.sender.nodeId}:${m.body.r}`
    if (this.#pending.has(key)) return
    const last = this.#answered.get(key)
    const now = this.o.clock.nowMs()
    if (last !== undefined && now - last < RESOLVE_REANSWER_MS) return // a duplicate, not a retry
    const { timing, index, random } = this.o
    const local = index.lookup(m.body.c)
    let delay: number
    if (local !== null && offers(local, m.body.p ?? null)) {
      delay = random.float() * timing.answerJitterMs + index.load() * timing.answerLoadMs
    } else if (m.body.q) {
      const p = this.o.provider.current()
      if (p === null || p.nodeId === m.sender.nodeId) return
      delay = p.self
        ? random.float() * timing.answerJitterMs
        : timing.thirdPartyMsMin + random.float() * (timing.thirdPartyMsMax - timing.thirdPartyMsMin)
    } else {
      return
    }
    if (this.#pending.size >= RESOLVE_PENDING_ANSWERS_COUNT_MAX) { this.o.log.debug('answer table full'); this.stats.overflow++; return }
    const timer = this.#timers.setTimeout(() => {
      this.#pending.delete(key)
      this.#remember(key)
      this.#answer(m)
    }, delay)
    this.#pending.set(key, timer)
  }

  /** Decide again at send time: the content may have changed while we waited. */
  #answer (m: Inbound<'NEED'>): void {
    const { wire, index } = this.o
    const { r, c } = m.body
    const local = index.lookup(c)
    if (local !== null && offers(local, m.body.p ?? null)) {
      if (local.state === 'have') {
        if (wire.reply(m, 'HAVE', this.#haveBody(r, c, local))) this.stats.have++
      } else if (wire.reply(m, 'DOWNLOADING', this.#downloadingBody(r, c, local))) {
        this.stats.downloading++
      }
      return
    }
    if (!m.body.q) return
    const p = this.o.provider.current()
    if (p === null || p.nodeId === m.sender.nodeId) return
    const sent = wire.reply(m, 'PROVIDER', { r, c, n: Buffer.from(p.nodeId, 'hex'), a: p.address, h: p.httpPort, u: p.udpPort })
    if (sent && p.self) this.stats.provider++
    else if (sent) this.stats.thirdParty++
  }

  #haveBody (r: number, c: ContentRef, local: LocalContent & { state: 'have' }): Body<'HAVE'> {
    return { r, c, p: local.pieces === null ? undefined : trimRanges(local.pieces), l: Math.round(this.o.index.load() * 100), h: this.o.httpPort() }
  }

  #downloadingBody (r: number, c: ContentRef, local: LocalContent & { state: 'downloading' }): Body<'DOWNLOADING'> {
    // A download may hold more ranges than one datagram carries: then report the first ones.
    const pieces = trimRanges(local.pieces)
    return { r, c, p: pieces, d: kib(local.doneBytes), t: local.totalBytes === null ? 0 : kib(local.totalBytes), l: Math.round(this.o.index.load() * 100), h: this.o.httpPort() }
  }

  #remember (key: string): void {
    this.#answered.delete(key)
    if (this.#answered.size >= RESOLVE_ANSWERED_COUNT_MAX) this.#answered.delete(this.#answered.keys().next().value as string)
    this.#answered.set(key, this.o.clock.nowMs())
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
    if (local === null) return
    const to = m.peer !== undefined ? { address: m.peer.address, port: m.peer.udpPort } : m.from
    if (local.state === 'have') {
      if (local.pieces === null) this.o.wire.sendTo('HAVE', this.#haveBody(0, c, local), to)
      return
    }
    let set = this.#followers.get(c)
    const known = set?.has(m.sender.nodeId) === true
    if (!known && this.#followerCount >= RESOLVE_FOLLOWERS_COUNT_MAX) return
    if (set === undefined) { set = new Map(); this.#followers.set(c, set) }
    set.set(m.sender.nodeId, { to, expiresMs: this.o.clock.nowMs() + RESOLVE_FOLLOW_EXPIRE_MS })
    if (!known) this.#followerCount++
    this.stats.followers = this.#followerCount
    if (this.o.wire.sendTo('DOWNLOADING', this.#downloadingBody(0, c, local), to)) this.stats.progressPushes++
  }

  /** Progress to followers at most every RESOLVE_PROGRESS_MS; completion at once. */
  #onChange (c: ContentRef): void {
    const set = this.#followers.get(c)
    if (set === undefined) return
    const local = this.o.index.lookup(c)
    if (local === null || (local.state === 'have' && local.pieces !== null)) {
      this.#dropFollowers(c) // aborted or shrunk: followers notice the silence and fall back
      return
    }
    if (local.state === 'have') {
      for (const f of set.values()) this.o.wire.sendTo('HAVE', this.#haveBody(0, c, local), f.to)
      this.#dropFollowers(c)
      return
    }
    if (this.#pushes.has(c)) return
    const since = this.o.clock.nowMs() - (this.#lastPush.get(c) ?? -Infinity)
    this.#pushes.set(c, this.#timers.setTimeout(() => {
      this.#pushes.delete(c)
      this.#lastPush.set(c, this.o.clock.nowMs())
      const now = this.o.index.lookup(c)
      const s = this.#followers.get(c)
      if (now?.state !== 'downloading' || s === undefined) return
      for (const f of s.values()) if (this.o.wire.sendTo('DOWNLOADING', this.#downloadingBody(0, c, now), f.to)) this.stats.progressPushes++
    }, Math.max(0, RESOLVE_PROGRESS_MS - since)))
  }

  #dropFollowers (c: ContentRef): void {
    const set = this.#followers.get(c)
    if (set === undefined) return
    this.#followerCount -= set.size
    this.#followers.delete(c)
    this.#lastPush.delete(c)
    this.#pushes.get(c)?.cancel()
    this.#pushes.delete(c)
    this.stats.followers = this.#followerCount
  }

  #expireFollowers (): void {
    const now = this.o.clock.nowMs()
    for (const [c, set] of this.#followers) {
      for (const [id, f] of set) {
        if (f.expiresMs <= now) { set.delete(id); this.#followerCount-- }
      }
      if (set.size === 0) this.#dropFollowers(c)
    }
    this.stats.followers = this.#followerCount
  }
}

/** Can this node serve any of the wanted pieces (null: all)? */
function offers (local: LocalContent, wanted: Parameters<typeof intersects>[1]): boolean {
  if (local.state === 'downloading') return true // progress is worth hearing even before the first piece
  return intersects(local.pieces, wanted)
}
