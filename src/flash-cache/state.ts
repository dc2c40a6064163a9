// The cache's memory of the flash: what every block holds, where every live
// piece is (in least-recently-used order), and which small records must be
// kept when their block is compacted. No I/O here; every change keeps the
// per-block live byte counts exact, and the assertions say so.

import { assert } from '../errors'
import { recordBytesFor, TYPE_OBITUARY, TYPE_TOMBSTONE } from './format'

export type BlockState =
  /** Anchor slot (blocks 0 and 1). */
  | 'slot'
  /** Holds no segment we need: erased before use. */
  | 'free'
  /** The segment being appended to (at most one). */
  | 'open'
  /** A full or closed segment. */
  | 'sealed'
  /** Failed a program or erase; empty; never used again this session. */
  | 'bad'
  /** Failed its erase while holding a segment: ignored for good (an obituary says so). */
  | 'dead'
  /** Could not be read at open: neither used nor trusted this session. */
  | 'unknown'

/**
 * Where a piece is: one record, or two parts written back to back across a
 * block boundary (the first fills the end of a block, the second opens the
 * next segment). Flat fields, and record sizes left to recordBytesFor: this
 * is kept per piece.
 */
export interface PieceLoc {
  /** Body bytes of the whole piece. */
  length: number
  /** The first (or only) record, and its body length. */
  block: number
  offset: number
  length1: number
  /** The second part of a split piece; block2 = -1 for a whole one. */
  block2: number
  offset2: number
}

/** One record of a piece. */
export interface Part { block: number, offset: number, length: number }

export const wholeLoc = (p: Part): PieceLoc => ({ length: p.length, block: p.block, offset: p.offset, length1: p.length, block2: -1, offset2: 0 })

export function splitLoc (a: Part, b: Part): PieceLoc {
  assert(a.block !== b.block, 'a split piece spans two blocks')
  return { length: a.length + b.length, block: a.block, offset: a.offset, length1: a.length, block2: b.block, offset2: b.offset }
}

export function partsOf (loc: PieceLoc): Part[] {
  const first = { block: loc.block, offset: loc.offset, length: loc.length1 }
  return loc.block2 < 0 ? [first] : [first, { block: loc.block2, offset: loc.offset2, length: loc.length - loc.length1 }]
}

/**
 * A tombstone or an obituary: an empty-bodied record that stays live while
 * what it cancels may still be on flash. a and b are its record fields:
 * tombstone: where the deleted copy ends (seq, offset); obituary: the dead
 * segment's seq and block.
 */
export interface Extra {
  type: typeof TYPE_TOMBSTONE | typeof TYPE_OBITUARY
  block: number
  offset: number
  /** Tombstone: the deleted piece's key (hex). */
  key: string
  a: number
  b: number
}

export interface BlockInfo {
  /** Change only through CacheState.setState (it keeps the counts). */
  state: BlockState
  seq: number
  /** Where the next record goes (open) or where the records end (sealed). */
  end: number
  /** Bytes of live records (pieces and extras). */
  live: number
  /** Piece records here. */
  pieces: number
  extras: Set<Extra>
  /** Parts of the current checkpoint stored here (not live: never copied). */
  cpParts: number
  /** A program or erase failed here: once empty it becomes 'bad', not 'free'. */
  retired: boolean
  /** Bumped by every erase: a read that started before it must not trust what it got. */
  generation: number
}

export interface CacheState {
  readonly blocks: BlockInfo[]
  /** Live pieces by hex key; Map order is recency (first = least recently used). */
  readonly index: Map<string, PieceLoc>
  /** Obituaries by the dead block. */
  readonly deadByBlock: Map<number, Extra>
  /** Sum of live piece lengths. */
  readonly bytes: number
  readonly tombs: number
  readonly openBlock: number | null
  /** Bytes an empty-bodied record (tombstone, obituary) occupies. */
  readonly extraBytes: number
  setState (block: number, s: BlockState): void
  count (state: BlockState): number
  /** A new piece, most recently used. */
  addPiece (key: string, loc: PieceLoc): void
  /** The same piece at a new place (compaction); recency unchanged. */
  movePiece (key: string, loc: PieceLoc): void
  removePiece (key: string): PieceLoc | undefined
  touch (key: string): void
  /** Pieces with a part in a block (compaction, obituaries): a scan of the index, bounded by its size. */
  piecesIn (block: number): Array<[string, PieceLoc]>
  /** Where a piece ends in log order (its last part): tombstones cancel copies up to there. */
  lastPosition (loc: PieceLoc): { seq: number, offset: number }
  /** A tombstone (with the deleted piece's key) or an obituary, live at (block, offset); a and b as in Extra. */
  addExtra (type: Extra['type'], block: number, offset: number, a: number, b: number, key?: string): void
  removeExtra (e: Extra): void
  /**
   * Whether an extra must be kept. A tombstone: while any segment at or
   * before the deleted copy's may still hold a copy of the piece (a stale
   * duplicate left by a compaction that lost power before its erase);
   * conservative: any such segment counts, and a block we could not read
   * could hold anything. An obituary: while its dead block still holds the
   * dead segment.
   */
  extraLive (e: Extra): boolean
  /** The sealed segment with the lowest seq (by: 'seq') or the fewest live bytes (by: 'live'), skipping `skip`. */
  sealed (by: 'seq' | 'live', skip?: Set<number>): number | null
  /** Forget everything a block held (after a successful erase, or at an obituary). */
  clearBlock (block: number): void
}

export function createState (blockCount: number, slotBlocks: number, programBytes: number): CacheState {
  const blocks: BlockInfo[] = Array.from({ length: blockCount }, () => ({ state: 'free', seq: 0, end: 0, live: 0, pieces: 0, extras: new Set(), cpParts: 0, retired: false, generation: 0 }))
  const index = new Map<string, PieceLoc>()
  const deadByBlock = new Map<number, Extra>()
  const counts: Record<BlockState, number> = { slot: 0, free: blockCount, open: 0, sealed: 0, bad: 0, dead: 0, unknown: 0 }
  const extraBytes = recordBytesFor(0, programBytes)
  let bytes = 0
  let tombs = 0
  let openBlock: number | null = null

  const setState = (block: number, s: BlockState): void => {
    const b = blocks[block]!
    counts[b.state]--
    counts[s]++
    b.state = s
    if (s === 'open') openBlock = block
    else if (openBlock === block) openBlock = null
    assert(counts.open <= 1, 'at most one open segment')
  }
  const account = (loc: PieceLoc, sign: 1 | -1): void => {
    for (const p of partsOf(loc)) {
      const b = blocks[p.block]!
      b.live += sign * recordBytesFor(p.length, programBytes)
      b.pieces += sign
      assert(b.live >= 0 && b.pieces >= 0, 'live bytes >= 0')
    }
  }
  const removePiece = (key: string): PieceLoc | undefined => {
    const loc = index.get(key)
    if (loc === undefined) return undefined
    index.delete(key)
    bytes -= loc.length
    account(loc, -1)
    return loc
  }
  const piecesIn = (block: number): Array<[string, PieceLoc]> => {
    const out: Array<[string, PieceLoc]> = []
    if (blocks[block]!.pieces === 0) return out
    for (const e of index) if (e[1].block === block || e[1].block2 === block) out.push(e)
    assert(out.length === blocks[block]!.pieces, 'part count = index')
    return out
  }
  const removeExtra = (e: Extra): void => {
    const b = blocks[e.block]!
    if (!b.extras.delete(e)) return
    b.live -= extraBytes
    if (e.type === TYPE_TOMBSTONE) tombs--
    else if (deadByBlock.get(e.b) === e) deadByBlock.delete(e.b)
  }
  for (let i = 0; i < slotBlocks; i++) setState(i, 'slot')

  return {
    blocks,
    index,
    deadByBlock,
    get bytes () { return bytes },
    get tombs () { return tombs },
    get openBlock () { return openBlock },
    extraBytes,
    setState,
    count: (s) => counts[s],
    addPiece (key, loc) {
      assert(!index.has(key), 'piece added twice')
      index.set(key, loc)
      bytes += loc.length
      account(loc, 1)
    },
    movePiece (key, loc) {
      const old = index.get(key)
      assert(old?.length === loc.length, 'moved piece same length')
      account(old!, -1)
      index.set(key, loc)
      account(loc, 1)
    },
    removePiece,
    touch (key) {
      const loc = index.get(key)
      if (loc === undefined) return
      index.delete(key)
      index.set(key, loc)
    },
    piecesIn,
    lastPosition: (loc) => loc.block2 < 0
      ? { seq: blocks[loc.block]!.seq, offset: loc.offset }
      : { seq: blocks[loc.block2]!.seq, offset: loc.offset2 },
    addExtra (type, block, offset, a, b, key = '') {
      const e = { type, block, offset, key, a, b }
      const info = blocks[block]!
      info.extras.add(e)
      info.live += extraBytes
      if (type === TYPE_TOMBSTONE) tombs++
      else deadByBlock.set(b, e)
    },
    removeExtra,
    extraLive (e) {
      if (e.type === TYPE_OBITUARY) return blocks[e.b]?.state === 'dead' && blocks[e.b]!.seq === e.a
      // A dead block whose obituary is not on flash yet will be replayed by a full scan.
      return counts.unknown > 0 || blocks.some((b, i) => (b.state === 'sealed' || b.state === 'open' || (b.state === 'dead' && !deadByBlock.has(i))) && b.seq <= e.a)
    },
    sealed (by, skip) {
      let best: number | null = null
      blocks.forEach((b, i) => {
        if (b.state === 'sealed' && skip?.has(i) !== true && (best === null || b[by] < blocks[best]![by])) best = i
      })
      return best
    },
    clearBlock (block) {
      const b = blocks[block]!
      for (const [key] of piecesIn(block)) removePiece(key)
      for (const e of [...b.extras]) removeExtra(e)
      assert(b.live === 0 && b.pieces === 0, 'cleared block empty')
      b.cpParts = 0
      b.end = 0
    }
  }
}
