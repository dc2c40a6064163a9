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

/** One coded error for every way untrusted bytes can be wrong: detail.reason says which, the message what. */
export function invalid (reason: string, what = ''): CanopyError {
  return new CanopyError('DECODE_INVALID', `${reason}${what === '' ? '' : ': '}${what}`, { detail: { reason } })
}

class Scanner {
  pos = 0
  items = 0
  constructor (readonly b: Uint8Array, readonly limits: ScanLimits) {}

  /** The head at pos (RFC 8949 §3): major type, additional info and argument, after bounds checks. */
  head (): { major: number, ai: number, arg: number } {
    const { b, pos } = this
    if (pos >= b.length) throw invalid('truncated')
    const major = b[pos]! >> 5
    const ai = b[pos]! & 0x1f
    this.pos++
    if (++this.items > this.limits.itemsMax) throw invalid('items', `over ${this.limits.itemsMax}`)
    if (ai < 24) return { major, ai, arg: ai }
    if (ai > 27) throw invalid(ai === 31 ? 'indefinite' : 'reserved', `additional info ${ai}`)
    const n = 1 << (ai - 24) // 1, 2, 4 or 8 bytes follow
    if (b.length - this.pos < n) throw invalid('truncated')
    let arg = 0
    for (let i = 0; i < n; i++) arg = arg * 256 + b[this.pos + i]!
    // A float64 keeps its bits (arg is not used for it); an integer or length must stay exact in a JS number.
    if (major !== 7 && arg > Number.MAX_SAFE_INTEGER) throw invalid('range', 'above 2^53')
    this.pos += n
    return { major, ai, arg }
  }

  /** Skip arg bytes of a string, checking they are there (and, for text, valid UTF-8); returns the text. */
  bytes (arg: number, text: boolean): string {
    if (arg > this.b.length - this.pos) throw invalid('truncated')
    const at = this.pos
    this.pos += arg
    if (!text) return ''
    try {
      return utf8.decode(this.b.subarray(at, this.pos))
    } catch {
      throw invalid('utf8')
    }
  }

  item (depth: number): void {
    const { limits } = this
    if (depth > limits.depthMax) throw invalid('depth', `over ${limits.depthMax}`)
    const { major, ai, arg } = this.head()
    if (major === 2 || major === 3) this.bytes(arg, major === 3)
    else if (major === 4 || major === 5) {
      // A map entry is two items of at least one byte each.
      if (arg > limits.containerCountMax) throw invalid('container', `${arg} entries`)
      if (arg * (major - 3) > this.b.length - this.pos) throw invalid('truncated')
      const seen = new Set<string>()
      for (let i = 0; i < arg; i++) {
        if (major === 5) this.key(seen, depth)
        this.item(depth + 1)
      }
    } else if (major === 6) {
      if (limits.allowTags?.has(arg) !== true) throw invalid('tag', String(arg))
      this.item(depth + 1)
    } else if (major === 7 && !(ai >= 20 && ai <= 22) && !(ai >= 25 && ai <= 27 && limits.allowFloats === true)) {
      // Only false, true, null; floats when allowed.
      throw invalid('simple', String(ai))
    }
  }

  /** Keys are unsigned integers or text, each at most once (duplicate keys are a parser-differential hazard). */
  key (seen: Set<string>, depth: number): void {
    const keyMajor = (this.b[this.pos] ?? 0xff) >> 5
    if (keyMajor !== 0 && keyMajor !== 3) throw invalid('key', 'not a uint or text')
    if (depth + 1 > this.limits.depthMax) throw invalid('depth', `over ${this.limits.depthMax}`)
    const { arg } = this.head()
    // cbor-x turns integer keys into their decimal text, so 1 and "1" are the same key.
    const key = keyMajor === 3 ? this.bytes(arg, true) : String(arg)
    if (key === '__proto__') throw invalid('key', key)
    if (seen.has(key)) throw invalid('duplicate', 'map key')
    seen.add(key)
  }
}

/** Throws DECODE_INVALID unless bytes hold exactly one well-formed item within the limits. */
export function scanCbor (bytes: Uint8Array, limits: ScanLimits): void {
  if (bytes.length === 0) throw invalid('empty')
  if (bytes.length > limits.bytesMax) throw invalid('size', `${bytes.length} bytes`)
  const s = new Scanner(bytes, limits)
  s.item(0)
  if (s.pos !== bytes.length) throw invalid('trailing', `${bytes.length - s.pos} bytes`)
}
