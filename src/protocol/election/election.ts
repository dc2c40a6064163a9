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
import { baseUrlOf, type ProviderView } from '../resolve/types'
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
  /** When we last heard it (clock ms). */
  heard: number
  term: number
}

export interface ElectionStats {
  elections: number
  changes: number
}

export interface Election extends ProviderView {
  readonly name: 'provider'
  readonly stats: ElectionStats
  readonly timing: ElectionTiming
  readonly nodeId: string
  readonly role: ElectionRole
  start (): Promise<void>
  stop (): Promise<void>
  /** This node's criteria right now. */
  criteria (): Criteria
  status (): Record<string, unknown>
}

export function createElection (o: ElectionOptions): Election {
  const { wire, hal, log } = o
  const stats: ElectionStats = { elections: 0, changes: 0 }
  const timing: ElectionTiming = { ...DEFAULT_ELECTION_TIMING, ...o.timing }
  const timers = new TimerGroup(hal.clock)
  const unsubscribe: Array<() => void> = []
  /** This round's pending steps, one timer each. */
  const round = new Map<Step, Timer>()
  const replies = new Map<string, number>()
  let provider: Known | null = null
  let providerSinceMs = 0
  let electing = false
  let spoke = false
  /** The best claim heard this round that beats ours. */
  let best: Claim | null = null
  let term = 0
  let startedMs = 0
  let heartbeat: Timer | undefined
  let stopped = false

  const now = (): number => hal.clock.nowMs()
  /** Is this claim (or provider) this node's own? */
  const self = (c: Claim | null): boolean => c?.nodeId === wire.nodeId
  const me = (): Claim => ({ nodeId: wire.nodeId, criteria: election.criteria() })

  /** Run step after ms, in place of its pending timer if any. */
  const at = (step: Step, ms: number, fn: () => void): void => {
    round.get(step)?.cancel()
    round.set(step, timers.setTimeout(fn, ms))
  }
  const cancelRound = (): void => { for (const t of round.values()) t.cancel() }

  const begin = (why: string): void => {
    if (stopped || provider || electing) return
    electing = true
    spoke = false
    best = null
    stats.elections++
    log.debug('election', { why })
    if (!o.candidate) return // a non-candidate only listens for the winner
    at('speak', hal.random.float() * timing.electJitterMs + (election.criteria().w ? 0 : timing.noWanDelayMs), speak)
  }

  /** Send our claim to everyone, unless a better one was heard; then settle. */
  function speak (): void {
    if (!electing || !o.candidate) return
    const claim = me()
    if (best && beatsCandidate(best, claim)) return
    round.get('speak')?.cancel()
    spoke = true
    wire.broadcast('ELECT', claim.criteria)
    at('settle', timing.settleMsMin + hal.random.float() * (timing.settleMsMax - timing.settleMsMin), announce)
  }

  const beat = (): void => {
    if (election.role === 'provider') wire.broadcast('HEARTBEAT', { ...election.criteria(), t: term })
  }

  const become = (p: Known): void => {
    const changed = provider?.nodeId !== p.nodeId
    cancelRound()
    electing = false
    best = null
    if (changed) {
      stats.changes++
      providerSinceMs = now()
      if (!self(p)) log.info('provider', { nodeId: p.nodeId, address: p.address })
    }
    if (!self(p)) heartbeat?.cancel()
    provider = p
  }

  function announce (): void {
    if (!electing) return
    const claim = me()
    if (best && beatsCandidate(best, claim)) return
    term++
    become({ ...claim, address: ownAddress(), udpPort: wire.port, heard: now(), term })
    wire.broadcast('ELECTED', { ...claim.criteria, t: term })
    // Two early heartbeats: a node that lost the ELECTED (loss, a busy Wi-Fi) learns within ms, not a second.
    for (const ms of ELECTION_EARLY_BEATS_MS) timers.setTimeout(beat, ms)
    heartbeat = timers.setInterval(beat, timing.heartbeatMs)
    log.info('provider: this node', { term })
  }

  /** Our provider vanished: elect again. */
  const lose = (why: string): void => {
    log.info('provider lost', { nodeId: provider?.nodeId, why })
    provider = null
    begin(why)
  }

  const stepDown = (why: string): void => {
    heartbeat?.cancel()
    provider = null
    log.info('provider: stepping down', { why })
  }

  /** Is our provider another node, not heard for more than ms? */
  const silentFor = (ms: number): boolean => !!provider && !self(provider) && now() - provider.heard > ms

  const watch = (): void => {
    if (silentFor(timing.providerTimeoutMs)) lose('timeout')
    else if (!provider && !electing) begin('idle')
  }

  /** A better claim was heard: stay quiet and wait for its ELECTED, then try again. */
  const defer = (to: Claim): void => {
    if (!best || beatsCandidate(to, best)) best = to
    cancelRound()
    at('await', timing.awaitMs, () => {
      if (!provider) {
        electing = false
        begin('no ELECTED')
      }
    })
  }

  /**
   * Our provider missed heartbeats and someone else is electing or announcing:
   * it is most likely gone (they timed out first), so do not wait for our own timeout.
   */
  const dropIfSuspect = (): void => {
    if (silentFor(timing.heartbeatMs * ELECTION_SUSPECT_BEATS)) lose('suspect')
  }

  /** At most one reply per node per replyMsMin (bounded table, least recent forgotten). */
  const mayReply = (nodeId: string): boolean => {
    const t = now()
    if (t - (replies.get(nodeId) ?? -Infinity) < timing.replyMsMin) return false
    lruSet(replies, nodeId, t, ELECTION_REPLIES_COUNT_MAX)
    return true
  }

  const replyElected = (m: Inbound): void => {
    if (mayReply(m.sender.nodeId)) wire.reply(m, 'ELECTED', { ...election.criteria(), t: term })
  }

  const claimOf = (m: Inbound<'ELECT' | 'ELECTED' | 'HEARTBEAT'>): Claim => ({ nodeId: m.sender.nodeId, criteria: m.body })

  const onElect = (m: Inbound<'ELECT'>): void => {
    dropIfSuspect()
    const them = claimOf(m)
    const p = provider
    if (self(p)) {
      if (displaces(them, me())) {
        stepDown('better WAN')
        electing = true
        spoke = false
        stats.elections++
        defer(them)
      } else {
        replyElected(m)
      }
      return
    }
    if (p) {
      if (!displaces(them, p)) return // the provider answers the newcomer itself
      provider = null
    }
    if (!electing) begin('ELECT')
    if (!o.candidate || beatsCandidate(them, me())) {
      defer(them)
    } else if (!spoke) {
      speak() // contest at once
    } else if (mayReply(m.sender.nodeId)) {
      wire.reply(m, 'ELECT', election.criteria()) // it may have missed ours
    }
  }

  const onProviderMessage = (m: Inbound<'ELECTED' | 'HEARTBEAT'>): void => {
    const them = claimOf(m)
    term = Math.max(term, m.body.t)
    const known: Known = { ...them, address: m.peer?.address ?? m.from.address, udpPort: m.peer?.udpPort ?? m.from.port, heard: now(), term: m.body.t }
    if (provider?.nodeId !== them.nodeId) dropIfSuspect()
    const p = provider
    if (p && p.nodeId === them.nodeId) {
      provider = known
      return
    }
    if (self(p)) {
      if (beatsProvider(them, me())) {
        stepDown('better provider')
        become(known)
      } else {
        replyElected(m)
      }
      return
    }
    if (p) {
      if (beatsProvider(them, p)) become(known) // two providers: the better one stays
      return
    }
    if (o.candidate && displaces(me(), them)) {
      if (!electing) begin('weaker provider')
      spoke = false
      speak()
      return
    }
    become(known)
  }

  /** The address peers reach this node at: our first LAN address (for status and PROVIDER answers). */
  const ownAddress = (): string => {
    const bound = wire.bindAddress
    if (bound !== '0.0.0.0' && bound !== '::') return bound
    for (const nic of hal.nics.list()) {
      if (nic.role !== 'lan' || !nic.up) continue
      const a = nic.addresses.find((x) => x.family === 4) ?? nic.addresses[0]
      if (a) return a.address
    }
    return '127.0.0.1'
  }

  const election: Election = {
    name: 'provider',
    stats,
    timing,
    get nodeId () { return wire.nodeId },
    get role () { return self(provider) ? 'provider' : provider ? 'follower' : 'electing' },

    async start () {
      startedMs = now()
      unsubscribe.push(
        wire.on('ELECT', onElect),
        wire.on('ELECTED', onProviderMessage),
        wire.on('HEARTBEAT', onProviderMessage),
        o.peers.on((e) => { if (e.type === 'removed' && e.peer.nodeId === provider?.nodeId && election.role === 'follower') lose('byebye') })
      )
      timers.setInterval(watch, timing.watchMs)
      begin('start')
    },

    async stop () {
      stopped = true
      for (const u of unsubscribe.splice(0)) u()
      timers.clearAll()
    },

    /** The designated provider as this node knows it. */
    current () {
      const p = provider
      return p && { nodeId: p.nodeId, address: p.address, httpPort: p.criteria.h, udpPort: p.udpPort, baseUrl: baseUrlOf(p.address, p.criteria.h), self: self(p) }
    },

    criteria: () => measure({
      nics: hal.nics,
      wanMbps: o.wanMbps,
      freeFlashBytes: o.freeFlashBytes?.() ?? 0,
      uptimeMs: now() - startedMs,
      httpPort: o.httpPort()
    }),

    status () {
      const p = election.current()
      return {
        role: election.role,
        candidate: o.candidate,
        provider: p && { ...p, term: provider!.term, sinceSeconds: Math.round((now() - providerSinceMs) / 1000) },
        criteria: election.criteria()
      }
    }
  }
  return election
}
