// Designated-provider election (the McAfee seed's selection, made quick):
//
//   * With no provider, every candidate waits a short random delay (longer
//     without WAN access), then sends a signed ELECT with its criteria to all
//     peers, unless it has meanwhile heard a better claim. A node that hears a
//     worse claim contests at once; one that hears a better one stays quiet
//     and waits for its ELECTED.
//   * A node that spoke and heard nothing better for a random settle time
//     announces ELECTED and heartbeats every ELECTION_HEARTBEAT_MS.
//   * A provider not heard for ELECTION_PROVIDER_TIMEOUT_MS, or removed from
//     the peer list (byebye), starts a new election: takeover within 5 s.
//   * Two providers (a partition healed) collapse by the stable order; a
//     sitting provider answers a newcomer's ELECT with ELECTED, and steps down
//     only for better WAN capability.

import { TimerGroup, type Hal, type Timer } from '../../hal'
import {
  ELECTION_AWAIT_MS, ELECTION_EARLY_BEATS_MS, ELECTION_ELECT_JITTER_MS, ELECTION_HEARTBEAT_MS, ELECTION_NO_WAN_DELAY_MS, ELECTION_PROVIDER_TIMEOUT_MS,
  ELECTION_REPLIES_COUNT_MAX, ELECTION_REPLY_MS_MIN, ELECTION_SETTLE_MS_MAX, ELECTION_SUSPECT_BEATS, ELECTION_SETTLE_MS_MIN, ELECTION_WATCH_MS
} from '../../limits'
import type { Logger } from '../../log'
import { lruSet } from '../lru'
import type { PeerDirectory } from '../peers'
import { baseUrlOf, type ProviderRef, type ProviderView } from '../resolve/types'
import type { Inbound, WireTransport } from '../transport/transport'
import type { Criteria } from '../wire/messages'
import { beatsCandidate, beatsProvider, displaces, measure, type Claim } from './criteria'

export interface ElectionTiming {
  heartbeatMs: number
  providerTimeoutMs: number
  watchMs: number
  electJitterMs: number
  noWanDelayMs: number
  settleMsMin: number
  settleMsMax: number
  awaitMs: number
  replyMsMin: number
}

export const DEFAULT_ELECTION_TIMING: ElectionTiming = {
  heartbeatMs: ELECTION_HEARTBEAT_MS,
  providerTimeoutMs: ELECTION_PROVIDER_TIMEOUT_MS,
  watchMs: ELECTION_WATCH_MS,
  electJitterMs: ELECTION_ELECT_JITTER_MS,
  noWanDelayMs: ELECTION_NO_WAN_DELAY_MS,
  settleMsMin: ELECTION_SETTLE_MS_MIN,
  settleMsMax: ELECTION_SETTLE_MS_MAX,
  awaitMs: ELECTION_AWAIT_MS,
  replyMsMin: ELECTION_REPLY_MS_MIN
}

export interface ElectionOptions {
  hal: Hal
  wire: WireTransport
  peers: PeerDirectory
  log: Logger
  httpPort: () => number
  /** May this node be the provider? */
  candidate: boolean
  /** WAN bandwidth to claim, Mbit/s; 0: the WAN interface's link speed. */
  wanMbps: number
  freeFlashBytes?: () => number
  timing?: Partial<ElectionTiming>
}

export type ElectionRole = 'provider' | 'follower' | 'electing'
type Step = 'speak' | 'settle' | 'await'

interface Known extends Claim {
  address: string
  udpPort: number
  heardMs: number
  term: number
}

export interface ElectionStats {
  elections: number
  changes: number
}

export class Election implements ProviderView {
  readonly name = 'provider'
  readonly stats: ElectionStats = { elections: 0, changes: 0 }
  readonly timing: ElectionTiming
  #provider: Known | null = null
  #providerSinceMs = 0
  #electing = false
  #spoke = false
  /** The best claim heard this round that beats ours. */
  #best: Claim | null = null
  #term = 0
  #startedMs = 0
  /** This round's pending steps, one timer each. */
  readonly #round = new Map<Step, Timer>()
  #heartbeat: Timer | undefined
  readonly #replies = new Map<string, number>()
  readonly #timers: TimerGroup
  readonly #unsubscribe: Array<() => void> = []
  #stopped = false

  constructor (private readonly o: ElectionOptions) {
    this.timing = { ...DEFAULT_ELECTION_TIMING, ...o.timing }
    this.#timers = new TimerGroup(o.hal.clock)
  }

  get nodeId (): string { return this.o.wire.nodeId }
  get role (): ElectionRole {
    if (this.#self(this.#provider)) return 'provider'
    return this.#provider !== null ? 'follower' : 'electing'
  }

  async start (): Promise<void> {
    this.#startedMs = this.#now()
    const { wire } = this.o
    this.#unsubscribe.push(
      wire.on('ELECT', (m) => { this.#onElect(m) }),
      wire.on('ELECTED', (m) => { this.#onProviderMessage(m) }),
      wire.on('HEARTBEAT', (m) => { this.#onProviderMessage(m) }),
      this.o.peers.on((e) => { if (e.type === 'removed' && e.peer.nodeId === this.#provider?.nodeId && this.role === 'follower') this.#lose('byebye') })
    )
    this.#timers.setInterval(() => { this.#watch() }, this.timing.watchMs)
    this.#begin('start')
  }

  async stop (): Promise<void> {
    this.#stopped = true
    for (const u of this.#unsubscribe.splice(0)) u()
    this.#timers.clearAll()
  }

  /** The designated provider as this node knows it. */
  current (): ProviderRef | null {
    const p = this.#provider
    if (p === null) return null
    return { nodeId: p.nodeId, address: p.address, httpPort: p.criteria.h, udpPort: p.udpPort, baseUrl: baseUrlOf(p.address, p.criteria.h), self: this.#self(p) }
  }

  /** This node's criteria right now. */
  criteria (): Criteria {
    const { hal } = this.o
    return measure({
      nics: hal.nics,
      wanMbps: this.o.wanMbps,
      freeFlashBytes: this.o.freeFlashBytes?.() ?? 0,
      uptimeMs: hal.clock.nowMs() - this.#startedMs,
      httpPort: this.o.httpPort()
    })
  }

  status (): Record<string, unknown> {
    const p = this.current()
    const now = this.#now()
    return {
      role: this.role,
      candidate: this.o.candidate,
      provider: p && { ...p, term: this.#provider!.term, sinceSeconds: Math.round((now - this.#providerSinceMs) / 1000) },
      criteria: this.criteria()
    }
  }

  #now (): number { return this.o.hal.clock.nowMs() }

  /** Is this claim (or provider) this node's own? */
  #self (c: Claim | null): boolean { return c?.nodeId === this.nodeId }

  // ---- rounds ------------------------------------------------------------------

  #me (): Claim { return { nodeId: this.nodeId, criteria: this.criteria() } }

  #begin (why: string): void {
    if (this.#stopped || this.#provider !== null || this.#electing) return
    this.#electing = true
    this.#spoke = false
    this.#best = null
    this.stats.elections++
    this.o.log.debug('election', { why })
    if (!this.o.candidate) return // a non-candidate only listens for the winner
    const { random } = this.o.hal
    const t = this.timing
    const delay = random.float() * t.electJitterMs + (this.criteria().w ? 0 : t.noWanDelayMs)
    this.#at('speak', delay, () => { this.#speak() })
  }

  /** Send our claim to everyone, unless a better one was heard; then settle. */
  #speak (): void {
    if (!this.#electing || !this.o.candidate) return
    const me = this.#me()
    if (this.#best !== null && beatsCandidate(this.#best, me)) return
    this.#cancel('speak')
    this.#spoke = true
    this.o.wire.broadcast('ELECT', me.criteria)
    const t = this.timing
    const settle = t.settleMsMin + this.o.hal.random.float() * (t.settleMsMax - t.settleMsMin)
    this.#at('settle', settle, () => { this.#announce() })
  }

  #announce (): void {
    if (!this.#electing) return
    const me = this.#me()
    if (this.#best !== null && beatsCandidate(this.#best, me)) return
    this.#term++
    this.#become({ ...me, address: this.#ownAddress(), udpPort: this.o.wire.port, heardMs: this.#now(), term: this.#term })
    this.o.wire.broadcast('ELECTED', { ...me.criteria, t: this.#term })
    // Two early heartbeats: a node that lost the ELECTED (loss, a busy Wi-Fi) learns within ms, not a second.
    for (const at of ELECTION_EARLY_BEATS_MS) this.#timers.setTimeout(() => { this.#beat() }, at)
    this.#heartbeat = this.#timers.setInterval(() => { this.#beat() }, this.timing.heartbeatMs)
    this.o.log.info('provider: this node', { term: this.#term })
  }

  #beat (): void {
    if (this.role !== 'provider') return
    this.o.wire.broadcast('HEARTBEAT', { ...this.criteria(), t: this.#term })
  }

  #become (p: Known): void {
    const changed = this.#provider?.nodeId !== p.nodeId
    this.#cancel('speak', 'settle', 'await')
    this.#electing = false
    this.#best = null
    if (changed) {
      this.stats.changes++
      this.#providerSinceMs = this.#now()
      if (!this.#self(p)) this.o.log.info('provider', { nodeId: p.nodeId, address: p.address })
    }
    if (!this.#self(p)) this.#heartbeat?.cancel()
    this.#provider = p
  }

  /** Our provider vanished: elect again. */
  #lose (why: string): void {
    this.o.log.info('provider lost', { nodeId: this.#provider?.nodeId, why })
    this.#provider = null
    this.#begin(why)
  }

  #stepDown (why: string): void {
    this.#heartbeat?.cancel()
    this.#provider = null
    this.o.log.info('provider: stepping down', { why })
  }

  /** Is our provider another node, not heard for more than ms? */
  #silentFor (ms: number): boolean {
    const p = this.#provider
    return p !== null && !this.#self(p) && this.#now() - p.heardMs > ms
  }

  #watch (): void {
    if (this.#silentFor(this.timing.providerTimeoutMs)) this.#lose('timeout')
    else if (this.#provider === null && !this.#electing) this.#begin('idle')
  }

  /** Run step after ms, in place of its pending timer if any. */
  #at (step: Step, ms: number, fn: () => void): void {
    this.#round.get(step)?.cancel()
    this.#round.set(step, this.#timers.setTimeout(fn, ms))
  }

  #cancel (...steps: Step[]): void {
    for (const w of steps) this.#round.get(w)?.cancel()
  }

  /** A better claim was heard: stay quiet and wait for its ELECTED, then try again. */
  #defer (to: Claim): void {
    if (this.#best === null || beatsCandidate(to, this.#best)) this.#best = to
    this.#cancel('speak', 'settle', 'await')
    this.#at('await', this.timing.awaitMs, () => {
      if (this.#provider === null) {
        this.#electing = false
        this.#begin('no ELECTED')
      }
    })
  }

  // ---- messages ----------------------------------------------------------------

  /**
   * Our provider missed heartbeats and someone else is electing or announcing:
   * it is most likely gone (they timed out first), so do not wait for our own timeout.
   */
  #dropIfSuspect (): void {
    if (this.#silentFor(this.timing.heartbeatMs * ELECTION_SUSPECT_BEATS)) this.#lose('suspect')
  }

  #onElect (m: Inbound<'ELECT'>): void {
    this.#dropIfSuspect()
    const them: Claim = { nodeId: m.sender.nodeId, criteria: m.body }
    const p = this.#provider
    if (this.#self(p)) {
      if (displaces(them, this.#me())) {
        this.#stepDown('better WAN')
        this.#electing = true
        this.#spoke = false
        this.stats.elections++
        this.#defer(them)
      } else {
        this.#replyElected(m)
      }
      return
    }
    if (p !== null) {
      if (!displaces(them, p)) return // the provider answers the newcomer itself
      this.#provider = null
    }
    if (!this.#electing) this.#begin('ELECT')
    if (!this.o.candidate || beatsCandidate(them, this.#me())) {
      this.#defer(them)
    } else if (!this.#spoke) {
      this.#speak() // contest at once
    } else if (this.#mayReply(m.sender.nodeId)) {
      this.o.wire.reply(m, 'ELECT', this.criteria()) // it may have missed ours
    }
  }

  #onProviderMessage (m: Inbound<'ELECTED' | 'HEARTBEAT'>): void {
    const them: Claim = { nodeId: m.sender.nodeId, criteria: m.body }
    this.#term = Math.max(this.#term, m.body.t)
    const known: Known = { ...them, address: m.peer?.address ?? m.from.address, udpPort: m.peer?.udpPort ?? m.from.port, heardMs: this.#now(), term: m.body.t }
    if (this.#provider?.nodeId !== them.nodeId) this.#dropIfSuspect()
    const p = this.#provider
    if (p !== null && p.nodeId === them.nodeId) {
      this.#provider = known
      return
    }
    if (this.#self(p)) {
      if (beatsProvider(them, this.#me())) {
        this.#stepDown('better provider')
        this.#become(known)
      } else {
        this.#replyElected(m)
      }
      return
    }
    if (p !== null) {
      if (beatsProvider(them, p)) this.#become(known) // two providers: the better one stays
      return
    }
    if (this.o.candidate && displaces(this.#me(), them)) {
      if (!this.#electing) this.#begin('weaker provider')
      this.#spoke = false
      this.#speak()
      return
    }
    this.#become(known)
  }

  /** At most one reply per node per replyMsMin (bounded table, least recent forgotten). */
  #mayReply (nodeId: string): boolean {
    const now = this.#now()
    if (now - (this.#replies.get(nodeId) ?? -Infinity) < this.timing.replyMsMin) return false
    lruSet(this.#replies, nodeId, now, ELECTION_REPLIES_COUNT_MAX)
    return true
  }

  #replyElected (m: Inbound): void {
    if (this.#mayReply(m.sender.nodeId)) this.o.wire.reply(m, 'ELECTED', { ...this.criteria(), t: this.#term })
  }

  /** The address peers reach this node at: our first LAN address (for status and PROVIDER answers). */
  #ownAddress (): string {
    const bound = this.o.wire.bindAddress
    if (bound !== '0.0.0.0' && bound !== '::') return bound
    for (const nic of this.o.hal.nics.list()) {
      if (nic.role !== 'lan' || !nic.up) continue
      const a = nic.addresses.find((x) => x.family === 4) ?? nic.addresses[0]
      if (a !== undefined) return a.address
    }
    return '127.0.0.1'
  }
}

