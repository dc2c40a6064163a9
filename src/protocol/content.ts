// What resolution talks about: a piece of content, named by its content id
// (the SHA-256 a manifest gives it, 64 hex characters) or by its URL, and
// sets of piece indexes as sorted half-open ranges [first, end).

import { CanopyError } from '../errors'
import { CONTENT_URL_BYTES_MAX, PIECE_RANGES_COUNT_MAX } from '../limits'

/** A content id (64 lowercase hex) or an http(s) URL. */
export type ContentRef = string

/** Sorted, disjoint, non-adjacent, non-empty half-open ranges of piece indexes. */
export type PieceRanges = ReadonlyArray<readonly [number, number]>

export const PIECE_INDEX_END_MAX = 0xffff_ffff
const CONTENT_ID = /^[0-9a-f]{64}$/
const URL_START = /^https?:\/\/[^\s/]/i

export const isContentId = (c: string): boolean => CONTENT_ID.test(c)

/** A ContentRef from user or API text; INPUT_INVALID when it is neither. */
export function parseContentRef (text: string): ContentRef {
  const t = text.trim()
  if (CONTENT_ID.test(t.toLowerCase())) return t.toLowerCase()
  if (URL_START.test(t) && Buffer.byteLength(t) <= CONTENT_URL_BYTES_MAX && !/[\s]/.test(t)) return t
  throw new CanopyError('INPUT_INVALID', `content: a 64-hex id or an http(s) URL (≤ ${CONTENT_URL_BYTES_MAX} bytes)`)
}

/** Sorted and merged (adjacent and overlapping ranges joined, empty ones dropped). */
function mergeRanges (ranges: Iterable<readonly [number, number]>): Array<[number, number]> {
  const out: Array<[number, number]> = []
  for (const [a, b] of [...ranges].filter(([x, y]) => y > x).sort((x, y) => x[0] - y[0])) {
    const last = out[out.length - 1]
    if (last && a <= last[1]) last[1] = Math.max(last[1], b)
    else out.push([a, b])
  }
  return out
}

/** Ranges as given, sorted and merged; null when they hold more than PIECE_RANGES_COUNT_MAX after merging. */
export function normalizeRanges (ranges: Iterable<readonly [number, number]>): PieceRanges | null {
  const out = mergeRanges(ranges)
  return out.length > PIECE_RANGES_COUNT_MAX ? null : out
}

/** At most PIECE_RANGES_COUNT_MAX ranges: the first ones (an honest subset of a fragmented set). */
export const trimRanges = (ranges: PieceRanges): PieceRanges => mergeRanges(ranges).slice(0, PIECE_RANGES_COUNT_MAX)

/** Does `have` (null = all) contain every piece of `want` (null = all)? */
export function covers (have: PieceRanges | null, want: PieceRanges | null): boolean {
  if (!have) return true
  if (!want) return false // "all" of an unknown count: only a full holder covers it
  let i = 0
  for (const [a, b] of want) {
    let from = a
    while (from < b) {
      while (i < have.length && have[i]![1] <= from) i++
      const h = have[i]
      if (!h || h[0] > from) return false
      from = h[1]
    }
  }
  return true
}

/** Union of several sets (null = all wins); null also when the union has too many ranges to carry. */
export function unionRanges (sets: ReadonlyArray<PieceRanges | null>): PieceRanges | null {
  if (sets.some((s) => !s)) return null
  return normalizeRanges(sets.flatMap((s) => s as PieceRanges))
}

/** "0-9,20-29" (inclusive, as people write them) into ranges; INPUT_INVALID when malformed. */
export function parsePieceText (text: string): PieceRanges {
  const bad = (why: string): CanopyError => new CanopyError('INPUT_INVALID', `pieces: ${why} (ranges like 0-9,20)`)
  const parts = text.split(',').map((p) => p.trim()).filter((p) => p.length > 0)
  if (parts.length === 0 || parts.length > PIECE_RANGES_COUNT_MAX) throw bad(`1 to ${PIECE_RANGES_COUNT_MAX} ranges`)
  const out = normalizeRanges(parts.map((p): [number, number] => {
    const m = /^(\d{1,10})(?:-(\d{1,10}))?$/.exec(p)
    const first = Number(m?.[1])
    const last = Number(m?.[2] ?? m?.[1])
    if (!(first <= last && last < PIECE_INDEX_END_MAX)) throw bad(`"${p}"`)
    return [first, last + 1]
  }))
  if (!out) throw bad('too many')
  return out
}

export const formatPieceText = (r: PieceRanges | null): string =>
  !r ? 'all' : r.map(([a, b]) => (b - a === 1 ? `${a}` : `${a}-${b - 1}`)).join(',')

/** Do the two sets share a piece (null = all)? */
export function intersects (a: PieceRanges | null, b: PieceRanges | null): boolean {
  if (!a) return !b || b.length > 0
  if (!b) return a.length > 0
  let i = 0
  let j = 0
  while (i < a.length && j < b.length) {
    const [a0, a1] = a[i]!
    const [b0, b1] = b[j]!
    if (a0 < b1 && b0 < a1) return true
    if (a1 <= b1) i++
    else j++
  }
  return false
}
