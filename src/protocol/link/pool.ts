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
  private readonly slabs: ArrayBuffer[] = []
  private readonly free: number[] = []
  private readonly refs: Int32Array
  /** Bumped each time a slot is handed out: a view from an earlier use can never touch the new one. */
  private readonly gens: Uint32Array
  private readonly slotOf = new WeakMap<Buffer, { slot: number, gen: number }>()

  constructor (readonly slotBytes: number, readonly slotsMax: number, readonly slotsPerSlab = 64, readonly minBytes = 1024) {
    assert(slotBytes >= minBytes && slotsMax >= 1 && slotsPerSlab >= 1, 'pool geometry')
    this.refs = new Int32Array(slotsMax)
    this.gens = new Uint32Array(slotsMax)
  }

  get capacity (): number { return this.slabs.length * this.slotsPerSlab }

  /** A frame of exactly size bytes (contents undefined), holding one reference. */
  take (size: number): Buffer {
    if (size < this.minBytes || size > this.slotBytes) return Buffer.allocUnsafe(size)
    if (this.free.length === 0 && !this.grow()) {
      this.counters.exhausted++
      return Buffer.allocUnsafe(size)
    }
    const slot = this.free.pop()!
    assert(this.refs[slot] === 0, 'a free slot has no holders')
    this.refs[slot] = 1
    this.gens[slot] = (this.gens[slot]! + 1) >>> 0
    const slab = this.slabs[Math.floor(slot / this.slotsPerSlab)]!
    const frame = Buffer.from(slab, (slot % this.slotsPerSlab) * this.slotBytes, size)
    this.slotOf.set(frame, { slot, gen: this.gens[slot]! })
    this.counters.taken++
    this.counters.inUse++
    return frame
  }

  /** The slot of a live pooled frame; undefined for plain Buffers; an assertion for a frame already let go. */
  private live (frame: Buffer, what: string): number | undefined {
    const e = this.slotOf.get(frame)
    if (e === undefined) return undefined
    assert(this.gens[e.slot] === e.gen && this.refs[e.slot]! > 0, `${what} of a pooled frame already released`)
    return e.slot
  }

  retain (frame: Buffer): void {
    const slot = this.live(frame, 'retain')
    if (slot !== undefined) this.refs[slot]!++
  }

  release (frame: Buffer): void {
    const slot = this.live(frame, 'release')
    if (slot === undefined) return
    if (--this.refs[slot]! === 0) {
      this.free.push(slot)
      this.counters.inUse--
    }
  }

  /** Is this a pooled frame still held by someone? */
  held (frame: Buffer): boolean {
    const e = this.slotOf.get(frame)
    return e !== undefined && this.gens[e.slot] === e.gen && this.refs[e.slot]! > 0
  }

  private grow (): boolean {
    const start = this.slabs.length * this.slotsPerSlab
    if (start + this.slotsPerSlab > this.slotsMax) return false
    this.slabs.push(new ArrayBuffer(this.slotBytes * this.slotsPerSlab))
    this.counters.slabs++
    for (let i = this.slotsPerSlab - 1; i >= 0; i--) this.free.push(start + i)
    return true
  }
}
