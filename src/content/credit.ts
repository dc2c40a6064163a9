// Peer credit (the seeds' security checker): what each peer delivered to
// this node, how fast, and what failed, from this node's own verified
// receipts only, so no peer can raise another's score. A peer that sent one
// piece that failed verification is banned for BAN_MS of this node's uptime
// (a restart resumes the count: the bans are saved with their time left).

import type { Clock } from '../hal'
import { BAN_MS, CREDIT_PEERS_COUNT_MAX } from '../limits'

interface Rec { pieces: number, bytes: number, failures: number, bps: number }

export class Credit {
  readonly #peers = new Map<string, Rec>()
  readonly #bans = new Map<string, number>()

  readonly #clock: Clock
  constructor (clock: Clock) { this.#clock = clock }

  #rec (id: string): Rec {
    let r = this.#peers.get(id)
    if (r === undefined) {
      if (this.#peers.size >= CREDIT_PEERS_COUNT_MAX) this.#peers.delete(this.#peers.keys().next().value as string)
      r = { pieces: 0, bytes: 0, failures: 0, bps: 0 }
      this.#peers.set(id, r)
    }
    return r
  }

  /** A verified piece of `bytes` arrived in `ms`. */
  good (id: string, bytes: number, ms: number): void {
    const r = this.#rec(id)
    r.pieces++
    r.bytes += bytes
    const bps = bytes * 1000 / Math.max(1, ms)
    r.bps = r.bps === 0 ? bps : 0.7 * r.bps + 0.3 * bps
  }

  fail (id: string): void { this.#rec(id).failures++ }

  /** Isolate a peer: it sent bytes that do not match their hash. */
  ban (id: string, ms = BAN_MS): void {
    if (!this.#bans.has(id) && this.#bans.size >= CREDIT_PEERS_COUNT_MAX) this.#bans.delete(this.#bans.keys().next().value as string)
    this.#bans.set(id, this.#clock.nowMs() + ms)
  }

  banned (id: string): boolean {
    const until = this.#bans.get(id)
    if (until === undefined) return false
    if (until > this.#clock.nowMs()) return true
    this.#bans.delete(id)
    return false
  }

  /** Higher is better: delivery speed, divided by one plus the failures. */
  score (id: string): number {
    const r = this.#peers.get(id)
    return r === undefined ? 0 : r.bps / (1 + r.failures)
  }

  /** Bans with their time left, to save. */
  saveBans (): Array<[string, number]> {
    const now = this.#clock.nowMs()
    return [...this.#bans].filter(([id]) => this.banned(id)).map(([id, until]) => [id, Math.round(until - now)])
  }

  loadBans (list: unknown): void {
    if (!Array.isArray(list)) return
    for (const e of list.slice(0, CREDIT_PEERS_COUNT_MAX)) {
      if (Array.isArray(e) && typeof e[0] === 'string' && /^[0-9a-f]{32}$/.test(e[0]) && typeof e[1] === 'number' && e[1] > 0) this.ban(e[0], Math.min(e[1], BAN_MS))
    }
  }

  status (): Array<Record<string, unknown>> {
    return [...new Set([...this.#peers.keys(), ...this.#bans.keys()])].map((nodeId) => ({ nodeId, ...this.#peers.get(nodeId), banned: this.banned(nodeId) }))
  }
}
