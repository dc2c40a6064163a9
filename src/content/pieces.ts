// Pieces on this node: the flash cache, with the most recent pieces kept in
// memory as well. In a household the same piece is asked for by several
// devices within seconds of landing; serving those from memory spares the
// flash a read and a re-hash each (every cache read verifies).

import type { FlashCache } from '../flash-cache'
import { collectGarbage } from '../hal'
import { HOT_PIECES_BYTES_MAX, PIECE_GC_BYTES } from '../limits'
import type { PieceStore } from './transfer'

export class Pieces implements PieceStore {
  readonly #hot = new Map<string, Buffer>()
  #hotBytes = 0
  #traffic = 0

  constructor (readonly cache: FlashCache) {}

  has (hash: string): boolean { return this.#hot.has(hash) || this.cache.has(hash) }

  /** Durable when it resolves (the cache verifies the hash first). */
  async put (hash: string, bytes: Buffer): Promise<void> {
    await this.cache.put(hash, bytes)
    this.#remember(hash, bytes)
    this.count(bytes.length)
  }

  /** Piece bytes that went through here (stored or served): every PIECE_GC_BYTES, a GC (see hal/memory.ts). */
  count (n: number): void {
    this.#traffic += n
    if (this.#traffic < PIECE_GC_BYTES) return
    this.#traffic = 0
    collectGarbage()
  }

  /** Verified bytes, or undefined. */
  async get (hash: string): Promise<Buffer | undefined> {
    const b = this.#hot.get(hash)
    if (b !== undefined) {
      this.#hot.delete(hash)
      this.#hot.set(hash, b)
      return b
    }
    const c = await this.cache.get(hash)
    if (c !== undefined) this.#remember(hash, c)
    return c
  }

  async delete (hash: string): Promise<void> {
    this.#forget(hash)
    await this.cache.delete(hash)
  }

  #remember (hash: string, bytes: Buffer): void {
    if (bytes.length > HOT_PIECES_BYTES_MAX / 4) return
    this.#forget(hash)
    this.#hot.set(hash, bytes)
    this.#hotBytes += bytes.length
    for (const [h] of this.#hot) {
      if (this.#hotBytes <= HOT_PIECES_BYTES_MAX) break
      this.#forget(h)
    }
  }

  #forget (hash: string): void {
    const b = this.#hot.get(hash)
    if (b === undefined) return
    this.#hot.delete(hash)
    this.#hotBytes -= b.length
  }
}
