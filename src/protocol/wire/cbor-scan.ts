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

/** Throws DECODE_INVALID unless bytes hold exactly one well-formed item within the limits. */
export function scanCbor (b: Uint8Array, limits: ScanLimits): void {
  let pos = 0
  let items = 0

  /** The head at pos (RFC 8949 §3): major type, additional info and argument, after bounds checks. */
  const head = (): { major: number, ai: number, arg: number } => {
    if (pos >= b.length) throw invalid('truncated')
    const major = b[pos]! >> 5
    const ai = b[pos++]! & 0x1f
    if (++items > limits.itemsMax) throw invalid('items')
    if (ai < 24) return { major, ai, arg: ai }
    if (ai > 27) throw invalid(ai === 31 ? 'indefinite' : 'reserved', `additional info ${ai}`)
    const n = 1 << (ai - 24) // 1, 2, 4 or 8 bytes follow
    if (b.length - pos < n) throw invalid('truncated')
    let arg = 0
    for (let i = 0; i < n; i++) arg = arg * 256 + b[pos++]!
    // A float64 keeps its bits (arg is not used for it); an integer or length must stay exact in a JS number.
    if (major !== 7 && arg > Number.MAX_SAFE_INTEGER) throw invalid('range', 'above 2^53')
    return { major, ai, arg }
  }

  /** Skip arg bytes of a string, checking they are there (and, for text, valid UTF-8); returns the text. */
  const bytes = (arg: number, text: boolean): string => {
    if (arg > b.length - pos) throw invalid('truncated')
    const at = pos
    pos += arg
    if (!text) return ''
    try {
      return utf8.decode(b.subarray(at, pos))
    } catch {
      throw invalid('utf8')
    }
  }

  /** Keys are unsigned integers or text, each at most once (duplicate keys are a parser-differential hazard). */
  const key = (seen: Set<string>, depth: number): void => {
    const keyMajor = (b[pos] ?? 0xff) >> 5
    if (keyMajor !== 0 && keyMajor !== 3) throw invalid('key', 'not a uint or text')
    if (depth + 1 > limits.depthMax) throw invalid('depth')
    const { arg } = head()
    // cbor-x turns integer keys into their decimal text, so 1 and "1" are the same key.
    const k = keyMajor === 3 ? bytes(arg, true) : String(arg)
    if (k === '__proto__') throw invalid('key', k)
    if (seen.has(k)) throw invalid('duplicate', 'map key')
    seen.add(k)
  }

  const item = (depth: number): void => {
    if (depth > limits.depthMax) throw invalid('depth')
    const { major, ai, arg } = head()
    if (major === 2 || major === 3) bytes(arg, major === 3)
    else if (major === 4 || major === 5) {
      // A map entry is two items of at least one byte each.
      if (arg > limits.containerCountMax) throw invalid('container', `${arg} entries`)
      if (arg * (major - 3) > b.length - pos) throw invalid('truncated')
      const seen = new Set<string>()
      for (let i = 0; i < arg; i++) {
        if (major === 5) key(seen, depth)
        item(depth + 1)
      }
    } else if (major === 6) {
      if (limits.allowTags?.has(arg) !== true) throw invalid('tag', String(arg))
      item(depth + 1)
    } else if (major === 7 && !(ai >= 20 && ai <= 22) && !(ai >= 25 && ai <= 27 && limits.allowFloats === true)) {
      // Only false, true, null; floats when allowed.
      throw invalid('simple', String(ai))
    }
  }

  if (b.length === 0) throw invalid('empty')
  if (b.length > limits.bytesMax) throw invalid('size', `${b.length} bytes`)
  item(0)
  if (pos !== b.length) throw invalid('trailing', `${b.length - pos} bytes`)
}
