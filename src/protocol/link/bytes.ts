// Bounds-checked reading and writing of fixed binary layouts. The reader
// checks the remaining length before every read and fails with the caller's
// error code; the writer asserts that an encoder filled exactly the bytes it
// allocated. On top of them, layouts as data: a Field knows a value's size,
// how to write it and how to read it back (with its bounds), and record()
// strings fields into a message. The link's control messages, the stream
// wire format and the stream meta are all tables of these.

import { CanopyError, assert, type ErrorCode } from '../../errors'
import { FRAME_HEADER_BYTES, allocFrame } from './frame'
import type { FramePool } from './pool'

export class ByteReader {
  readonly #buf: Uint8Array
  readonly #code: ErrorCode
  readonly #end: number
  #at: number

  constructor (buf: Uint8Array, code: ErrorCode, start = 0, end = buf.length) {
    this.#buf = buf
    this.#code = code
    this.#at = start
    this.#end = end
  }

  get offset (): number { return this.#at }
  get remaining (): number { return this.#end - this.#at }

  fail (message: string): never { throw new CanopyError(this.#code, message) }

  /** Where the next n bytes start; fails unless they are all there. */
  #take (n: number, what: string): number {
    if (n > this.#end - this.#at) this.fail(`${what}: short`)
    return (this.#at += n) - n
  }

  /** n (1..4) bytes, unsigned big-endian. */
  uint (n: number, what = 'field'): number {
    let at = this.#take(n, what)
    let v = 0
    while (n-- > 0) v = v * 256 + this.#buf[at++]!
    return v
  }

  u8 (what?: string): number { return this.uint(1, what) }
  u16 (what?: string): number { return this.uint(2, what) }
  u32 (what?: string): number { return this.uint(4, what) }

  /** A view (not a copy) of the next n bytes. */
  bytes (n: number, what = 'field'): Uint8Array {
    const at = this.#take(n, what)
    return this.#buf.subarray(at, at + n)
  }

  hex (n: number, what?: string): string { return Buffer.from(this.bytes(n, what)).toString('hex') }

  /** u8 length, then that many bytes of UTF-8 (at most max bytes, valid UTF-8 only). */
  text (max: number, what = 'text'): string {
    const n = this.u8(what)
    if (n > max) this.fail(`${what}: ${n} > ${max}`)
    const s = Buffer.from(this.bytes(n, what)).toString('utf8')
    if (Buffer.byteLength(s) !== n) this.fail(`${what}: bad UTF-8`)
    return s
  }

  /** Everything consumed: trailing bytes are an error. */
  done (what = 'message'): void {
    if (this.#at !== this.#end) this.fail(`${what}: trailing bytes`)
  }
}

export class ByteWriter {
  #at: number

  constructor (readonly buf: Buffer, start = 0) { this.#at = start }

  get offset (): number { return this.#at }

  /** n (1..4) bytes, unsigned big-endian; values outside the field's range are clamped to it. */
  uint (n: number, v: number): this {
    this.buf.writeUIntBE(Math.max(0, Math.min(256 ** n - 1, Math.round(v))), this.#at, n)
    this.#at += n
    return this
  }

  u8 (v: number): this { return this.uint(1, v) }
  u16 (v: number): this { return this.uint(2, v) }
  u32 (v: number): this { return this.uint(4, v) }
  bytes (b: Uint8Array): this { this.buf.set(b, this.#at); this.#at += b.length; return this }
  hex (h: string, n: number): this {
    const b = Buffer.from(h, 'hex')
    assert(b.length === n, 'hex size')
    return this.bytes(b)
  }

  text (s: string): this {
    const b = Buffer.from(s)
    assert(b.length <= 255, 'text size')
    return this.u8(b.length).bytes(b)
  }

  /** Assert the encoder wrote exactly the bytes it allocated. */
  done (): Buffer {
    assert(this.#at === this.buf.length, 'encoded size')
    return this.buf
  }
}

export const textBytes = (s: string): number => 1 + Buffer.byteLength(s)

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
export const hexId = (n: number): Field<string | undefined> => [() => n, (w, v) => w.hex(v ?? '00'.repeat(n), n), (r, what) => r.hex(n, what)]

/** u8 length + UTF-8, at most max bytes, matching pattern; a longer value is written as "". */
export const text = (max: number, pattern: RegExp): Field<string> => {
  const fit = (v: string): string => (textBytes(v) > max + 1 ? '' : v)
  return [(v) => textBytes(fit(v)), (w, v) => w.text(fit(v)), (r, what) => {
    const s = r.text(max, what)
    if (!pattern.test(s)) r.fail(`${what}: odd characters`)
    return s
  }]
}

/** u16 length, then at most max bytes (a copy when read). */
export const blob = (max: number): Field<Uint8Array> => [(v) => 2 + v.length, (w, v) => w.u16(v.length).bytes(v), (r, what) => {
  const n = r.u16(what)
  if (n > max) r.fail(`${what}: ${n} > ${max}`)
  return Buffer.from(r.bytes(n, what))
}]

/** u8 count (min..max; the first max are written), then the items. */
export const list = <T>(max: number, item: Field<T>, min = 0): Field<readonly T[]> => [
  (vs) => vs.slice(0, max).reduce((n, v) => n + item[0](v), 1),
  (w, vs) => { w.u8(Math.min(max, vs.length)); for (const v of vs.slice(0, max)) item[1](w, v) },
  (r, what, m) => {
    const n = r.u8(what)
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
  const w = channel < 0 ? new ByteWriter(Buffer.allocUnsafe(size)) : new ByteWriter(allocFrame(channel, size, pool), FRAME_HEADER_BYTES)
  fields.forEach((f, i) => f[1](w, values[i]))
  return w.done()
}

/** Where the reader is (the offset of a signature, of hashes); takes no bytes. */
export const OFFSET: Field<number> = [() => 0, () => {}, (r) => r.offset]

/** Bytes laid out by field (a record), every byte read, nothing left over; any failure is one error code. */
export function decodeFields (bytes: Uint8Array, code: ErrorCode, what: string, field: Field, start = 0): Record<string, any> {
  const r = new ByteReader(bytes, code, start)
  const m = field[2](r, what, {})
  r.done(what)
  return m
}

/** A message of a table: type byte, then its record. */
export function decodeTyped (payload: Uint8Array, code: ErrorCode, table: Readonly<Record<number, readonly [string, Field]>>): Record<string, any> {
  const t = table[payload[0]!] ?? new ByteReader(payload, code).fail(`type ${payload[0]}`)
  const m = decodeFields(payload, code, t[0], t[1], 1)
  m.type = t[0]
  return m
}
