// The one door through which untrusted CBOR enters the agent (design.md,
// "Dependencies, as measured"). cbor-x is fast but not safe on hostile input
// by itself, so every decode here:
//   1. checks the size before anything else,
//   2. runs the structural pre-scan (cbor-scan.ts): depth, item and container
//      counts, no indefinite lengths, tags only from an allowlist, strict
//      UTF-8, unique keys, no trailing bytes,
//   3. decodes with cbor-x whose dangerous tags are overridden to throw and
//      whose size limits are set (defence in depth: step 2 already refuses them),
//   4. validates the result against a schema,
// and every failure is one CanopyError with code DECODE_INVALID.
//
// cbor-x is imported through its "decode-no-eval" build: the decoder only
// (the encoder is ours, below: 20 KB less in the bundle), it never loads the
// optional native accelerator cbor-extract (installed in this dev tree, left
// out of the bundle) and never compiles record readers with new Function, so
// tests and the bundle run the very same pure-JS decoder.

import { Decoder, addExtension, isNativeAccelerationEnabled, setSizeLimits } from 'cbor-x/decode-no-eval'
import { CanopyError, assert } from '../../errors'
import { CBOR_BYTES_MAX, CBOR_CONTAINER_COUNT_MAX, CBOR_DEPTH_MAX, CBOR_ITEMS_COUNT_MAX } from '../../limits'
import { validate, type Spec } from '../../validate'
import { invalid, scanCbor, type ScanLimits } from './cbor-scan'

export type DecodeLimits = ScanLimits

/**
 * Tags cbor-x gives meaning to that hostile input can abuse: 2/3 bignums
 * (quadratic), 4/5 decimal and big floats, 6 and 51 packed values (51 expands
 * 40 KB into an out-of-memory), 27 constructs objects, 28/29 shared references
 * (cycles), 105 record definitions, 14/15 bundled strings, 258 sets, 259 maps.
 */
export const REFUSED_TAGS: readonly number[] = [2, 3, 4, 5, 6, 14, 15, 27, 28, 29, 51, 105, 258, 259]

/** cbor-x decodes its record tags (0xdff9..0xdfff) before consulting extensions: no allowlist may hold them. */
const RECORD_TAGS_FROM = 0xdff9

const refuse = Object.assign((): never => { throw invalid('tag', 'refused') }, { handlesRead: true })
for (const tag of REFUSED_TAGS) addExtension({ tag, decode: refuse } as unknown as Parameters<typeof addExtension>[0])
setSizeLimits({ maxArraySize: CBOR_CONTAINER_COUNT_MAX, maxMapSize: CBOR_CONTAINER_COUNT_MAX, maxObjectSize: CBOR_CONTAINER_COUNT_MAX })
assert(!isNativeAccelerationEnabled, 'cbor-x pure JS')

const decoder = new Decoder({ useRecords: false, mapsAsObjects: true, int64AsNumber: true, copyBuffers: false } as ConstructorParameters<typeof Decoder>[0])

/** Decode one untrusted CBOR item. Throws only CanopyError DECODE_INVALID. */
export function decodeCbor (bytes: Uint8Array, limits: DecodeLimits): unknown {
  assert(limits.bytesMax <= CBOR_BYTES_MAX && limits.depthMax <= CBOR_DEPTH_MAX && limits.itemsMax <= CBOR_ITEMS_COUNT_MAX &&
    limits.containerCountMax <= CBOR_CONTAINER_COUNT_MAX, 'CBOR limits within the ceilings')
  for (const t of limits.allowTags ?? []) assert(t < RECORD_TAGS_FROM && !REFUSED_TAGS.includes(t), `CBOR tag ${t} allowed`)
  scanCbor(bytes, limits)
  try {
    return decoder.decode(bytes)
  } catch (err) {
    throw coded(err, 'cbor')
  }
}

/** What cbor-x or a schema threw, as DECODE_INVALID with this reason (a peer must not find out what else it was). */
function coded (err: unknown, reason: string): CanopyError {
  const e = err as CanopyError
  return new CanopyError('DECODE_INVALID', String(e?.message ?? e), { cause: err, detail: { ...e?.detail, reason: e?.detail?.reason ?? reason } })
}

/** Decode and validate against a schema; a schema failure is DECODE_INVALID too, naming the field (reason "schema"). */
export function decodeCborAs<T> (bytes: Uint8Array, spec: Spec<T>, limits: DecodeLimits, what: string): T {
  const value = decodeCbor(bytes, limits)
  try {
    return validate(spec, value, 'DECODE_INVALID', what)
  } catch (err) {
    throw coded(err, 'schema')
  }
}

/**
 * Encode our own values: null, booleans, numbers, text, byte strings
 * (Uint8Array/Buffer), arrays and plain objects (maps with text keys in
 * insertion order). The bytes are those cbor-x wrote with the options we
 * used (useRecords false, variableMapSize, tagUint8Array false, useFloat32
 * 0), so golden fixtures keep matching: preferred, minimal-length heads (RFC
 * 8949 §3, §4.2.1), integers in [-2^32, 2^32) as major types 0/1 and every
 * other number as a float64 (our decoders refuse floats unless allowed). One
 * deliberate difference: a lone UTF-16 surrogate is written as U+FFFD (valid
 * UTF-8), where cbor-x wrote bytes no UTF-8 decoder accepts. Anything else
 * (undefined, bigint, Map, Date, class instances, cycles) is a programming
 * error: ASSERTION. Size first, then one allocation, every byte checked.
 */
export function encodeCbor (value: unknown): Buffer {
  const size = put(value, null, 0, 0)
  const out = Buffer.allocUnsafe(size)
  assert(put(value, out, 0, 0) === size, 'CBOR: every byte written')
  return out
}

/** Writes v at p into b (or only measures, with b null); returns the position after it. */
function put (v: unknown, b: Buffer | null, p: number, depth: number): number {
  // RFC 8949 §3: major type in the top 3 bits; an argument below 24 in the low 5, else 1, 2 or 4 bytes after.
  const head = (major: number, n: number): number => {
    const len = n < 24 ? 0 : n < 0x100 ? 1 : n < 0x10000 ? 2 : 4
    if (b) {
      b[p] = (major << 5) | (len === 0 ? n : 24 + (len >> 1))
      if (len > 0) b.writeUIntBE(n, p + 1, len)
    }
    return p + 1 + len
  }
  const simple = (byte: number): number => {
    if (b) b[p] = byte
    return p + 1
  }
  assert(depth <= CBOR_DEPTH_MAX, 'CBOR depth (a cycle?)')
  if (v === null) return simple(0xf6)
  if (v === true || v === false) return simple(v ? 0xf5 : 0xf4)
  if (typeof v === 'number') {
    if (v >>> 0 === v) return head(0, v)
    if (Number.isInteger(v) && v < 0 && v >= -0x1_0000_0000) return head(1, -1 - v)
    b?.writeDoubleBE(v, p + 1)
    return simple(0xfb) + 8
  }
  if (typeof v === 'string') {
    const n = Buffer.byteLength(v)
    p = head(3, n)
    b?.write(v, p)
    return p + n
  }
  if (v instanceof Uint8Array) {
    p = head(2, v.length)
    b?.set(v, p)
    return p + v.length
  }
  if (Array.isArray(v)) {
    p = head(4, v.length)
    for (const x of v) p = put(x, b, p, depth + 1)
    return p
  }
  const proto: unknown = typeof v === 'object' ? Object.getPrototypeOf(v) : undefined
  if (proto !== Object.prototype && proto !== null) throw new CanopyError('ASSERTION', `CBOR: ${typeof v}`)
  const keys = Object.keys(v as object)
  p = head(5, keys.length)
  for (const k of keys) p = put((v as Record<string, unknown>)[k], b, put(k, b, p, depth), depth + 1)
  return p
}
