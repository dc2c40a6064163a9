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

export class FramePool {
  readonly counters: FramePoolCounters = { taken: 0, exhausted: 0, inUse: 0, slabs: 0 }
  readonly #slabs: ArrayBuffer[] = []
  readonly #free: number[] = []
  readonly #refs: Int32Array
  /** Bumped each time a slot is handed out: a view from an earlier use can never touch the new one. */
  readonly #gens: Uint32Array
  readonly #slotOf = new WeakMap<Buffer, { slot: number, gen: number }>()

  constructor (readonly slotBytes: number, readonly slotsMax: number, readonly slotsPerSlab = 64, readonly minBytes = 1024) {
    assert(slotBytes >= minBytes && slotsMax >= 1 && slotsPerSlab >= 1, 'geometry')
    this.#refs = new Int32Array(slotsMax)
    this.#gens = new Uint32Array(slotsMax)
  }

  get capacity (): number { return this.#slabs.length * this.slotsPerSlab }

  /** A frame of exactly size bytes (contents undefined), holding one reference. */
  take (size: number): Buffer {
    if (size < this.minBytes || size > this.slotBytes) return Buffer.allocUnsafe(size)
    if (this.#free.length === 0 && !this.#grow()) {
      this.counters.exhausted++
      return Buffer.allocUnsafe(size)
    }
    const slot = this.#free.pop()!
    assert(this.#refs[slot] === 0, 'free slot held')
    this.#refs[slot] = 1
    this.#gens[slot] = (this.#gens[slot]! + 1) >>> 0
    const slab = this.#slabs[Math.floor(slot / this.slotsPerSlab)]!
    const frame = Buffer.from(slab, (slot % this.slotsPerSlab) * this.slotBytes, size)
    this.#slotOf.set(frame, { slot, gen: this.#gens[slot]! })
    this.counters.taken++
    this.counters.inUse++
    return frame
  }

  /** The slot of a pooled frame still held; -1 for a plain Buffer; an assertion for a pooled frame already let go (a stale view). */
  #slot (frame: Buffer, what: string): number {
    const s = this.#held(frame)
    assert(s !== -2, `${what} after release`)
    return s
  }

  #held (frame: Buffer): number {
    const e = this.#slotOf.get(frame)
    return e === undefined ? -1 : this.#gens[e.slot] === e.gen && this.#refs[e.slot]! > 0 ? e.slot : -2
  }

  retain (frame: Buffer): void {
    const slot = this.#slot(frame, 'retain')
    if (slot >= 0) this.#refs[slot]!++
  }

  release (frame: Buffer): void {
    const slot = this.#slot(frame, 'release')
    if (slot >= 0 && --this.#refs[slot]! === 0) {
      this.#free.push(slot)
      this.counters.inUse--
    }
  }

  /** Is this a pooled frame still held by someone? */
  held (frame: Buffer): boolean { return this.#held(frame) >= 0 }

  #grow (): boolean {
    const start = this.#slabs.length * this.slotsPerSlab
    if (start + this.slotsPerSlab > this.slotsMax) return false
    this.#slabs.push(new ArrayBuffer(this.slotBytes * this.slotsPerSlab))
    this.counters.slabs++
    for (let i = this.slotsPerSlab - 1; i >= 0; i--) this.#free.push(start + i)
    return true
  }
}
