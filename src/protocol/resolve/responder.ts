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
interface Follower { c: ContentRef, to: Address, until: number }

const kib = (bytes: number): number => Math.min(0xffff_ffff, Math.floor(bytes / 1024))

export interface Responder {
  readonly stats: ResponderStats
  /** Answers scheduled, not yet sent. */
  readonly pendingCount: number
  start (): void
  stop (): void
}

export function responder (o: ResponderOptions): Responder {
  const { wire, index, clock, random, timing } = o
  const stats: ResponderStats = { have: 0, downloading: 0, provider: 0, thirdParty: 0, cancelled: 0, followers: 0 }
  const pending = new Map<string, Timer>()
  /** `${nodeId}:${r}` → when we last answered it (recency order). */
  const answered = new Map<string, number>()
  /** `${content}|${nodeId}` → follower; at most RESOLVE_FOLLOWERS_COUNT_MAX, so scans are cheap. */
  const followers = new Map<string, Follower>()
  /** content → a trailing progress push already scheduled. */
  const pushes = new Map<ContentRef, Timer>()
  const lastPush = new Map<ContentRef, number>()
  const timers = new TimerGroup(clock)
  const unsubscribe: Array<() => void> = []
  const now = (): number => clock.nowMs()
  const load = (): number => Math.round(index.load() * 100)

  /** What we can say to a NEED now: our own content, the provider (to a NEED that asks for it), or nothing. */
  const offer = (m: Inbound<'NEED'>): LocalContent | ProviderRef | null => {
    const local = index.lookup(m.body.c)
    // A download's progress is worth hearing even before its first piece.
    if (local && (local.state === 'downloading' || intersects(local.pieces, m.body.p ?? null))) return local
    const p = m.body.q ? o.provider.current() : null
    return !p || p.nodeId === m.sender.nodeId ? null : p
  }

  const haveBody = (r: number, c: ContentRef, local: LocalContent & { state: 'have' }): Body<'HAVE'> =>
    ({ r, c, p: local.pieces ? trimRanges(local.pieces) : undefined, l: load(), h: o.httpPort() })

  // A download may hold more ranges than one datagram carries: then report the first ones.
  const downloadingBody = (r: number, c: ContentRef, local: LocalContent & { state: 'downloading' }): Body<'DOWNLOADING'> =>
    ({ r, c, p: trimRanges(local.pieces), d: kib(local.doneBytes), t: local.totalBytes === null ? 0 : kib(local.totalBytes), l: load(), h: o.httpPort() })

  const remember = (key: string): void => { lruSet(answered, key, now(), RESOLVE_ANSWERED_COUNT_MAX) }

  /** Decide again at send time: the content may have changed while we waited. */
  const answer = (m: Inbound<'NEED'>): void => {
    const { r, c } = m.body
    const what = offer(m)
    if (!what) return
    if (!('state' in what)) {
      if (wire.reply(m, 'PROVIDER', { r, c, n: Buffer.from(what.nodeId, 'hex'), a: what.address, h: what.httpPort, u: what.udpPort })) {
        stats[what.self ? 'provider' : 'thirdParty']++
      }
    } else if (what.state === 'have') {
      if (wire.reply(m, 'HAVE', haveBody(r, c, what))) stats.have++
    } else if (wire.reply(m, 'DOWNLOADING', downloadingBody(r, c, what))) {
      stats.downloading++
    }
  }

  const onNeed = (m: Inbound<'NEED'>): void => {
    const key = `${m.sender.nodeId}:${m.body.r}`
    // Pending, or a duplicate (not a retry) of one just answered.
    if (pending.has(key) || now() - (answered.get(key) ?? -Infinity) < RESOLVE_REANSWER_MS) return
    const what = offer(m)
    // Nothing to say, or the table is full: others will answer.
    if (!what || pending.size >= RESOLVE_PENDING_ANSWERS_COUNT_MAX) return
    const delay = 'state' in what
      ? random.float() * timing.answerJitterMs + index.load() * timing.answerLoadMs
      : what.self
        ? random.float() * timing.answerJitterMs
        : timing.thirdPartyMsMin + random.float() * (timing.thirdPartyMsMax - timing.thirdPartyMsMin)
    pending.set(key, timers.setTimeout(() => {
      pending.delete(key)
      remember(key)
      answer(m)
    }, delay))
  }

  /** The followers of content c. */
  const followersOf = (c: ContentRef): Follower[] => [...followers.values()].filter((f) => f.c === c)

  /** Forget content c's followers (all of them, or only those expired by now). */
  const dropFollowers = (c: ContentRef | null, t = Infinity): void => {
    for (const [key, f] of followers) {
      if ((c === null || f.c === c) && f.until <= t) followers.delete(key)
    }
    for (const content of c === null ? [...pushes.keys(), ...lastPush.keys()] : [c]) {
      if (followersOf(content).length > 0) continue
      lastPush.delete(content)
      pushes.get(content)?.cancel()
      pushes.delete(content)
    }
    stats.followers = followers.size
  }

  /** A peer follows our download of c: remember it (bounded) and tell it where we are now. */
  const follow = (m: Inbound<'FOUND'>): void => {
    const c = m.body.c
    const local = index.lookup(c)
    const to = m.peer ? { address: m.peer.address, port: m.peer.udpPort } : m.from
    const key = `${c}|${m.sender.nodeId}`
    if (local?.state === 'have') {
      if (!local.pieces) wire.sendTo('HAVE', haveBody(0, c, local), to)
    } else if (local && (followers.has(key) || followers.size < RESOLVE_FOLLOWERS_COUNT_MAX)) {
      followers.set(key, { c, to, until: now() + RESOLVE_FOLLOW_EXPIRE_MS })
      stats.followers = followers.size
      wire.sendTo('DOWNLOADING', downloadingBody(0, c, local), to)
    }
  }

  const onFound = (m: Inbound<'FOUND'>): void => {
    const key = `${m.sender.nodeId}:${m.body.r}`
    const t = pending.get(key)
    if (t) {
      t.cancel()
      pending.delete(key)
      remember(key)
      stats.cancelled++
    }
    if (m.body.f) follow(m)
  }

  /** Progress to followers at most every RESOLVE_PROGRESS_MS; completion at once. */
  const onChange = (c: ContentRef): void => {
    const local = index.lookup(c)
    if (followersOf(c).length === 0) return
    if (local?.state !== 'downloading') {
      // Complete: tell them. Aborted or shrunk: followers notice the silence and fall back.
      if (local?.pieces === null) for (const f of followersOf(c)) wire.sendTo('HAVE', haveBody(0, c, local), f.to)
      dropFollowers(c)
      return
    }
    if (pushes.has(c)) return
    const since = now() - (lastPush.get(c) ?? -Infinity)
    pushes.set(c, timers.setTimeout(() => {
      pushes.delete(c)
      lastPush.set(c, now())
      const current = index.lookup(c)
      if (current?.state === 'downloading') for (const f of followersOf(c)) wire.sendTo('DOWNLOADING', downloadingBody(0, c, current), f.to)
    }, Math.max(0, RESOLVE_PROGRESS_MS - since)))
  }

  return {
    stats,
    get pendingCount () { return pending.size },
    start () {
      unsubscribe.push(wire.on('NEED', onNeed), wire.on('FOUND', onFound), index.on(onChange))
      timers.setInterval(() => { dropFollowers(null, now()) }, RESOLVE_FOLLOW_REFRESH_MS)
    },
    stop () {
      for (const u of unsubscribe.splice(0)) u()
      timers.clearAll()
      pending.clear()
      pushes.clear()
      followers.clear()
      stats.followers = 0
    }
  }
}
