// A simulated clock: time moves only when a test advances it, and timers fire
// in (due time, creation order), so a simulation with a seed replays exactly.

import { CanopyError } from '../errors'
import { SIM_TIMERS_COUNT_MAX } from '../limits'
import type { Clock, Timer } from './clock'

interface Entry { due: number, seq: number, fn: () => void, period: number, cancelled: boolean, fired: boolean }

/** Let promise chains and immediates settle, as real time would between timers. */
const settle = (): Promise<void> => new Promise((resolve) => { setImmediate(resolve) })

export class SimClock implements Clock {
  #now = 0
  #seq = 0
  readonly #heap: Entry[] = []
  #live = 0

  constructor (private readonly wallOriginMs = Date.UTC(2026, 0, 1)) {}

  nowMs (): number { return this.#now }
  wallMs (): number { return this.wallOriginMs + this.#now }

  setTimeout (fn: () => void, ms: number): Timer { return this.#add(fn, ms, 0) }
  setInterval (fn: () => void, ms: number): Timer { return this.#add(fn, ms, Math.max(1, ms)) }

  sleep (ms: number): Promise<void> {
    return new Promise((resolve) => { this.#add(resolve, ms, 0) })
  }

  /** Timers not yet fired or cancelled. */
  get pending (): number { return this.#live }

  /** Move time forward by ms, firing every timer that falls due, in order. */
  async advance (ms: number): Promise<void> {
    const end = this.#now + Math.max(0, ms)
    await settle()
    for (;;) {
      const next = this.#peek()
      if (next === undefined || next.due > end) break
      this.#pop()
      this.#now = Math.max(this.#now, next.due)
      this.#fire(next)
      await settle()
    }
    this.#now = end
    await settle()
  }

  /**
   * advance() without yielding between timers: for large simulations whose
   * code is synchronous (promise callbacks run only after it returns, so
   * callers step it in small slices and await between slices).
   */
  advanceSync (ms: number): void {
    const end = this.#now + Math.max(0, ms)
    for (;;) {
      const next = this.#peek()
      if (next === undefined || next.due > end) break
      this.#pop()
      this.#now = Math.max(this.#now, next.due)
      this.#fire(next)
    }
    this.#now = end
  }

  /** Advance until no timer is left or maxMs of simulated time has passed. */
  async runUntilIdle (maxMs: number): Promise<void> {
    const end = this.#now + maxMs
    for (;;) {
      await settle()
      const next = this.#peek()
      if (next === undefined || next.due > end) break
      await this.advance(next.due - this.#now)
    }
  }

  #fire (e: Entry): void {
    if (e.period > 0) {
      e.due = this.#now + e.period
      e.seq = this.#seq++
      this.#push(e)
    } else {
      e.fired = true
      this.#live--
    }
    e.fn()
  }

  #add (fn: () => void, ms: number, period: number): Timer {
    if (this.#live >= SIM_TIMERS_COUNT_MAX) throw new CanopyError('LIMIT_REACHED', 'simulated clock: too many timers')
    const e: Entry = { due: this.#now + Math.max(0, ms), seq: this.#seq++, fn, period, cancelled: false, fired: false }
    this.#push(e)
    this.#live++
    return {
      cancel: () => {
        if (e.cancelled || e.fired) return
        e.cancelled = true
        this.#live--
      }
    }
  }

  #peek (): Entry | undefined {
    while (this.#heap.length > 0 && this.#heap[0]!.cancelled) this.#pop()
    return this.#heap[0]
  }

  // A binary min-heap on (due, seq).
  #less (a: Entry, b: Entry): boolean { return a.due < b.due || (a.due === b.due && a.seq < b.seq) }

  #push (e: Entry): void {
    const h = this.#heap
    h.push(e)
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!this.#less(h[i]!, h[p]!)) break
      ;[h[i], h[p]] = [h[p]!, h[i]!]
      i = p
    }
  }

  #pop (): Entry | undefined {
    const h = this.#heap
    const top = h[0]
    const last = h.pop()
    if (h.length > 0 && last !== undefined) {
      h[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < h.length && this.#less(h[l]!, h[m]!)) m = l
        if (r < h.length && this.#less(h[r]!, h[m]!)) m = r
        if (m === i) break
        ;[h[i], h[m]] = [h[m]!, h[i]!]
        i = m
      }
    }
    return top
  }
}
