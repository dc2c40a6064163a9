// Time, behind an interface: the real clock here, a deterministic simulated
// one in clock-sim.ts. Nothing outside src/hal reads Date.now() or calls
// setTimeout directly, so every module runs on simulated time in tests.

export interface Timer {
  cancel (): void
}

export interface Clock {
  /** Monotonic milliseconds from an arbitrary origin (never jumps back). */
  nowMs (): number
  /** Wall-clock milliseconds since the epoch. Untrusted: routers without an RTC boot in 1970. */
  wallMs (): number
  /** One-shot timer. Does not keep the process alive. */
  setTimeout (fn: () => void, ms: number): Timer
  /** Repeating timer. Does not keep the process alive. */
  setInterval (fn: () => void, ms: number): Timer
  /** Resolves after ms. Keeps the process alive while awaited. */
  sleep (ms: number): Promise<void>
}

export function createRealClock (): Clock {
  return {
    nowMs: () => performance.now(),
    wallMs: () => Date.now(),
    setTimeout (fn, ms) {
      const t = setTimeout(fn, ms)
      t.unref()
      return { cancel: () => clearTimeout(t) }
    },
    setInterval (fn, ms) {
      const t = setInterval(fn, ms)
      t.unref()
      return { cancel: () => clearInterval(t) }
    },
    sleep: (ms) => new Promise((resolve) => { setTimeout(resolve, ms) })
  }
}

/**
 * Timers owned by one object, all cancelled by its close(): the habit that
 * keeps a stopped subsystem from firing later.
 */
export class TimerGroup {
  readonly #live = new Set<Timer>()
  #closed = false

  constructor (private readonly clock: Clock) {}

  setTimeout (fn: () => void, ms: number): Timer {
    if (this.#closed) return { cancel () {} }
    const timer: Timer = this.clock.setTimeout(() => {
      this.#live.delete(handle)
      fn()
    }, ms)
    const handle: Timer = { cancel: () => { this.#live.delete(handle); timer.cancel() } }
    this.#live.add(handle)
    return handle
  }

  setInterval (fn: () => void, ms: number): Timer {
    if (this.#closed) return { cancel () {} }
    const timer = this.clock.setInterval(fn, ms)
    const handle: Timer = { cancel: () => { this.#live.delete(handle); timer.cancel() } }
    this.#live.add(handle)
    return handle
  }

  get size (): number { return this.#live.size }

  clearAll (): void {
    this.#closed = true
    for (const t of [...this.#live]) t.cancel()
    this.#live.clear()
  }
}
