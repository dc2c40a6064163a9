// Preallocated frames for the hot path. A relay receives, keeps (ring
// buffer) and forwards about a megabyte a second per 8 Mbit/s stream; one
// fresh Buffer per frame is external memory V8 frees only at a full GC, so
// RSS climbs tens of megabytes between collections. Frames taken from this
// pool live in slabs allocated once and are reused as soon as the last
// holder lets go.
//
// Ownership: take() returns a frame holding one reference. Whoever keeps a
// frame beyond the call that handed it over retains it and releases it when
// done (the ring on evict, a link once the socket has written it or the
// frame expired, a player once its response wrote it). A frame whose count
// reaches zero goes back to the free list; a release below zero is an
// assertion (our bug, caught before it corrupts a reused slot). Frames the
// pool cannot hold (too big, too small to bother, pool exhausted) are plain
// Buffers: retain and release do nothing for them.

import { assert } from '../../errors'

export interface FramePoolCounters {
  /** Frames taken from slots. */
  taken: number
  /** Frames that had to be plain Buffers because every slot was in use. */
  exhausted: number
  /** Slots in use now. */
  inUse: number
  slabs: number
}

export type FramePool = ReturnType<typeof createFramePool>

export function createFramePool (slotBytes: number, slotsMax: number, slotsPerSlab = 64, minBytes = 1024) {
  assert(slotBytes >= minBytes && slotsMax >= 1 && slotsPerSlab >= 1, 'geometry')
  const counters: FramePoolCounters = { taken: 0, exhausted: 0, inUse: 0, slabs: 0 }
  const slabs: ArrayBuffer[] = []
  const free: number[] = []
  const refs = new Int32Array(slotsMax)
  /** Bumped each time a slot is handed out: a view from an earlier use can never touch the new one. */
  const gens = new Uint32Array(slotsMax)
  const slotOf = new WeakMap<Buffer, { slot: number, gen: number }>()

  /** The slot of a pooled frame still held; -1 for a plain Buffer; -2 for a pooled frame already let go (a stale view). */
  function held (frame: Buffer): number {
    const e = slotOf.get(frame)
    return e === undefined ? -1 : gens[e.slot] === e.gen && refs[e.slot]! > 0 ? e.slot : -2
  }

  /** held(), with an assertion for a stale view. */
  function slotFor (frame: Buffer, what: string): number {
    const s = held(frame)
    assert(s !== -2, `${what} after release`)
    return s
  }

  function grow (): boolean {
    const start = slabs.length * slotsPerSlab
    if (start + slotsPerSlab > slotsMax) return false
    slabs.push(new ArrayBuffer(slotBytes * slotsPerSlab))
    counters.slabs++
    for (let i = slotsPerSlab - 1; i >= 0; i--) free.push(start + i)
    return true
  }

  return {
    counters,
    get capacity (): number { return slabs.length * slotsPerSlab },

    /** A frame of exactly size bytes (contents undefined), holding one reference. */
    take (size: number): Buffer {
      if (size < minBytes || size > slotBytes) return Buffer.allocUnsafe(size)
      if (free.length === 0 && !grow()) {
        counters.exhausted++
        return Buffer.allocUnsafe(size)
      }
      const slot = free.pop()!
      assert(refs[slot] === 0, 'free slot held')
      refs[slot] = 1
      const gen = gens[slot] = (gens[slot]! + 1) >>> 0
      const frame = Buffer.from(slabs[Math.floor(slot / slotsPerSlab)]!, (slot % slotsPerSlab) * slotBytes, size)
      slotOf.set(frame, { slot, gen })
      counters.taken++
      counters.inUse++
      return frame
    },

    retain (frame: Buffer): void {
      const slot = slotFor(frame, 'retain')
      if (slot >= 0) refs[slot]!++
    },

    release (frame: Buffer): void {
      const slot = slotFor(frame, 'release')
      if (slot >= 0 && --refs[slot]! === 0) {
        free.push(slot)
        counters.inUse--
      }
    },

    /** Is this a pooled frame still held by someone? */
    held: (frame: Buffer): boolean => held(frame) >= 0
  }
}
