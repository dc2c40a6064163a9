// Bounds-checked reading and writing of fixed binary layouts. The reader
// checks the remaining length before every read and fails with the caller's
// error code; the writer asserts that an encoder filled exactly the bytes it
// allocated. On top of them, layouts as data: a Field knows a value's size,
// how to write it and how to read it back (with its bounds), and record()
// strings fields into a message. The link's control messages, the stream
// wire format and the stream meta are all tables of these.

import { createHash } from 'node:crypto'
import { CanopyError, assert, type ErrorCode } from '../../errors'
import { FRAME_HEADER_BYTES, allocFrame } from './frame'
import type { FramePool } from './pool'

export type ByteReader = ReturnType<typeof byteReader>
export type ByteWriter = ReturnType<typeof byteWriter>

/** Reads buf from at to end; every read checks the bytes are there and fails with code. */
export function byteReader (buf: Uint8Array, code: ErrorCode, at = 0, end = buf.length) {
  const fail = (message: string): never => { throw new CanopyError(code, message) }
  /** Where the next n bytes start; fails unless they are all there. */
  const take = (n: number, what: string): number => {
    if (n > end - at) fail(`${what}: short`)
    return (at += n) - n
  }
  return {
    get offset (): number { return at },
    get remaining (): number { return end - at },
    fail,
    /** n (1..4) bytes, unsigned big-endian. */
    uint (n: number, what: string): number {
      let i = take(n, what)
      let v = 0
      while (n-- > 0) v = v * 256 + buf[i++]!
      return v
    },
    /** A view (not a copy) of the next n bytes. */
    bytes (n: number, what: string): Uint8Array {
      const i = take(n, what)
      return buf.subarray(i, i + n)
    },
    /** Everything consumed: trailing bytes are an error. */
    done (what: string): void {
      if (at !== end) fail(`${what}: trailing bytes`)
    }
  }
}

/** Writes into buf from at; done() asserts the encoder filled exactly the bytes it allocated. */
export function byteWriter (buf: Buffer, at = 0) {
  const w = {
    /** n (1..4) bytes, unsigned big-endian; values outside the field's range are clamped to it. */
    uint (n: number, v: number) {
      at = buf.writeUIntBE(Math.max(0, Math.min(256 ** n - 1, Math.round(v))), at, n)
      return w
    },
    bytes (b: Uint8Array) {
      buf.set(b, at)
      at += b.length
      return w
    },
    done (): Buffer {
      assert(at === buf.length, 'encoded size')
      return buf
    }
  }
  return w
}

export const textBytes = (s: string): number => 1 + Buffer.byteLength(s)

/** SHA-256 over the parts, one after the other (the one place the link and the streams hash). */
export function sha256 (...parts: Array<Uint8Array | string>): Buffer {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return h.digest()
}

/**
 * One field of a layout: the bytes a value takes, how to write it, how to
 * read it (checking its bounds; `m` is the record read so far, for fields
 * whose size an earlier field gives).
 */
export type Field<T = any> = readonly [
  size: (v: T) => number,
  write: (w: ByteWriter, v: T) => unknown,
  read: (r: ByteReader, what: string, m: Record<string, any>) => T
]

/** An unsigned integer of n bytes, in min..max when read; clamped to what n bytes hold when written. */
export const uint = (n: number, min = 0, max = 256 ** n - 1): Field<number> => [
  () => n,
  (w, v) => w.uint(n, v),
  (r, what) => {
    const v = r.uint(n, what)
    if (v < min || v > max) r.fail(`${what}: ${v}`)
    return v
  }
]
export const U8 = uint(1)
export const U16 = uint(2)
export const U32 = uint(4)

/** Exactly n bytes (a copy when read); n omitted: whatever the value holds, written only. */
export const raw = (n = -1): Field<Uint8Array> => [(v) => v.length, (w, v) => w.bytes(v), (r, what) => Buffer.from(r.bytes(n, what))]

/** n bytes carried as hex (node and stream ids); nothing given is zeros. */
export const hexId = (n: number): Field<string | undefined> => [() => n, (w, v) => {
  const b = Buffer.from(v ?? '00'.repeat(n), 'hex')
  assert(b.length === n, 'hex size')
  w.bytes(b)
}, (r, what) => Buffer.from(r.bytes(n, what)).toString('hex')]

/** u8 length + UTF-8 (valid UTF-8 only), at most max bytes, matching pattern; a longer value is written as "". */
export const text = (max: number, pattern: RegExp): Field<string> => {
  const fit = (v: string): string => (textBytes(v) > max + 1 ? '' : v)
  return [(v) => textBytes(fit(v)), (w, v) => {
    const b = Buffer.from(fit(v))
    assert(b.length <= 255, 'text size')
    w.uint(1, b.length).bytes(b)
  }, (r, what) => {
    const n = r.uint(1, what)
    if (n > max) r.fail(`${what}: ${n} > ${max}`)
    const s = Buffer.from(r.bytes(n, what)).toString('utf8')
    if (Buffer.byteLength(s) !== n || !pattern.test(s)) r.fail(`${what}: odd characters`)
    return s
  }]
}

/** u16 length, then at most max bytes (a copy when read). */
export const blob = (max: number): Field<Uint8Array> => [(v) => 2 + v.length, (w, v) => w.uint(2, v.length).bytes(v), (r, what) => {
  const n = r.uint(2, what)
  if (n > max) r.fail(`${what}: ${n} > ${max}`)
  return Buffer.from(r.bytes(n, what))
}]

/** u8 count (min..max; the first max are written), then the items. */
export const list = <T>(max: number, item: Field<T>, min = 0): Field<readonly T[]> => [
  (vs) => vs.slice(0, max).reduce((n, v) => n + item[0](v), 1),
  (w, vs) => { w.uint(1, Math.min(max, vs.length)); for (const v of vs.slice(0, max)) item[1](w, v) },
  (r, what, m) => {
    const n = r.uint(1, what)
    if (n < min || n > max) r.fail(`${what}: ${n} items`)
    return Array.from({ length: n }, () => item[2](r, what, m))
  }
]

/**
 * Fields one after the other, named by `names` (space-separated; "-" for a
 * field read but not kept). Written from an object by name, or from an
 * array by position.
 */
export const record = (names: string, ...fields: Field[]): Field<any> => {
  const ns = names.split(' ')
  const at = (v: any, i: number): any => (Array.isArray(v) ? v[i] : v[ns[i]!])
  return [
    (v) => fields.reduce((n, f, i) => n + f[0](at(v, i)), 0),
    (w, v) => { fields.forEach((f, i) => f[1](w, at(v, i))) },
    (r, what) => {
      const m: Record<string, any> = {}
      fields.forEach((f, i) => {
        const x = f[2](r, `${what} ${ns[i]}`, m)
        if (ns[i] !== '-') m[ns[i]!] = x
      })
      return m
    }
  ]
}

/** Values laid out by fields in one allocation, every byte asserted written: a link frame on channel (from pool if given), or plain bytes (channel -1). */
export function encodeFields (fields: readonly Field[], values: readonly unknown[], channel = -1, pool?: FramePool): Buffer {
  const size = fields.reduce((n, f, i) => n + f[0](values[i]), 0)
  const w = channel < 0 ? byteWriter(Buffer.allocUnsafe(size)) : byteWriter(allocFrame(channel, size, pool), FRAME_HEADER_BYTES)
  fields.forEach((f, i) => f[1](w, values[i]))
  return w.done()
}

/** Where the reader is (the offset of a signature, of hashes); takes no bytes. */
export const OFFSET: Field<number> = [() => 0, () => {}, (r) => r.offset]

/** Bytes laid out by field (a record), every byte read, nothing left over; any failure is one error code. */
export function decodeFields (bytes: Uint8Array, code: ErrorCode, what: string, field: Field, start = 0): Record<string, any> {
  const r = byteReader(bytes, code, start)
  const m = field[2](r, what, {})
  r.done(what)
  return m
}

/** A message of a table: type byte, then its record. */
export function decodeTyped (payload: Uint8Array, code: ErrorCode, table: Readonly<Record<number, readonly [string, Field]>>): Record<string, any> {
  const t = table[payload[0]!] ?? byteReader(payload, code).fail(`type ${payload[0]}`)
  const m = decodeFields(payload, code, t[0], t[1], 1)
  m.type = t[0]
  return m
}
