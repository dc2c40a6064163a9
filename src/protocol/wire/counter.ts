// The per-sender message counter, never reused across restarts or power cuts.
// Values are reserved in blocks: the end of the reservation is written to a
// small file (atomically: old or new, never torn) BEFORE any value from the
// block is used, so after any crash the next start begins above everything
// that may have been sent. One write per WIRE_COUNTER_BLOCK_COUNT messages
// keeps flash wear negligible; the next block is reserved when half of the
// current one is used, so sending never waits in practice.

import { CanopyError, assert } from '../../errors'
import type { Files } from '../../hal'
import { WIRE_COUNTER_BLOCK_COUNT, WIRE_COUNTER_FILE_BYTES_MAX, WIRE_COUNTER_MAX } from '../../limits'
import type { Logger } from '../../log'

const FORMAT = 'canopy-wire-counter'

export interface CounterOptions {
  files: Files
  path: string
  /** Used only when the file exists but cannot be read: a start above any plausible earlier value. */
  wallMs: () => number
  log?: Logger
  blockCount?: number
}

const blockOf = (o: CounterOptions): number => o.blockCount ?? WIRE_COUNTER_BLOCK_COUNT

export class SendCounter {
  /** Values up to and including `reserved` are on flash as possibly used. */
  reserved: number
  #nextValue: number
  #writing: Promise<void> | null = null
  #closed = false
  exhausted = 0

  private constructor (private readonly o: CounterOptions, start: number, reserved: number) {
    this.#nextValue = start
    this.reserved = reserved
  }

  /** Read the last reservation, reserve the first block above it, and only then return. */
  static async open (options: CounterOptions): Promise<SendCounter> {
    const block = blockOf(options)
    assert(block >= 2, 'counter block >= 2')
    const last = await readReservation(options)
    const start = last + 1
    const c = new SendCounter(options, start, last)
    await c.#persist(last + block)
    return c
  }

  /** The next unused value, or null while the next block is not yet on flash (the caller drops that send). */
  next (): number | null {
    if (this.#closed) return null
    const block = blockOf(this.o)
    if (this.reserved - this.#nextValue < block / 2 && this.#writing === null) {
      this.#writing = this.#persist(Math.min(WIRE_COUNTER_MAX, this.reserved + block))
        .catch((err: unknown) => { this.o.log?.warn('counter reservation failed', { err }) })
        .finally(() => { this.#writing = null })
    }
    if (this.#nextValue > this.reserved) {
      this.exhausted++
      return null
    }
    return this.#nextValue++
  }

  /** Values handed out so far would be above this. */
  get peek (): number { return this.#nextValue }

  async close (): Promise<void> {
    this.#closed = true
    await this.#writing
  }

  async #persist (upTo: number): Promise<void> {
    if (upTo <= this.reserved) throw new CanopyError('LIMIT_REACHED', 'send counter exhausted')
    const text = JSON.stringify({ format: FORMAT, reserved: upTo }) + '\n'
    await this.o.files.writeAtomic(this.o.path, Buffer.from(text), 0o600)
    this.reserved = Math.max(this.reserved, upTo)
  }
}

async function readReservation (o: CounterOptions): Promise<number> {
  let data: Buffer | null
  try {
    data = await o.files.read(o.path, WIRE_COUNTER_FILE_BYTES_MAX)
  } catch (err) {
    if (CanopyError.is(err, 'FILE_TOO_LARGE')) return damaged(o, 'too large')
    throw err
  }
  if (data === null) return 0
  try {
    const doc = JSON.parse(data.toString('utf8')) as { format?: unknown, reserved?: unknown }
    const r = doc.reserved
    if (doc.format === FORMAT && typeof r === 'number' && Number.isSafeInteger(r) && r >= 0 && r < WIRE_COUNTER_MAX) return r
  } catch { /* fall through */ }
  return damaged(o, 'unreadable')
}

/**
 * The file is there but useless: we cannot know what was sent. Starting at a
 * value from the wall clock (ms × 1024) is above anything an earlier run
 * could have reached unless the clock is far behind; receivers that still
 * remember higher values drop our messages until we pass them.
 */
function damaged (o: CounterOptions, why: string): number {
  const guess = Math.min(Math.floor(Math.max(0, o.wallMs()) * 1024), Math.floor(WIRE_COUNTER_MAX / 2))
  o.log?.error('counter file damaged; starting at a wall-clock guess', { path: o.path, why, start: guess })
  return guess
}
