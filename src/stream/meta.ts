// Stream metadata: who the source is (its ed25519 key: the tree's root node
// id derives from it), the stream's name, a nonce that makes every push a
// new stream, and the chunk bound. Signed by the source; the stream id is a
// hash of the signed body, so whoever holds a stream id can check any meta a
// peer hands it and no relay can swap in its own key.

import { createHash, type KeyObject } from 'node:crypto'
import { PUBLIC_KEY_BYTES, SIGNATURE_BYTES, publicKeyFromRaw, signDomain, verifyDomain } from '../crypto'
import { CanopyError } from '../errors'
import { nodeIdOf } from '../identity'
import { STREAM_CHUNK_PACKETS_MAX, STREAM_NAME_BYTES_MAX } from '../limits'
import { ByteReader, ByteWriter, textBytes } from '../protocol/link'

export const META_VERSION = 1
export const META_DOMAIN = 'canopy stream meta v1'
export const STREAM_ID_DOMAIN = 'canopy stream id v1'
export const STREAM_ID_BYTES = 16
export const META_NONCE_BYTES = 8
export const META_BYTES_MAX = 1 + PUBLIC_KEY_BYTES + META_NONCE_BYTES + 1 + STREAM_NAME_BYTES_MAX + 1 + SIGNATURE_BYTES

export const STREAM_NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/

export interface StreamMeta {
  /** 32 hex characters. */
  readonly streamId: string
  readonly name: string
  readonly sourceKey: Buffer
  /** The root of the tree: nodeIdOf(sourceKey). */
  readonly sourceId: string
  readonly nonce: Buffer
  readonly chunkPacketsMax: number
  /** The signed bytes exactly as made by the source (forwarded unchanged). */
  readonly bytes: Buffer
  /** For verifying the source's signatures (cached KeyObject). */
  readonly key: KeyObject
}

export function streamIdOf (body: Uint8Array): string {
  return createHash('sha256').update(STREAM_ID_DOMAIN).update(Buffer.from([0])).update(body).digest().subarray(0, STREAM_ID_BYTES).toString('hex')
}

export function createMeta (options: { name: string, sourceKey: Buffer, privateKey: KeyObject, nonce: Buffer, chunkPacketsMax?: number }): StreamMeta {
  if (!STREAM_NAME_PATTERN.test(options.name)) throw new CanopyError('INPUT_INVALID', `stream name ${JSON.stringify(options.name)} must be 1-64 of A-Z a-z 0-9 . _ -`)
  const bodyBytes = 1 + PUBLIC_KEY_BYTES + META_NONCE_BYTES + textBytes(options.name) + 1
  const buf = Buffer.alloc(bodyBytes + SIGNATURE_BYTES)
  const w = new ByteWriter(buf)
    .u8(META_VERSION).bytes(options.sourceKey).bytes(options.nonce).text(options.name).u8(options.chunkPacketsMax ?? STREAM_CHUNK_PACKETS_MAX)
  const body = buf.subarray(0, bodyBytes)
  w.bytes(signDomain(options.privateKey, META_DOMAIN, body)).done()
  return decodeMeta(buf)
}

/** Decode and verify; STREAM_MALFORMED or STREAM_BAD_SIGNATURE on failure. */
export function decodeMeta (bytes: Uint8Array): StreamMeta {
  const r = new ByteReader(bytes, 'STREAM_MALFORMED')
  const version = r.u8('meta version')
  if (version !== META_VERSION) r.fail(`meta version ${version} is not ${META_VERSION}`)
  const sourceKey = Buffer.from(r.bytes(PUBLIC_KEY_BYTES, 'meta source key'))
  const nonce = Buffer.from(r.bytes(META_NONCE_BYTES, 'meta nonce'))
  const name = r.text(STREAM_NAME_BYTES_MAX, 'meta name')
  if (!STREAM_NAME_PATTERN.test(name)) r.fail('meta name has characters outside A-Z a-z 0-9 . _ -')
  const chunkPacketsMax = r.u8('meta chunk packets')
  if (chunkPacketsMax < 1 || chunkPacketsMax > STREAM_CHUNK_PACKETS_MAX) r.fail(`meta chunk bound ${chunkPacketsMax} outside 1..${STREAM_CHUNK_PACKETS_MAX}`)
  const bodyEnd = r.offset
  const signature = r.bytes(SIGNATURE_BYTES, 'meta signature')
  r.done('meta')
  let key: KeyObject
  try {
    key = publicKeyFromRaw(sourceKey)
  } catch {
    throw new CanopyError('STREAM_BAD_SIGNATURE', 'meta source key is not a valid ed25519 key')
  }
  const body = bytes.subarray(0, bodyEnd)
  if (!verifyDomain(key, META_DOMAIN, body, signature)) throw new CanopyError('STREAM_BAD_SIGNATURE', 'meta signature does not verify')
  return { streamId: streamIdOf(body), name, sourceKey, sourceId: nodeIdOf(sourceKey), nonce, chunkPacketsMax, bytes: Buffer.from(bytes), key }
}
