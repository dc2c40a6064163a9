// Signature batches on the receiving side: a SIG frame is verified once
// (the source's ed25519 signature over the exact bytes received), then its
// hashes vouch for chunks by sequence number. Chunks that arrive before
// their batch wait in a bounded pending set. Verified batches are kept as
// frames (forwarded unchanged to children and replayed for gap fills).

import { createHash, type KeyObject } from 'node:crypto'
import { verifyDomain, signDomain } from '../crypto'
import { assert } from '../errors'
import { FRAME_HEADER_BYTES, type FramePool } from '../protocol/link'
import { HASH_BYTES } from './wire'

export const BATCH_DOMAIN = 'canopy stream batch v1'
export const END_DOMAIN = 'canopy stream end v1'

/** The expensive operations, injectable so a 1 000-node simulation can memoize them by frame identity. */
export interface StreamCrypto {
  /** SHA-256 of a CHUNK message (the frame without its link header). */
  hashChunk (frame: Buffer): Buffer
  /** Does the source's signature over payload[0, signedEnd) verify? (SIG and END frames.) */
  verify (key: KeyObject, domain: string, frame: Buffer, signedEnd: number): boolean
  sign (key: KeyObject, domain: string, body: Uint8Array): Buffer
}

export const realCrypto: StreamCrypto = {
  hashChunk: (frame) => createHash('sha256').update(frame.subarray(FRAME_HEADER_BYTES)).digest(),
  verify: (key, domain, frame, signedEnd) => {
    const payload = frame.subarray(FRAME_HEADER_BYTES)
    return verifyDomain(key, domain, payload.subarray(0, signedEnd), payload.subarray(signedEnd))
  },
  sign: (key, domain, body) => signDomain(key, domain, body)
}

interface Batch { firstSeq: number, count: number, frame: Buffer, hashesAt: number }

export class BatchStore {
  /** Batches in arrival order (seq order in practice), bounded. */
  private readonly batches: Batch[] = []
  private readonly bySeq = new Map<number, Batch>()

  constructor (readonly batchesMax: number) {}

  get size (): number { return this.batches.length }

  has (firstSeq: number): boolean { return this.bySeq.get(firstSeq)?.firstSeq === firstSeq }

  /** The signed hash for seq, or undefined when no stored batch covers it. */
  hashOf (seq: number): Buffer | undefined {
    const b = this.bySeq.get(seq)
    if (b === undefined) return undefined
    const at = FRAME_HEADER_BYTES + b.hashesAt + (seq - b.firstSeq) * HASH_BYTES
    return b.frame.subarray(at, at + HASH_BYTES)
  }

  /** Keep a verified batch; the oldest go when over the bound. */
  add (firstSeq: number, count: number, frame: Buffer, hashesAt: number): void {
    const b: Batch = { firstSeq, count, frame, hashesAt }
    this.batches.push(b)
    for (let s = firstSeq; s < firstSeq + count; s++) if (!this.bySeq.has(s)) this.bySeq.set(s, b)
    while (this.batches.length > this.batchesMax) {
      const old = this.batches.shift()!
      for (let s = old.firstSeq; s < old.firstSeq + old.count; s++) if (this.bySeq.get(s) === old) this.bySeq.delete(s)
    }
    assert(this.batches.length <= this.batchesMax, 'batch store within its bound')
  }

  /** Frames of the stored batches that cover any seq in [from, to], in order. */
  covering (from: number, to: number): Buffer[] {
    const out: Buffer[] = []
    for (const b of this.batches) if (b.firstSeq <= to && b.firstSeq + b.count - 1 >= from) out.push(b.frame)
    return out
  }
}

/** Chunks waiting for their batch, by seq; the oldest go first when full. Holds a pool reference on each. */
export class PendingChunks {
  private readonly items = new Map<number, { frame: Buffer, flags: number }>()
  dropped = 0

  constructor (readonly max: number, private readonly pool?: FramePool) {}

  get size (): number { return this.items.size }
  has (seq: number): boolean { return this.items.has(seq) }

  put (seq: number, frame: Buffer, flags: number): void {
    if (this.items.has(seq)) return
    if (this.items.size >= this.max) {
      let oldest = Infinity
      for (const s of this.items.keys()) if (s < oldest) oldest = s
      const old = this.items.get(oldest)!
      this.items.delete(oldest)
      this.pool?.release(old.frame)
      this.dropped++
    }
    this.pool?.retain(frame)
    this.items.set(seq, { frame, flags })
  }

  /** Take a waiting chunk out: its reference passes to the caller, who releases it. */
  take (seq: number): { frame: Buffer, flags: number } | undefined {
    const v = this.items.get(seq)
    if (v !== undefined) this.items.delete(seq)
    return v
  }

  clear (): void {
    if (this.pool !== undefined) for (const v of this.items.values()) this.pool.release(v.frame)
    this.items.clear()
  }
}
