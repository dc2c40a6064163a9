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

/** A Node timer that does not keep the process alive, as a Timer (clearTimeout clears intervals too). */
const unrefd = (t: NodeJS.Timeout): Timer => {
  t.unref()
  return { cancel: () => { clearTimeout(t) } }
}

export function createRealClock (): Clock {
  return {
    nowMs: () => performance.now(),
    wallMs: () => Date.now(),
    setTimeout: (fn, ms) => unrefd(setTimeout(fn, ms)),
    setInterval: (fn, ms) => unrefd(setInterval(fn, ms)),
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
    return this.#add((done) => this.clock.setTimeout(() => { done(); fn() }, ms))
  }

  setInterval (fn: () => void, ms: number): Timer {
    return this.#add(() => this.clock.setInterval(fn, ms))
  }

  /** Track the timer `start` makes; `done` forgets it (a timeout that fired). */
  #add (start: (done: () => void) => Timer): Timer {
    if (this.#closed) return { cancel () {} }
    const handle: Timer = { cancel: () => { this.#live.delete(handle); timer.cancel() } }
    const timer = start(() => { this.#live.delete(handle) })
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
