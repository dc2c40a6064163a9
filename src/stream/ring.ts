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

export type ChunkRing = ReturnType<typeof createChunkRing>

/** With a pool, the ring holds one reference on every frame it keeps. */
export function createChunkRing (bytesMax: number, chunksMax: number, pool?: FramePool) {
  assert(chunksMax >= 1 && bytesMax >= 1, 'ring size')
  const frames = new Array<Buffer | undefined>(chunksMax).fill(undefined)
  const seqs = new Float64Array(chunksMax).fill(-1)
  const flagsAt = new Uint8Array(chunksMax)
  const recvMs = new Float64Array(chunksMax)
  /** Lowest seq the window still covers (chunks below were evicted or never came). */
  let base = -1
  /** Highest seq stored. */
  let top = -1
  let count = 0
  let bytes = 0
  let evicted = 0

  const has = (seq: number): boolean => seq >= 0 && seqs[seq % chunksMax] === seq

  function oldest (): number {
    for (let s = base; count > 0 && s <= top; s++) if (has(s)) return s
    return -1
  }

  function clear (): void {
    for (const f of frames) if (f !== undefined) pool?.release(f)
    frames.fill(undefined)
    seqs.fill(-1)
    count = 0
    bytes = 0
    base = -1
    top = -1
  }

  function dropBase (): void {
    const slot = base % chunksMax
    if (seqs[slot] === base) {
      bytes -= frames[slot]!.length
      pool?.release(frames[slot]!)
      frames[slot] = undefined
      seqs[slot] = -1
      count--
      evicted++
    }
    base++
  }

  return {
    bytesMax,
    get bytes (): number { return bytes },
    /** Chunks that left the window (pushed out by newer ones or by the byte bound). */
    get evicted (): number { return evicted },
    get size (): number { return count },
    /** Oldest seq held, or -1. */
    get oldest (): number { return oldest() },
    get newest (): number { return count === 0 ? -1 : top },
    /** The lowest seq the window still covers (older ones cannot be stored). */
    get floor (): number { return base },
    has,
    clear,
    get: (seq: number): Buffer | undefined => has(seq) ? frames[seq % chunksMax] : undefined,
    receivedAt: (seq: number): number => has(seq) ? recvMs[seq % chunksMax]! : 0,

    /** Store a chunk; false when it is a duplicate or older than the window. */
    put (seq: number, frame: Buffer, flags: number, nowMs: number): boolean {
      if (has(seq) || (count > 0 && seq < base) || frame.length > bytesMax) return false
      if (count === 0) base = top = seq
      if (seq > top) {
        // Advance the window first so the new slot is free.
        const newBase = seq - chunksMax + 1
        if (newBase > top) {
          evicted += count
          clear()
          base = seq
        } else {
          while (base < newBase) dropBase()
        }
        top = seq
      }
      const slot = seq % chunksMax
      assert(frames[slot] === undefined, 'ring slot free')
      frames[slot] = frame
      pool?.retain(frame)
      seqs[slot] = seq
      flagsAt[slot] = flags
      recvMs[slot] = nowMs
      count++
      bytes += frame.length
      while (bytes > bytesMax && count > 1) dropBase()
      assert(count <= chunksMax && bytes <= bytesMax, 'ring bounds')
      return true
    },

    /** The newest chunk a player or a new child can start at (FORMAT.md "Start points"). */
    startPoint (): number {
      if (count === 0) return -1
      let psi = -1
      for (let s = top; s >= base; s--) {
        if (!has(s)) continue
        const f = flagsAt[s % chunksMax]!
        if ((f & CHUNK_FLAGS.key) !== 0) return s
        if (psi === -1 && (f & CHUNK_FLAGS.psi) !== 0) psi = s
      }
      return psi !== -1 ? psi : oldest()
    }
  }
}
