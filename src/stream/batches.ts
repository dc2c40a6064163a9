// Signature batches on the receiving side: a SIG frame is verified once
// (the source's ed25519 signature over the exact bytes received), then its
// hashes vouch for chunks by sequence number. Chunks that arrive before
// their batch wait in a bounded pending set. Verified batches are kept as
// frames (forwarded unchanged to children and replayed for gap fills).

import type { KeyObject } from 'node:crypto'
import { verifyDomain, signDomain } from '../crypto'
import { assert } from '../errors'
import { FRAME_HEADER_BYTES, sha256, type FramePool } from '../protocol/link'
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
  hashChunk: (frame) => sha256(frame.subarray(FRAME_HEADER_BYTES)),
  verify: (key, domain, frame, signedEnd) => {
    const payload = frame.subarray(FRAME_HEADER_BYTES)
    return verifyDomain(key, domain, payload.subarray(0, signedEnd), payload.subarray(signedEnd))
  },
  sign: (key, domain, body) => signDomain(key, domain, body)
}

/** A SIG frame held: its first seq, chunk count, and where its hashes start. */
interface Batch { first: number, count: number, frame: Buffer, at: number }

export type BatchStore = ReturnType<typeof createBatchStore>

/** Verified batches by the seqs they cover, in arrival order (seq order in practice); the oldest go when over batchesMax. */
export function createBatchStore (batchesMax: number) {
  const batches: Batch[] = []
  const bySeq = new Map<number, Batch>()
  return {
    has: (firstSeq: number): boolean => bySeq.get(firstSeq)?.first === firstSeq,

    /** The signed hash for seq, or undefined when no stored batch covers it. */
    hashOf (seq: number): Buffer | undefined {
      const b = bySeq.get(seq)
      const at = b === undefined ? 0 : FRAME_HEADER_BYTES + b.at + (seq - b.first) * HASH_BYTES
      return b?.frame.subarray(at, at + HASH_BYTES)
    },

    /** Keep a verified batch; the oldest go when over the bound. */
    add (firstSeq: number, count: number, frame: Buffer, hashesAt: number): void {
      const b: Batch = { first: firstSeq, count, frame, at: hashesAt }
      batches.push(b)
      for (let s = firstSeq; s < firstSeq + count; s++) if (!bySeq.has(s)) bySeq.set(s, b)
      while (batches.length > batchesMax) {
        const old = batches.shift()!
        for (let s = old.first; s < old.first + old.count; s++) if (bySeq.get(s) === old) bySeq.delete(s)
      }
      assert(batches.length <= batchesMax, 'batch bound')
    },

    /** Frames of the stored batches that cover any seq in [from, to], in order. */
    covering: (from: number, to: number): Buffer[] => batches.filter((b) => b.first <= to && b.first + b.count - 1 >= from).map((b) => b.frame)
  }
}

export type PendingChunks = ReturnType<typeof createPendingChunks>

/** Chunks waiting for their batch, by seq; the oldest go first when full. Holds a pool reference on each. */
export function createPendingChunks (max: number, pool?: FramePool) {
  const items = new Map<number, { frame: Buffer, flags: number }>()
  return {
    has: (seq: number): boolean => items.has(seq),

    put (seq: number, frame: Buffer, flags: number): void {
      if (items.has(seq)) return
      if (items.size >= max) {
        const oldest = Math.min(...items.keys())
        pool?.release(items.get(oldest)!.frame)
        items.delete(oldest)
      }
      pool?.retain(frame)
      items.set(seq, { frame, flags })
    },

    /** Take a waiting chunk out: its reference passes to the caller, who releases it. */
    take (seq: number): { frame: Buffer, flags: number } | undefined {
      const v = items.get(seq)
      items.delete(seq)
      return v
    },

    clear (): void {
      for (const v of items.values()) pool?.release(v.frame)
      items.clear()
    }
  }
}
