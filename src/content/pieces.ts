// Pieces on this node: the flash cache, with the most recent pieces kept in
// memory as well. In a household the same piece is asked for by several
// devices within seconds of landing; serving those from memory spares the
// flash a read and a re-hash each (every cache read verifies).

import type { FlashCache } from '../flash-cache'
import { collectGarbage } from '../hal'
import { HOT_PIECES_BYTES_MAX, PIECE_GC_BYTES } from '../limits'
import type { PieceStore } from './transfer'

export interface Pieces extends PieceStore {
  readonly cache: FlashCache
  /** Durable when it resolves (the cache verifies the hash first). */
  put (hash: string, bytes: Buffer): Promise<void>
  /** Piece bytes that went through here (stored or served): every PIECE_GC_BYTES, a GC (see hal/memory.ts). */
  count (n: number): void
  /** Verified bytes, or undefined. */
  get (hash: string): Promise<Buffer | undefined>
  delete (hash: string): Promise<void>
}

// A closure rather than a class: its private names minify to one letter.
export function createPieces (cache: FlashCache): Pieces {
  const hot = new Map<string, Buffer>()
  let hotBytes = 0
  let traffic = 0
  const forget = (hash: string): void => {
    const b = hot.get(hash)
    if (b === undefined) return
    hot.delete(hash)
    hotBytes -= b.length
  }
  const remember = (hash: string, bytes: Buffer): void => {
    if (bytes.length > HOT_PIECES_BYTES_MAX / 4) return
    forget(hash)
    hot.set(hash, bytes)
    hotBytes += bytes.length
    for (const [h] of hot) {
      if (hotBytes <= HOT_PIECES_BYTES_MAX) break
      forget(h)
    }
  }
  const P: Pieces = {
    cache,
    has: (hash) => hot.has(hash) || cache.has(hash),
    async put (hash, bytes) {
      await cache.put(hash, bytes)
      remember(hash, bytes)
      P.count(bytes.length)
    },
    count (n) {
      traffic += n
      if (traffic < PIECE_GC_BYTES) return
      traffic = 0
      collectGarbage()
    },
    async get (hash) {
      const b = hot.get(hash)
      if (b !== undefined) {
        hot.delete(hash)
        hot.set(hash, b)
        return b
      }
      const c = await cache.get(hash)
      if (c !== undefined) remember(hash, c)
      return c
    },
    async delete (hash) {
      forget(hash)
      await cache.delete(hash)
    }
  }
  return P
}
