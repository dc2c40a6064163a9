// Token buckets, and a gate of one bucket per source address (a bounded map,
// least recently seen source forgotten first; it then starts again with a
// full burst, which the total bucket caps) plus one for all sources together.
// SSDP rations search replies with it, the wire transport signature checks:
// a flood, spoofed or not, turns into a trickle, and one noisy source cannot
// use up everyone's share.

import { lruSet } from './lru'

export interface TokenBucket {
  /** Is a token there now (time going backwards adds nothing)? With take, spend it. */
  has (nowMs: number, take?: boolean): boolean
  take (nowMs: number): boolean
}

/** A bucket of `burst` tokens, refilled at perSecond; a closure (a class's `this.#x` costs bytes on every use). */
export function tokenBucket (perSecond: number, burst: number, nowMs: number): TokenBucket {
  let tokens = burst
  let at = nowMs
  const has = (now: number, take = false): boolean => {
    if (now > at) {
      tokens = Math.min(burst, tokens + ((now - at) / 1000) * perSecond)
      at = now
    }
    if (tokens < 1) return false
    if (take) tokens--
    return true
  }
  return { has, take: (now) => has(now, true) }
}

export interface RateLimits {
  sourcePerSecond: number
  sourceBurst: number
  totalPerSecond: number
  /** Default: totalPerSecond. */
  totalBurst?: number
  sourcesMax: number
}

export interface RateGate {
  /** Refusals so far. */
  readonly limited: number
  readonly sourceCount: number
  /** May this source go on now? Takes a token from both buckets when it may, from neither when it may not. */
  allow: (source: string, nowMs: number) => boolean
}

export function rateGate (nowMs: number, l: RateLimits): RateGate {
  const sources = new Map<string, TokenBucket>()
  const total = tokenBucket(l.totalPerSecond, l.totalBurst ?? l.totalPerSecond, nowMs)
  let limited = 0
  return {
    get limited () { return limited },
    get sourceCount () { return sources.size },
    allow (source, nowMs) {
      const bucket = lruSet(sources, source, sources.get(source) ?? tokenBucket(l.sourcePerSecond, l.sourceBurst, nowMs), l.sourcesMax)
      if (bucket.has(nowMs) && total.take(nowMs)) return bucket.take(nowMs)
      limited++
      return false
    }
  }
}
