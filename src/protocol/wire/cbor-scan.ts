// A structural pre-scan of untrusted CBOR (RFC 8949) that builds no values:
// it walks the item heads, checks every length against the bytes left before
// moving on, and enforces the bounds cbor-x lacks (nesting depth, item count,
// container size, no indefinite lengths, tags only from an allowlist, no
// floats or odd simple values, map keys unique text/uint, strict UTF-8).
// Linear in the input; recursion depth is bounded by depthMax.

import { CanopyError } from '../../errors'

export interface ScanLimits {
  bytesMax: number
  depthMax: number
  itemsMax: number
  /** Elements of one array, entries of one map. */
  containerCountMax: number
  /** Tag numbers allowed (none by default: the wire format uses no tags). */
  allowTags?: ReadonlySet<number>
  /** Half/single/double floats (off: our formats are integer-only). */
  allowFloats?: boolean
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** One coded error for every way untrusted bytes can be wrong (reason in detail). */
export function invalid (reason: string, message: string): CanopyError {
  return new CanopyError('DECODE_INVALID', message, { detail: { reason } })
}

class Scanner {
  pos = 0
  items = 0
  constructor (readonly b: Uint8Array, readonly limits: ScanLimits) {}

  /** The argument of the head at pos (RFC 8949 §3): its value, after bounds checks. */
  head (): { major: number, ai: number, arg: number } {
    const b = this.b
    if (this.pos >= b.length) throw invalid('truncated', 'CBOR ends inside an item')
    const ib = b[this.pos++]!
    const major = ib >> 5
    const ai = ib & 0x1f
    if (++this.items > this.limits.itemsMax) throw invalid('items', `more than ${this.limits.itemsMax} CBOR items`)
    if (ai < 24) return { major, ai, arg: ai }
    if (ai > 27) throw invalid(ai === 31 ? 'indefinite' : 'reserved', ai === 31 ? 'indefinite lengths are not accepted' : `reserved CBOR additional info ${ai}`)
    const n = 1 << (ai - 24) // 1, 2, 4 or 8 bytes follow
    if (b.length - this.pos < n) throw invalid('truncated', 'CBOR ends inside an item head')
    let arg = 0
    if (n === 8) {
      const hi = (b[this.pos]! * 2 ** 24) + ((b[this.pos + 1]! << 16) | (b[this.pos + 2]! << 8) | b[this.pos + 3]!)
      const lo = (b[this.pos + 4]! * 2 ** 24) + ((b[this.pos + 5]! << 16) | (b[this.pos + 6]! << 8) | b[this.pos + 7]!)
      // A float64 keeps its bits; an integer or length must stay exact in a JS number.
      if (major !== 7 && hi >= 2 ** 21) throw invalid('range', 'a CBOR integer or length above 2^53')
      arg = hi * 2 ** 32 + lo
    } else {
      for (let i = 0; i < n; i++) arg = arg * 256 + b[this.pos + i]!
    }
    this.pos += n
    return { major, ai, arg }
  }

  item (depth: number): void {
    if (depth > this.limits.depthMax) throw invalid('depth', `CBOR nested deeper than ${this.limits.depthMax}`)
    const { major, ai, arg } = this.head()
    const left = this.b.length - this.pos
    switch (major) {
      case 0: case 1:
        return
      case 2:
        if (arg > left) throw invalid('truncated', 'a byte string runs past the end')
        this.pos += arg
        return
      case 3:
        if (arg > left) throw invalid('truncated', 'a text string runs past the end')
        try {
          utf8.decode(this.b.subarray(this.pos, this.pos + arg))
        } catch {
          throw invalid('utf8', 'a text string is not valid UTF-8')
        }
        this.pos += arg
        return
      case 4:
        if (arg > this.limits.containerCountMax) throw invalid('container', `an array of ${arg} items (max ${this.limits.containerCountMax})`)
        if (arg > left) throw invalid('truncated', 'an array longer than the bytes left')
        for (let i = 0; i < arg; i++) this.item(depth + 1)
        return
      case 5:
        this.map(arg, left, depth)
        return
      case 6:
        if (this.limits.allowTags?.has(arg) !== true) throw invalid('tag', `CBOR tag ${arg} is not accepted`)
        this.item(depth + 1)
        return
      default: // 7: simple values and floats
        if (ai === 20 || ai === 21 || ai === 22) return // false, true, null
        if (ai >= 25 && ai <= 27 && this.limits.allowFloats === true) return
        throw invalid('simple', ai >= 25 && ai <= 27 ? 'floats are not accepted' : `CBOR simple value ${ai === 24 ? 'ext' : ai} is not accepted`)
    }
  }

  /** Keys are unsigned integers or text, each at most once (duplicate keys are a parser-differential hazard). */
  map (count: number, left: number, depth: number): void {
    if (count > this.limits.containerCountMax) throw invalid('container', `a map of ${count} entries (max ${this.limits.containerCountMax})`)
    if (count * 2 > left) throw invalid('truncated', 'a map longer than the bytes left')
    const seen = new Set<string>()
    for (let i = 0; i < count; i++) {
      const first = this.b[this.pos]
      const keyMajor = first === undefined ? -1 : first >> 5
      if (keyMajor !== 0 && keyMajor !== 3) throw invalid('key', 'map keys must be unsigned integers or text')
      if (depth + 1 > this.limits.depthMax) throw invalid('depth', `CBOR nested deeper than ${this.limits.depthMax}`)
      const { arg } = this.head()
      // cbor-x turns integer keys into their decimal text, so 1 and "1" are the same key.
      let key = String(arg)
      if (keyMajor === 3) {
        if (arg > this.b.length - this.pos) throw invalid('truncated', 'a map key runs past the end')
        try { key = utf8.decode(this.b.subarray(this.pos, this.pos + arg)) } catch { throw invalid('utf8', 'a map key is not valid UTF-8') }
        this.pos += arg
        if (key === '__proto__') throw invalid('key', 'the map key __proto__ is not accepted')
      }
      if (seen.has(key)) throw invalid('duplicate', 'a map key appears twice')
      seen.add(key)
      this.item(depth + 1)
    }
  }
}

/** Throws DECODE_INVALID unless bytes hold exactly one well-formed item within the limits. */
export function scanCbor (bytes: Uint8Array, limits: ScanLimits): void {
  if (bytes.length === 0) throw invalid('empty', 'no CBOR item')
  if (bytes.length > limits.bytesMax) throw invalid('size', `${bytes.length} bytes of CBOR (max ${limits.bytesMax})`)
  const s = new Scanner(bytes, limits)
  s.item(0)
  if (s.pos !== bytes.length) throw invalid('trailing', `${bytes.length - s.pos} bytes after the CBOR item`)
}
