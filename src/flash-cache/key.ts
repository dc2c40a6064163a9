// Piece names: a SHA-256, given as 64 hex characters or 32 bytes (from a URL,
// a manifest, a peer). Anything else is a coded input error, never a crash.

import { CanopyError } from '../errors'
import { HASH_BYTES } from './format'

export type PieceHash = string | Uint8Array

const HEX64 = /^[0-9a-fA-F]{64}$/

/** The canonical key: lowercase hex. */
export function pieceKey (hash: PieceHash): string {
  if (typeof hash === 'string') {
    if (!HEX64.test(hash)) throw new CanopyError('INPUT_INVALID', 'a piece hash is 64 hex digits')
    return hash.toLowerCase()
  }
  if (!(hash instanceof Uint8Array) || hash.length !== HASH_BYTES) throw new CanopyError('INPUT_INVALID', 'a piece hash is 32 bytes')
  return Buffer.from(hash.buffer, hash.byteOffset, hash.length).toString('hex')
}
