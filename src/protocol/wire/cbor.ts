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
// cbor-x is imported through its "index-no-eval" build: it never loads the
// optional native accelerator cbor-extract (installed in this dev tree, left
// out of the bundle) and never compiles record readers with new Function, so
// tests and the bundle run the very same pure-JS decoder.

import { Decoder, Encoder, addExtension, isNativeAccelerationEnabled, setSizeLimits } from 'cbor-x/index-no-eval'
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

const refuse = Object.assign((): never => { throw invalid('tag', 'a refused CBOR tag') }, { handlesRead: true })
for (const tag of REFUSED_TAGS) addExtension({ tag, decode: refuse } as unknown as Parameters<typeof addExtension>[0])
setSizeLimits({ maxArraySize: CBOR_CONTAINER_COUNT_MAX, maxMapSize: CBOR_CONTAINER_COUNT_MAX, maxObjectSize: CBOR_CONTAINER_COUNT_MAX })
assert(!isNativeAccelerationEnabled, 'cbor-x runs its pure-JS decoder everywhere')

const decoder = new Decoder({ useRecords: false, mapsAsObjects: true, int64AsNumber: true, copyBuffers: false } as ConstructorParameters<typeof Decoder>[0])
const encoder = new Encoder({ useRecords: false, mapsAsObjects: true, variableMapSize: true, tagUint8Array: false, useFloat32: 0 } as ConstructorParameters<typeof Encoder>[0])

function checkLimits (limits: DecodeLimits): void {
  assert(limits.bytesMax <= CBOR_BYTES_MAX && limits.depthMax <= CBOR_DEPTH_MAX && limits.itemsMax <= CBOR_ITEMS_COUNT_MAX &&
    limits.containerCountMax <= CBOR_CONTAINER_COUNT_MAX, 'CBOR limits within the process-wide ceilings')
  for (const t of limits.allowTags ?? []) assert(t < RECORD_TAGS_FROM && !REFUSED_TAGS.includes(t), `CBOR tag ${t} may not be allowed`)
}

/** Decode one untrusted CBOR item. Throws only CanopyError DECODE_INVALID. */
export function decodeCbor (bytes: Uint8Array, limits: DecodeLimits): unknown {
  checkLimits(limits)
  scanCbor(bytes, limits)
  try {
    return decoder.decode(bytes)
  } catch (err) {
    if (CanopyError.is(err, 'DECODE_INVALID')) throw err
    throw new CanopyError('DECODE_INVALID', `CBOR: ${(err as Error)?.message ?? String(err)}`, { cause: err, detail: { reason: 'cbor' } })
  }
}

/** Decode and validate against a schema; a schema failure is DECODE_INVALID too, naming the field. */
export function decodeCborAs<T> (bytes: Uint8Array, spec: Spec<T>, limits: DecodeLimits, what: string): T {
  const value = decodeCbor(bytes, limits)
  try {
    return validate(spec, value, 'DECODE_INVALID', what)
  } catch (err) {
    if (CanopyError.is(err, 'DECODE_INVALID')) throw new CanopyError('DECODE_INVALID', err.message, { detail: { ...err.detail, reason: 'schema' } })
    // A schema must never throw anything else, but a peer must not be able to find out if one does.
    throw new CanopyError('DECODE_INVALID', `${what}: ${(err as Error)?.message ?? String(err)}`, { cause: err, detail: { reason: 'schema' } })
  }
}

/** Encode our own values (integers below 2^32, strings, Buffers, arrays, plain objects). */
export function encodeCbor (value: unknown): Buffer {
  return Buffer.from(encoder.encode(value))
}
