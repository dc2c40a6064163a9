// The write budget: bytes programmed over the last 24 hours, in hourly
// buckets on the monotonic clock (routers without an RTC boot in 1970, so
// wall time cannot be trusted; the window restarts with the process). Tracked
// and reported; flash wears by what is written, so this is the number a
// vendor compares with the part's endurance.

import type { Clock } from '../hal'
import { CACHE_WRITE_BUDGET_BUCKETS, CACHE_WRITE_BUDGET_WINDOW_MS } from '../limits'

const BUCKET_MS = CACHE_WRITE_BUDGET_WINDOW_MS / CACHE_WRITE_BUDGET_BUCKETS

export interface WriteBudgetStatus {
  bytesPerDay: number
  /** Bytes programmed in the last 24 h (this process). */
  last24hBytes: number
  overBudget: boolean
  /** Times the window went over budget (each crossing counts once). */
  exceeded: number
}

export class WriteBudget {
  private readonly bytes = new Float64Array(CACHE_WRITE_BUDGET_BUCKETS)
  private readonly stamp = new Float64Array(CACHE_WRITE_BUDGET_BUCKETS).fill(-1)
  private over = false
  private exceeded = 0

  constructor (private readonly clock: Clock, readonly bytesPerDay: number) {}

  add (n: number): void {
    const slot = Math.floor(this.clock.nowMs() / BUCKET_MS)
    const i = slot % CACHE_WRITE_BUDGET_BUCKETS
    if (this.stamp[i] !== slot) { this.stamp[i] = slot; this.bytes[i] = 0 }
    this.bytes[i]! += n
    const over = this.used() > this.bytesPerDay
    if (over && !this.over) this.exceeded++
    this.over = over
  }

  used (): number {
    const now = Math.floor(this.clock.nowMs() / BUCKET_MS)
    let sum = 0
    for (let i = 0; i < CACHE_WRITE_BUDGET_BUCKETS; i++) {
      const s = this.stamp[i]!
      if (s >= 0 && now - s < CACHE_WRITE_BUDGET_BUCKETS) sum += this.bytes[i]!
    }
    return sum
  }

  status (): WriteBudgetStatus {
    const used = this.used()
    return { bytesPerDay: this.bytesPerDay, last24hBytes: used, overBudget: used > this.bytesPerDay, exceeded: this.exceeded }
  }
}
