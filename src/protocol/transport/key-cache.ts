// Parsed public keys by their raw bytes: a KeyObject costs a DER parse and the
// node id a SHA-256, too much to redo for every datagram. Bounded, least
// recently used first out.

import type { KeyObject } from 'node:crypto'
import { publicKeyFromRaw } from '../../crypto'
import { nodeIdOf } from '../../identity'

export interface KnownKey {
  /** Hex of the raw key: the replay table's key. */
  readonly hex: string
  readonly raw: Buffer
  readonly key: KeyObject
  readonly nodeId: string
}

export class KeyCache {
  private readonly keys = new Map<string, KnownKey>()

  constructor (private readonly countMax: number) {}

  /** null when the bytes are not a usable ed25519 key. */
  get (raw: Uint8Array): KnownKey | null {
    const hex = Buffer.from(raw.buffer, raw.byteOffset, raw.length).toString('hex')
    const hit = this.keys.get(hex)
    if (hit !== undefined) {
      this.keys.delete(hex)
      this.keys.set(hex, hit)
      return hit
    }
    let key: KeyObject
    try {
      key = publicKeyFromRaw(raw)
    } catch {
      return null
    }
    const copy = Buffer.from(raw)
    const known: KnownKey = { hex, raw: copy, key, nodeId: nodeIdOf(copy) }
    if (this.keys.size >= this.countMax) this.keys.delete(this.keys.keys().next().value as string)
    this.keys.set(hex, known)
    return known
  }

  get size (): number { return this.keys.size }
}
