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

export interface WriteBudget {
  /** Count bytes programmed now. */
  add (n: number): void
  status (): WriteBudgetStatus
}

export function createWriteBudget (clock: Clock, bytesPerDay: number): WriteBudget {
  const bytes = new Float64Array(CACHE_WRITE_BUDGET_BUCKETS)
  const stamp = new Float64Array(CACHE_WRITE_BUDGET_BUCKETS).fill(-1)
  let over = false
  let exceeded = 0
  const slot = (): number => Math.floor(clock.nowMs() / BUCKET_MS)
  const used = (): number => {
    const now = slot()
    let sum = 0
    stamp.forEach((s, i) => { if (s >= 0 && now - s < CACHE_WRITE_BUDGET_BUCKETS) sum += bytes[i]! })
    return sum
  }
  return {
    add (n) {
      const s = slot()
      const i = s % CACHE_WRITE_BUDGET_BUCKETS
      if (stamp[i] !== s) { stamp[i] = s; bytes[i] = 0 }
      bytes[i] += n
      const now = used() > bytesPerDay
      if (now && !over) exceeded++
      over = now
    },
    status () {
      const last24hBytes = used()
      return { bytesPerDay, last24hBytes, overBudget: last24hBytes > bytesPerDay, exceeded }
    }
  }
}
