// Search replies are rationed: a token bucket per source address (1 per
// second, bursts of 3) and one for all sources together (20 per second), so
// a flood of searches, spoofed or not, turns into a trickle of replies. The
// table of sources is bounded; the least recently seen source is forgotten
// first (it then starts again with a full burst, which the global bucket caps).

import {
  SSDP_RATE_SOURCES_COUNT_MAX, SSDP_REPLIES_PER_SECOND_MAX, SSDP_SOURCE_REPLIES_BURST, SSDP_SOURCE_REPLIES_PER_SECOND
} from '../../limits'

export class TokenBucket {
  private tokens: number
  private at: number

  constructor (private readonly perSecond: number, private readonly burst: number, nowMs: number) {
    this.tokens = burst
    this.at = nowMs
  }

  private refill (nowMs: number): void {
    if (nowMs > this.at) this.tokens = Math.min(this.burst, this.tokens + ((nowMs - this.at) / 1000) * this.perSecond)
    this.at = Math.max(this.at, nowMs)
  }

  has (nowMs: number): boolean {
    this.refill(nowMs)
    return this.tokens >= 1
  }

  take (nowMs: number): boolean {
    if (!this.has(nowMs)) return false
    this.tokens -= 1
    return true
  }
}

export interface ReplyLimits {
  sourcePerSecond: number
  sourceBurst: number
  totalPerSecond: number
  sourcesMax: number
}

export const DEFAULT_REPLY_LIMITS: ReplyLimits = {
  sourcePerSecond: SSDP_SOURCE_REPLIES_PER_SECOND,
  sourceBurst: SSDP_SOURCE_REPLIES_BURST,
  totalPerSecond: SSDP_REPLIES_PER_SECOND_MAX,
  sourcesMax: SSDP_RATE_SOURCES_COUNT_MAX
}

export class ReplyLimiter {
  private readonly sources = new Map<string, TokenBucket>()
  private readonly total: TokenBucket
  limited = 0

  constructor (nowMs: number, private readonly limits: ReplyLimits = DEFAULT_REPLY_LIMITS) {
    this.total = new TokenBucket(limits.totalPerSecond, limits.totalPerSecond, nowMs)
  }

  /** May this source get one more reply now? Takes a token from both buckets when it may. */
  allow (source: string, nowMs: number): boolean {
    let bucket = this.sources.get(source)
    if (bucket === undefined) {
      bucket = new TokenBucket(this.limits.sourcePerSecond, this.limits.sourceBurst, nowMs)
      if (this.sources.size >= this.limits.sourcesMax) {
        const oldest = this.sources.keys().next().value
        if (oldest !== undefined) this.sources.delete(oldest)
      }
    } else {
      this.sources.delete(source) // re-inserted below: Map order is recency order
    }
    this.sources.set(source, bucket)
    if (!bucket.has(nowMs) || !this.total.has(nowMs)) {
      this.limited++
      return false
    }
    bucket.take(nowMs)
    this.total.take(nowMs)
    return true
  }

  get sourceCount (): number { return this.sources.size }
}
