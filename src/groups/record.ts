// A record: id, type, author, version, created, expiry, attributes, payload,
// signed by its author over the exact CBOR bytes (the signature follows
// them). The same bytes travel on the wire and sit on flash, named by their
// SHA-256. Conflicts between two records of one id are settled the same way
// on every member: higher version, then higher author id, then higher hash.

import type { KeyObject } from 'node:crypto'
import { signDomain, verifyDomain } from '../crypto'
import { CanopyError } from '../errors'
import { nodeIdOf } from '../identity'
import {
  RECORD_ATTRIBUTE_VALUE_BYTES_MAX, RECORD_ATTRIBUTES_COUNT_MAX, RECORD_BYTES_MAX,
  RECORD_PAYLOAD_BYTES_MAX, RECORD_TYPE_BYTES_MAX
} from '../limits'
import { decodeCborAs, encodeCbor } from '../protocol/wire/cbor'
import { blob, body, bytes, flag, optionalField, text, uint } from '../protocol/wire/schema'
import { fail, type Spec } from '../validate'
import { coded, gidBytes, gidText, hex, sha256 } from './cert'

export const RECORD_DOMAIN = 'canopy record v1'
export const TYPE_PATTERN = /^[a-z0-9._-]{1,32}$/
export const ATTRIBUTE_PATTERN = /^[\w.-]{1,32}$/ // \w: A-Z a-z 0-9 _
const LIMITS = { bytesMax: RECORD_BYTES_MAX, depthMax: 2, itemsMax: 64, containerCountMax: 32, allowFloats: true }

/** What is kept in memory for every stored record (the payload stays on flash). */
export interface RecordMeta {
  group: string
  /** 32 hex characters. */
  id: string
  type: string
  /** The author's node id. */
  author: string
  version: number
  /** Wall ms, as the author's clock said. */
  created: number
  /** Wall ms after which the record is dropped; 0: never. */
  expires: number
  attributes: Readonly<Record<string, string>>
  deleted: boolean
  /** SHA-256 of the signed bytes, hex: the flash key. */
  hash: string
  size: number
}

export interface GroupRecord extends RecordMeta {
  payload: Buffer
  bytes: Buffer
}

export type RecordDraft = Omit<RecordMeta, 'author' | 'hash' | 'size'> & { payload: Buffer }

const ms = uint(0, Number.MAX_SAFE_INTEGER)

/** Attributes: names [A-Za-z0-9._-] (1-32) to strings, bounded in count and size. */
export const attributes: Spec<Record<string, string>> = {
  expected: 'attributes',
  fallback: undefined,
  check (v, ctx) {
    // a plain object (as JSON and CBOR maps decode), not an array, a byte string or null
    const entries = (v as object | null)?.constructor === Object ? Object.entries(v as object) : null
    if (entries === null || entries.length > RECORD_ATTRIBUTES_COUNT_MAX || entries.some(([k, x]) => !ATTRIBUTE_PATTERN.test(k) || typeof x !== 'string' || Buffer.byteLength(x) > RECORD_ATTRIBUTE_VALUE_BYTES_MAX)) {
      return fail(ctx, v, `at most ${RECORD_ATTRIBUTES_COUNT_MAX} string attributes`)
    }
    return Object.fromEntries(entries) as Record<string, string>
  }
}

const spec = body({
  g: bytes(16), i: bytes(16), t: text(RECORD_TYPE_BYTES_MAX, TYPE_PATTERN), k: bytes(32), v: uint(1), c: ms, e: ms,
  a: optionalField(attributes), p: optionalField(blob(RECORD_PAYLOAD_BYTES_MAX)), d: flag
})

export const invalid = (m: string): CanopyError => coded('RECORD_INVALID', m)

/** A record id derived from its parts (member, revoke and location records have one per subject). */
export const derivedId = (...parts: string[]): string => sha256(Buffer.from(parts.join('\0'))).subarray(0, 16).toString('hex')

export function signRecord (d: RecordDraft, publicKey: Buffer, privateKey: KeyObject): GroupRecord {
  const b = encodeCbor({
    g: gidBytes(d.group), i: Buffer.from(d.id, 'hex'), t: d.type, k: publicKey, v: d.version, c: d.created, e: d.expires,
    ...(Object.keys(d.attributes).length ? { a: d.attributes } : {}), ...(d.payload.length ? { p: d.payload } : {}), ...(d.deleted ? { d: 1 } : {})
  })
  const signed = Buffer.concat([b, signDomain(privateKey, RECORD_DOMAIN, b)])
  return openRecord(signed, false)
}

/** Decode a signed record; with verify, its signature must match its author's key. Throws RECORD_INVALID. */
export function openRecord (signed: Buffer, verify: boolean): GroupRecord {
  if (signed.length <= 64 || signed.length > RECORD_BYTES_MAX) throw invalid('record size')
  const b = signed.subarray(0, -64)
  let r
  try {
    r = decodeCborAs(b, spec, LIMITS, 'record')
  } catch (err) {
    throw invalid((err as Error).message)
  }
  if (verify && !verifyDomain(r.k, RECORD_DOMAIN, b, signed.subarray(-64))) throw invalid('bad signature')
  return {
    group: gidText(r.g), id: hex(r.i), type: r.t, author: nodeIdOf(r.k), version: r.v, created: r.c, expires: r.e,
    attributes: r.a ?? {}, deleted: r.d, hash: hex(sha256(signed)), size: signed.length, payload: r.p ?? Buffer.alloc(0), bytes: signed
  }
}

/** Does a win over b (same group and id)? Every member decides alike. */
export const beats = (a: RecordMeta, b: RecordMeta): boolean =>
  a.version !== b.version ? a.version > b.version : a.author !== b.author ? a.author > b.author : a.hash > b.hash

/** Only what memory keeps. */
export const metaOf = ({ payload, bytes, ...m }: GroupRecord): RecordMeta => m
