// Token buckets: a global one and one per source address (a bounded map), so
// that a flood of datagrams costs at most a fixed number of signature checks
// per second and one noisy source cannot use up everyone's share.

export class TokenBucket {
  private tokens: number
  private at: number

  constructor (private readonly perSecond: number, private readonly burst: number, nowMs: number) {
    this.tokens = burst
    this.at = nowMs
  }

  take (nowMs: number): boolean {
    const elapsed = Math.max(0, nowMs - this.at)
    this.at = nowMs
    this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.perSecond) / 1000)
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }
}

export class SourceGate {
  private readonly global: TokenBucket
  private readonly sources = new Map<string, TokenBucket>()

  constructor (private readonly o: { perSecond: number, burst: number, sourcePerSecond: number, sourceBurst: number, sourcesMax: number }, nowMs: number) {
    this.global = new TokenBucket(o.perSecond, o.burst, nowMs)
  }

  /** May a datagram from this source use a signature check now? */
  admit (source: string, nowMs: number): boolean {
    let b = this.sources.get(source)
    if (b === undefined) {
      if (this.sources.size >= this.o.sourcesMax) this.sources.delete(this.sources.keys().next().value as string)
      b = new TokenBucket(this.o.sourcePerSecond, this.o.sourceBurst, nowMs)
    } else {
      this.sources.delete(source)
    }
    this.sources.set(source, b)
    return b.take(nowMs) && this.global.take(nowMs)
  }

  get size (): number { return this.sources.size }
}
