// Signed manifests (FORMAT.md): what a publisher puts beside a file so that
// any node can fetch it in verified pieces from anywhere. The file is JSON
// whose last member is the signature; the signature covers the exact bytes
// before it (with the closing brace), so nothing is ever re-encoded to check
// it. The content id is the SHA-256 of the whole file: the manifest is itself
// a piece, stored and served by that hash.

import { createHash, type KeyObject } from 'node:crypto'
import { CanopyError } from '../errors'
import { formatPublicKey, parsePublicKey, signDomain, verifyDomain } from '../crypto'
import {
  MANIFEST_BYTES_MAX, MANIFEST_NAME_BYTES_MAX, MANIFEST_URLS_COUNT_MAX, PIECE_BYTES_MAX, PIECE_BYTES_MIN, PIECES_COUNT_MAX, PIECES_PER_FILE_MIN
} from '../limits'
import { arrayOf, int, map, obj, str, validate } from '../validate'

export const MANIFEST_DOMAIN = 'canopy manifest v1'
export const MANIFEST_VERSION = 1

export interface Manifest {
  /** SHA-256 of the manifest's bytes: its name on the LAN and in the cache. */
  id: string
  name: string
  size: number
  pieceSize: number
  /** SHA-256 of every piece, lowercase hex. */
  pieces: string[]
  urls: string[]
  /** "ed25519:…" */
  publisher: string
  bytes: Buffer
}

export const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex')

const HEX64 = /^[0-9a-f]{64}$/
const URL_TEXT = map(str({ min: 8, max: 2_048 }), 'an http(s) URL', (u) => (/^https?:\/\/[^\s/]+\/?\S*$/i.test(u) ? u : undefined))
const BODY = obj({
  canopy: map(int(1, 1_000), `format version ${MANIFEST_VERSION}`, (v) => (v === MANIFEST_VERSION ? v : undefined)),
  name: str({ min: 1, max: MANIFEST_NAME_BYTES_MAX }),
  size: int(0, PIECES_COUNT_MAX * PIECE_BYTES_MAX),
  pieceSize: map(int(PIECE_BYTES_MIN, PIECE_BYTES_MAX), `a power of two from ${PIECE_BYTES_MIN} to ${PIECE_BYTES_MAX}`, (n) => ((n & (n - 1)) === 0 ? n : undefined)),
  pieces: arrayOf(str({ min: 64, max: 64, pattern: HEX64, hint: 'a SHA-256 as 64 lowercase hex characters' }), { max: PIECES_COUNT_MAX }),
  urls: arrayOf(URL_TEXT, { max: MANIFEST_URLS_COUNT_MAX }),
  publisher: map(str({ min: 1, max: 64 }), 'an "ed25519:…" key', (k) => (parsePublicKey(k) === null ? undefined : k)),
  signature: str({ min: 86, max: 86, pattern: /^[A-Za-z0-9_-]{86}$/, hint: '64 bytes of base64url' })
})
/** The signature is the last member: `,"signature":"…"}` and at most one newline. */
const TAIL = /,"signature":"([A-Za-z0-9_-]{86})"\}\n?$/

/** 1 MiB pieces, halved for small files so they still have PIECES_PER_FILE_MIN pieces to spread. */
export function pieceSizeFor (size: number): number {
  let p = PIECE_BYTES_MAX
  while (p > PIECE_BYTES_MIN && size / p < PIECES_PER_FILE_MIN) p /= 2
  return p
}

export const pieceCount = (size: number, pieceSize: number): number => Math.ceil(size / pieceSize)
export const pieceLength = (m: Pick<Manifest, 'size' | 'pieceSize'>, i: number): number => Math.min(m.pieceSize, m.size - i * m.pieceSize)

/** Write and sign a manifest. */
export function signManifest (fields: { name: string, size: number, pieceSize: number, pieces: string[], urls: string[] }, key: { privateKey: KeyObject, publicRaw: Uint8Array }): Manifest {
  const { name, size, pieceSize, pieces, urls } = fields
  const body = JSON.stringify({ canopy: MANIFEST_VERSION, name, size, pieceSize, pieces, urls, publisher: formatPublicKey(key.publicRaw) })
  const sig = signDomain(key.privateKey, MANIFEST_DOMAIN, Buffer.from(body)).toString('base64url')
  return parseManifest(Buffer.from(`${body.slice(0, -1)},"signature":"${sig}"}\n`))
}

const bad = (why: string): CanopyError => new CanopyError('MANIFEST_INVALID', `manifest: ${why}`)

/** Bytes into a checked Manifest: bounds, shape, piece count, signature by its own publisher key. Not trust: see checkTrust. */
export function parseManifest (bytes: Buffer): Manifest {
  if (bytes.length > MANIFEST_BYTES_MAX) throw bad(`larger than ${MANIFEST_BYTES_MAX} bytes`)
  const text = bytes.toString('utf8')
  const tail = TAIL.exec(text)
  if (tail === null) throw bad('no signature as its last member')
  let raw: unknown
  try { raw = JSON.parse(text) } catch { throw bad('not JSON') }
  const m = validate(BODY, raw, 'MANIFEST_INVALID', 'manifest')
  if (m.pieces.length !== pieceCount(m.size, m.pieceSize)) throw bad('piece count does not match size')
  if (m.urls.length === 0) throw bad('no content URL')
  const signed = Buffer.from(text.slice(0, tail.index) + '}')
  if (!verifyDomain(parsePublicKey(m.publisher)!, MANIFEST_DOMAIN, signed, Buffer.from(tail[1]!, 'base64url'))) throw bad('bad signature (tampered, or not by its publisher)')
  const { canopy, signature, ...fields } = m
  return { id: sha256(bytes), ...fields, bytes }
}

/** Refuse a manifest whose publisher is not among the trusted keys. */
export function checkTrust (m: Manifest, trusted: readonly string[]): Manifest {
  const key = parsePublicKey(m.publisher)!
  if (!trusted.some((k) => parsePublicKey(k)?.equals(key) === true)) {
    throw new CanopyError('PUBLISHER_UNTRUSTED', `manifest "${m.name}": its publisher is not trusted here; add it to trustedPublishers or pass --trust ${m.publisher}`)
  }
  return m
}
