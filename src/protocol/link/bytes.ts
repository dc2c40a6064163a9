// Bounds-checked reading and writing of fixed binary layouts. The reader
// checks the remaining length before every read and fails with the caller's
// error code; the writer asserts that an encoder filled exactly the bytes it
// allocated. Used by the link handshake and the stream wire format.

import { CanopyError, assert, type ErrorCode } from '../../errors'

export class ByteReader {
  private at: number

  constructor (private readonly buf: Uint8Array, private readonly code: ErrorCode, start = 0, private readonly end = buf.length) {
    this.at = start
  }

  get offset (): number { return this.at }
  get remaining (): number { return this.end - this.at }

  fail (message: string): never { throw new CanopyError(this.code, message) }

  private need (n: number, what: string): void {
    if (n > this.end - this.at) this.fail(`${what}: needs ${n} bytes, ${this.end - this.at} left`)
  }

  u8 (what: string): number { this.need(1, what); return this.buf[this.at++]! }

  u16 (what: string): number {
    this.need(2, what)
    const v = (this.buf[this.at]! << 8) | this.buf[this.at + 1]!
    this.at += 2
    return v
  }

  u32 (what: string): number {
    this.need(4, what)
    const b = this.buf
    const v = ((b[this.at]! << 24) >>> 0) + (b[this.at + 1]! << 16) + (b[this.at + 2]! << 8) + b[this.at + 3]!
    this.at += 4
    return v
  }

  /** A view (not a copy) of the next n bytes. */
  bytes (n: number, what: string): Uint8Array {
    this.need(n, what)
    const v = this.buf.subarray(this.at, this.at + n)
    this.at += n
    return v
  }

  hex (n: number, what: string): string { return Buffer.from(this.bytes(n, what)).toString('hex') }

  /** u8 length, then that many bytes of UTF-8 (at most max bytes, valid UTF-8 only). */
  text (max: number, what: string): string {
    const n = this.u8(`${what} length`)
    if (n > max) this.fail(`${what}: ${n} bytes exceeds ${max}`)
    const raw = this.bytes(n, what)
    const s = Buffer.from(raw).toString('utf8')
    if (Buffer.byteLength(s) !== n) this.fail(`${what}: not valid UTF-8`)
    return s
  }

  /** Everything consumed: trailing bytes are an error. */
  done (what: string): void {
    if (this.at !== this.end) this.fail(`${what}: ${this.end - this.at} trailing bytes`)
  }
}

export class ByteWriter {
  private at: number

  constructor (readonly buf: Buffer, start = 0) { this.at = start }

  get offset (): number { return this.at }

  u8 (v: number): this { this.buf[this.at++] = v & 0xff; return this }
  u16 (v: number): this { this.buf.writeUInt16BE(v, this.at); this.at += 2; return this }
  u32 (v: number): this { this.buf.writeUInt32BE(v >>> 0, this.at); this.at += 4; return this }
  bytes (b: Uint8Array): this { this.buf.set(b, this.at); this.at += b.length; return this }
  hex (h: string, n: number): this {
    const b = Buffer.from(h, 'hex')
    assert(b.length === n, `hex field of ${n} bytes`)
    return this.bytes(b)
  }

  text (s: string): this {
    const b = Buffer.from(s, 'utf8')
    assert(b.length <= 255, 'text field fits a u8 length')
    return this.u8(b.length).bytes(b)
  }

  /** Assert the encoder wrote exactly the bytes it allocated. */
  done (): Buffer {
    assert(this.at === this.buf.length, `encoder wrote ${this.at} of ${this.buf.length} bytes`)
    return this.buf
  }
}

export const textBytes = (s: string): number => 1 + Buffer.byteLength(s, 'utf8')
