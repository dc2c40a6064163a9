// WAN manners for origin fetches of transfers: an optional rate cap (a token
// bucket shared by every origin request of this node) and an optional daily
// off-peak window. LAN transfers never pass through here.
//
// The window is read off the wall clock in local time. A router without a
// real-time clock boots in 1970 until NTP sets it: while the wall clock reads
// a year before 2024 it is not trusted and origin fetches are allowed (a box
// that never learns the time must still update); the window applies from the
// moment the clock is set.

import type { Clock } from '../hal'
import { WAN_BURST_SECONDS } from '../limits'

const CLOCK_SET_MS = Date.UTC(2024, 0, 1)

export type WanGate = ReturnType<typeof createWanGate>

export function createWanGate (clock: Clock, rate: number, offPeak: string) {
  let tokens = rate * WAN_BURST_SECONDS
  let lastMs = clock.nowMs()
  const m = /^(\d\d):(\d\d)-(\d\d):(\d\d)$/.exec(offPeak)
  const w = m === null ? null : [Number(m[1]) * 60 + Number(m[2]), Number(m[3]) * 60 + Number(m[4])] as const
  return {
    /** May origin fetches run now? */
    open (): boolean {
      const wall = clock.wallMs()
      if (w === null || wall < CLOCK_SET_MS) return true
      const d = new Date(wall)
      const t = d.getHours() * 60 + d.getMinutes()
      return w[0] <= w[1] ? t >= w[0] && t < w[1] : t >= w[0] || t < w[1]
    },

    /** Take n bytes of budget: null to go on at once, or a promise that resolves when the bytes are paid for. */
    pace (n: number): Promise<void> | null {
      if (rate <= 0) return null
      const now = clock.nowMs()
      tokens = Math.min(rate * WAN_BURST_SECONDS, tokens + (now - lastMs) * rate / 1000) - n
      lastMs = now
      return tokens >= 0 ? null : clock.sleep(-tokens * 1000 / rate)
    },

    /** Seconds to fetch `bytes` at the cap (0 without one). */
    secondsFor: (bytes: number): number => rate > 0 ? bytes / rate : 0
  }
}
