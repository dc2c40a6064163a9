// Stream metadata: who the source is (its ed25519 key: the tree's root node
// id derives from it), the stream's name, a nonce that makes every push a
// new stream, and the chunk bound. Signed by the source; the stream id is a
// hash of the signed body, so whoever holds a stream id can check any meta a
// peer hands it and no relay can swap in its own key.

import type { KeyObject } from 'node:crypto'
import { PUBLIC_KEY_BYTES, SIGNATURE_BYTES, publicKeyFromRaw, signDomain, verifyDomain } from '../crypto'
import { CanopyError } from '../errors'
import { nodeIdOf } from '../identity'
import { STREAM_CHUNK_PACKETS_MAX, STREAM_NAME_BYTES_MAX } from '../limits'
import { OFFSET, decodeFields, encodeFields, raw, record, sha256, text, uint } from '../protocol/link'

export const META_VERSION = 1
export const META_DOMAIN = 'canopy stream meta v1'
export const STREAM_ID_DOMAIN = 'canopy stream id v1'
export const STREAM_ID_BYTES = 16
export const META_NONCE_BYTES = 8
export const META_BYTES_MAX = 1 + PUBLIC_KEY_BYTES + META_NONCE_BYTES + 1 + STREAM_NAME_BYTES_MAX + 1 + SIGNATURE_BYTES

export const STREAM_NAME_PATTERN = /^[A-Za-z0-9._-]{1,64}$/
export const NAME_RULE = 'a stream name is 1-64 of A-Z a-z 0-9 . _ -'

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

/** The signed body (FORMAT.md "Meta"), then the signature. */
const BODY = [uint(1, META_VERSION, META_VERSION), raw(PUBLIC_KEY_BYTES), raw(META_NONCE_BYTES), text(STREAM_NAME_BYTES_MAX, STREAM_NAME_PATTERN), uint(1, 1, STREAM_CHUNK_PACKETS_MAX)]
const META = record('version sourceKey nonce name chunkPacketsMax bodyEnd signature', ...BODY, OFFSET, raw(SIGNATURE_BYTES))

export function streamIdOf (body: Uint8Array): string {
  return sha256(STREAM_ID_DOMAIN, Buffer.from([0]), body).subarray(0, STREAM_ID_BYTES).toString('hex')
}

export function createMeta (options: { name: string, sourceKey: Buffer, privateKey: KeyObject, nonce: Buffer, chunkPacketsMax?: number }): StreamMeta {
  if (!STREAM_NAME_PATTERN.test(options.name)) throw new CanopyError('INPUT_INVALID', NAME_RULE)
  const body = encodeFields(BODY, [META_VERSION, options.sourceKey, options.nonce, options.name, options.chunkPacketsMax ?? STREAM_CHUNK_PACKETS_MAX])
  return decodeMeta(Buffer.concat([body, signDomain(options.privateKey, META_DOMAIN, body)]))
}

/** Decode and verify; STREAM_MALFORMED or STREAM_BAD_SIGNATURE on failure. */
export function decodeMeta (bytes: Uint8Array): StreamMeta {
  const m = decodeFields(bytes, 'STREAM_MALFORMED', 'meta', META)
  const bad = (why: string): CanopyError => new CanopyError('STREAM_BAD_SIGNATURE', `meta ${why}`)
  let key: KeyObject
  try {
    key = publicKeyFromRaw(m.sourceKey)
  } catch {
    throw bad('source key is not ed25519')
  }
  const body = bytes.subarray(0, m.bodyEnd)
  if (!verifyDomain(key, META_DOMAIN, body, m.signature)) throw bad('signature does not verify')
  return { streamId: streamIdOf(body), name: m.name, sourceKey: m.sourceKey, sourceId: nodeIdOf(m.sourceKey), nonce: m.nonce, chunkPacketsMax: m.chunkPacketsMax, bytes: Buffer.from(bytes), key }
}
