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

export interface SendCounter {
  /** Values up to and including `reserved` are on flash as possibly used. */
  readonly reserved: number
  /** Values handed out so far would be above this. */
  readonly peek: number
  /** Sends refused because the next block was not yet on flash. */
  readonly exhausted: number
  /** The next unused value, or null while the next block is not yet on flash (the caller drops that send). */
  next: () => number | null
  close: () => Promise<void>
}

/** Read the last reservation, reserve the first block above it, and only then return. */
async function open (o: CounterOptions): Promise<SendCounter> {
  const block = o.blockCount ?? WIRE_COUNTER_BLOCK_COUNT
  assert(block >= 2, 'counter block >= 2')
  let reserved = await readReservation(o)
  let nextValue = reserved + 1
  let writing: Promise<void> | null = null
  let closed = false
  let exhausted = 0

  const persist = async (upTo: number): Promise<void> => {
    if (upTo <= reserved) throw new CanopyError('LIMIT_REACHED', 'send counter exhausted')
    const text = JSON.stringify({ format: FORMAT, reserved: upTo }) + '\n'
    await o.files.writeAtomic(o.path, Buffer.from(text), 0o600)
    reserved = Math.max(reserved, upTo)
  }

  await persist(reserved + block)
  return {
    get reserved () { return reserved },
    get peek () { return nextValue },
    get exhausted () { return exhausted },
    next () {
      if (closed) return null
      if (reserved - nextValue < block / 2 && !writing) {
        writing = persist(Math.min(WIRE_COUNTER_MAX, reserved + block))
          .catch((err: unknown) => { o.log?.warn('counter reservation failed', { err }) })
          .finally(() => { writing = null })
      }
      if (nextValue > reserved) {
        exhausted++
        return null
      }
      return nextValue++
    },
    async close () {
      closed = true
      await writing
    }
  }
}

/** `SendCounter.open(options)`: the counter is a closure over local variables (smaller than a class in the bundle). */
export const SendCounter = { open }

async function readReservation (o: CounterOptions): Promise<number> {
  let data: Buffer | null
  try {
    data = await o.files.read(o.path, WIRE_COUNTER_FILE_BYTES_MAX)
  } catch (err) {
    if (CanopyError.is(err, 'FILE_TOO_LARGE')) return damaged(o, 'too large')
    throw err
  }
  if (!data) return 0
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
