// The ring buffer of one stream on one node: the most recent verified chunk
// frames by sequence number, bounded by bytes and by count. Chunks may arrive
// out of order (a gap being filled after a re-attach); a chunk older than the
// window is refused. The slot arrays are allocated once; frames are the
// received Buffers themselves (one allocation per chunk per hop, by the link
// decoder), never copied again: players write views of them and children get
// the same Buffer.

import { assert } from '../errors'
import type { FramePool } from '../protocol/link'
import { CHUNK_FLAGS } from './chunker'

export class ChunkRing {
  private readonly frames: Array<Buffer | undefined>
  private readonly seqs: Float64Array
  private readonly flags: Uint8Array
  private readonly recvMs: Float64Array
  /** Lowest seq the window still covers (chunks below were evicted or never came). */
  private base = -1
  /** Highest seq stored. */
  private top = -1
  private count = 0
  bytes = 0
  evicted = 0

  /** With a pool, the ring holds one reference on every frame it keeps. */
  constructor (readonly bytesMax: number, readonly chunksMax: number, private readonly pool?: FramePool) {
    assert(chunksMax >= 1 && bytesMax >= 1, 'a ring holds something')
    this.frames = new Array<Buffer | undefined>(chunksMax).fill(undefined)
    this.seqs = new Float64Array(chunksMax).fill(-1)
    this.flags = new Uint8Array(chunksMax)
    this.recvMs = new Float64Array(chunksMax)
  }

  get size (): number { return this.count }
  /** Oldest seq held, or -1. */
  get oldest (): number {
    if (this.count === 0) return -1
    for (let s = this.base; s <= this.top; s++) if (this.has(s)) return s
    return -1
  }

  get newest (): number { return this.count === 0 ? -1 : this.top }
  /** The lowest seq the window still covers (older ones cannot be stored). */
  get floor (): number { return this.base }

  has (seq: number): boolean {
    return seq >= 0 && this.seqs[seq % this.chunksMax] === seq
  }

  get (seq: number): Buffer | undefined { return this.has(seq) ? this.frames[seq % this.chunksMax] : undefined }
  flagsOf (seq: number): number { return this.has(seq) ? this.flags[seq % this.chunksMax]! : 0 }
  receivedAt (seq: number): number { return this.has(seq) ? this.recvMs[seq % this.chunksMax]! : 0 }

  /** Store a chunk; false when it is a duplicate or older than the window. */
  put (seq: number, frame: Buffer, flags: number, nowMs: number): boolean {
    if (this.has(seq)) return false
    if (this.count > 0 && seq < this.base) return false
    if (frame.length > this.bytesMax) return false
    if (this.count === 0) { this.base = seq; this.top = seq }
    if (seq > this.top) {
      // Advance the window first so the new slot is free.
      const newBase = seq - this.chunksMax + 1
      if (newBase > this.top) {
        this.evicted += this.count
        this.clear()
        this.base = seq
      } else {
        while (this.base < newBase) this.dropBase()
      }
      this.top = seq
    }
    const slot = seq % this.chunksMax
    assert(this.frames[slot] === undefined, 'ring slot is free before it is written')
    this.frames[slot] = frame
    this.pool?.retain(frame)
    this.seqs[slot] = seq
    this.flags[slot] = flags
    this.recvMs[slot] = nowMs
    this.count++
    this.bytes += frame.length
    while (this.bytes > this.bytesMax && this.count > 1) this.dropBase()
    assert(this.count <= this.chunksMax && this.bytes <= this.bytesMax, 'ring within its bounds')
    return true
  }

  /** The newest chunk a player or a new child can start at (FORMAT.md "Start points"). */
  startPoint (): number {
    if (this.count === 0) return -1
    let psi = -1
    for (let s = this.top; s >= this.base; s--) {
      if (!this.has(s)) continue
      const f = this.flags[s % this.chunksMax]!
      if ((f & CHUNK_FLAGS.key) !== 0) return s
      if (psi === -1 && (f & CHUNK_FLAGS.psi) !== 0) psi = s
    }
    return psi !== -1 ? psi : this.oldest
  }

  clear (): void {
    if (this.pool !== undefined) for (const f of this.frames) if (f !== undefined) this.pool.release(f)
    this.frames.fill(undefined)
    this.seqs.fill(-1)
    this.count = 0
    this.bytes = 0
    this.base = -1
    this.top = -1
  }

  private dropBase (): void {
    const slot = this.base % this.chunksMax
    if (this.seqs[slot] === this.base) {
      this.bytes -= this.frames[slot]!.length
      this.pool?.release(this.frames[slot]!)
      this.frames[slot] = undefined
      this.seqs[slot] = -1
      this.count--
      this.evicted++
    }
    this.base++
  }
}
