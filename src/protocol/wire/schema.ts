// Schema pieces for decoded wire bodies, on the validate kit's Spec contract.
// Unlike config objects, a body map ignores keys it does not know (a newer
// peer may add optional fields within the same version); the decoder door has
// already bounded how many there can be.

import { CONTENT_ID_BYTES, CONTENT_URL_BYTES_MAX, PIECE_RANGES_COUNT_MAX } from '../../limits'
import { fail, int, obj, type Infer, type Spec } from '../../validate'
import { PIECE_INDEX_END_MAX, type ContentRef, type PieceRanges } from '../content'

const UINT32_MAX = 0xffff_ffff

/** A spec from a parse that returns undefined for a value it refuses. */
function spec<T> (expected: string, parse: (v: unknown) => T | undefined, fallback?: () => T): Spec<T> {
  return { expected, fallback, check: (v, ctx) => parse(v) ?? fail(ctx, v, expected) }
}

/** An integer in [min, max] (max at most 2^32 - 1: cbor-x writes larger integers as floats). */
export const uint = (min: number, max = UINT32_MAX): Spec<number> => int(min, max)

/** A byte string of exactly n bytes, copied out of the datagram. */
export const bytes = (n: number): Spec<Buffer> =>
  spec(`${n} bytes`, (v) => (v instanceof Uint8Array && v.length === n ? Buffer.from(v) : undefined))

/** A byte string of at most maxBytes, copied out. */
export const blob = (maxBytes: number): Spec<Buffer> =>
  spec(`at most ${maxBytes} bytes`, (v) => (v instanceof Uint8Array && v.length <= maxBytes ? Buffer.from(v) : undefined))

/** A text string of at most maxBytes UTF-8 bytes, optionally matching a pattern. */
export const text = (maxBytes: number, pattern?: RegExp): Spec<string> =>
  spec(`text of at most ${maxBytes} bytes`, (v) => (typeof v === 'string' && Buffer.byteLength(v) <= maxBytes && (!pattern || pattern.test(v)) ? v : undefined))

/** A flag carried as 1 when set and left out otherwise. */
export const flag: Spec<boolean> = spec('0 or 1', (v) => (v === 1 ? true : v === 0 ? false : undefined), () => false)

/** A content id travels as its 32 bytes, a URL as text. */
export const content: Spec<ContentRef> = spec(`${CONTENT_ID_BYTES} bytes or an http(s) URL`, (v) =>
  v instanceof Uint8Array && v.length === CONTENT_ID_BYTES
    ? Buffer.from(v).toString('hex')
    : typeof v === 'string' && Buffer.byteLength(v) <= CONTENT_URL_BYTES_MAX && /^https?:\/\/[^\s/][^\s]*$/i.test(v) ? v : undefined)

export const contentToWire = (c: ContentRef): Buffer | string => (/^[0-9a-f]{64}$/.test(c) ? Buffer.from(c, 'hex') : c)

/** Piece ranges travel flat: [first0, end0, first1, end1, ...], sorted, disjoint, each non-empty. */
export const ranges: Spec<PieceRanges> = spec(`an even list of at most ${2 * PIECE_RANGES_COUNT_MAX} sorted piece indexes`, (v) => {
  if (!Array.isArray(v) || v.length % 2 !== 0 || v.length > 2 * PIECE_RANGES_COUNT_MAX) return undefined
  const out: Array<[number, number]> = []
  let prevEnd = -1
  for (let i = 0; i < v.length; i += 2) {
    const a: unknown = v[i]
    const b: unknown = v[i + 1]
    if (!Number.isInteger(a) || !Number.isInteger(b) || (a as number) <= prevEnd || (b as number) <= (a as number) || (b as number) > PIECE_INDEX_END_MAX) return undefined
    out.push([a as number, b as number])
    prevEnd = b as number
  }
  return out
})

export const rangesToWire = (r: PieceRanges): number[] => r.flatMap(([a, b]) => [a, b])

export const optionalField = <T>(inner: Spec<T>): Spec<T | undefined> => ({ ...inner, fallback: () => undefined })

type Shape = Record<string, Spec<unknown>>
type Simplify<T> = { [K in keyof T]: T[K] }
/** Fields whose spec allows undefined are optional keys. */
type BodyOf<S extends Shape> = Simplify<
  { [K in keyof S as undefined extends Infer<S[K]> ? never : K]: Infer<S[K]> } &
  { [K in keyof S as undefined extends Infer<S[K]> ? K : never]?: Infer<S[K]> }>

/** A map with these fields; unknown keys are ignored, missing ones take their fallback or fail. */
export const body = <S extends Shape>(shape: S): Spec<BodyOf<S>> => obj(shape, true) as unknown as Spec<BodyOf<S>>
