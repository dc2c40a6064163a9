// Peer credit (the seeds' security checker): what each peer delivered to
// this node, how fast, and what failed, from this node's own verified
// receipts only, so no peer can raise another's score. A peer that sent one
// piece that failed verification is banned for BAN_MS of this node's uptime
// (a restart resumes the count: the bans are saved with their time left).

import type { Clock } from '../hal'
import { BAN_MS, CREDIT_PEERS_COUNT_MAX } from '../limits'

interface Rec { pieces: number, bytes: number, failures: number, bps: number }

export type Credit = ReturnType<typeof createCredit>

export function createCredit (clock: Clock) {
  const peers = new Map<string, Rec>()
  const bans = new Map<string, number>()
  /** Drop the oldest entry of a full map before adding a new key. */
  const room = (map: Map<string, unknown>, id: string): void => {
    if (!map.has(id) && map.size >= CREDIT_PEERS_COUNT_MAX) map.delete(map.keys().next().value as string)
  }
  const rec = (id: string): Rec => {
    let r = peers.get(id)
    if (r === undefined) {
      room(peers, id)
      r = { pieces: 0, bytes: 0, failures: 0, bps: 0 }
      peers.set(id, r)
    }
    return r
  }
  const C = {
    /** A verified piece of `bytes` arrived in `ms`. */
    good (id: string, bytes: number, ms: number): void {
      const r = rec(id)
      r.pieces++
      r.bytes += bytes
      const bps = bytes * 1000 / Math.max(1, ms)
      r.bps = r.bps === 0 ? bps : 0.7 * r.bps + 0.3 * bps
    },

    fail (id: string): void { rec(id).failures++ },

    /** Isolate a peer: it sent bytes that do not match their hash. */
    ban (id: string, ms = BAN_MS): void {
      room(bans, id)
      bans.set(id, clock.nowMs() + ms)
    },

    banned (id: string): boolean {
      const until = bans.get(id)
      if (until === undefined) return false
      if (until > clock.nowMs()) return true
      bans.delete(id)
      return false
    },

    /** Higher is better: delivery speed, divided by one plus the failures. */
    score (id: string): number {
      const r = peers.get(id)
      return r === undefined ? 0 : r.bps / (1 + r.failures)
    },

    /** Bans with their time left, to save. */
    saveBans (): Array<[string, number]> {
      const now = clock.nowMs()
      return [...bans].filter(([id]) => C.banned(id)).map(([id, until]) => [id, Math.round(until - now)])
    },

    loadBans (list: unknown): void {
      if (!Array.isArray(list)) return
      for (const e of list.slice(0, CREDIT_PEERS_COUNT_MAX)) {
        if (typeof e?.[0] === 'string' && /^[0-9a-f]{32}$/.test(e[0]) && typeof e[1] === 'number' && e[1] > 0) C.ban(e[0], Math.min(e[1], BAN_MS))
      }
    },

    status (): Array<Record<string, unknown>> {
      return [...new Set([...peers.keys(), ...bans.keys()])].map((nodeId) => ({ nodeId, ...peers.get(nodeId), banned: C.banned(nodeId) }))
    }
  }
  return C
}
