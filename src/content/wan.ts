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

export class WanGate {
  #tokens: number
  #lastMs: number
  readonly #window: [number, number] | null

  readonly #clock: Clock
  readonly #rate: number
  constructor (clock: Clock, rate: number, offPeak: string) {
    this.#clock = clock
    this.#rate = rate
    this.#tokens = rate * WAN_BURST_SECONDS
    this.#lastMs = clock.nowMs()
    const m = /^(\d\d):(\d\d)-(\d\d):(\d\d)$/.exec(offPeak)
    this.#window = m === null ? null : [Number(m[1]) * 60 + Number(m[2]), Number(m[3]) * 60 + Number(m[4])]
  }

  /** May origin fetches run now? */
  open (): boolean {
    const w = this.#window
    const wall = this.#clock.wallMs()
    if (w === null || wall < CLOCK_SET_MS) return true
    const d = new Date(wall)
    const t = d.getHours() * 60 + d.getMinutes()
    return w[0] <= w[1] ? t >= w[0] && t < w[1] : t >= w[0] || t < w[1]
  }

  /** Take n bytes of budget: null to go on at once, or a promise that resolves when the bytes are paid for. */
  pace (n: number): Promise<void> | null {
    if (this.#rate <= 0) return null
    const now = this.#clock.nowMs()
    this.#tokens = Math.min(this.#rate * WAN_BURST_SECONDS, this.#tokens + (now - this.#lastMs) * this.#rate / 1000)
    this.#lastMs = now
    this.#tokens -= n
    return this.#tokens >= 0 ? null : this.#clock.sleep(-this.#tokens * 1000 / this.#rate)
  }

  /** Seconds to fetch `bytes` at the cap (0 without one). */
  secondsFor (bytes: number): number { return this.#rate > 0 ? bytes / this.#rate : 0 }
}
