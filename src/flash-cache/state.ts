// The cache's memory of the flash: what every block holds, where every live
// piece is (in least-recently-used order), and which small records must be
// kept when their block is compacted. No I/O here; every change keeps the
// per-block live byte counts exact, and the assertions say so.

import { assert } from '../errors'
import { recordBytesFor, RecordType } from './format'

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
  assert(a.block !== b.block, 'the parts of a split piece are in two blocks')
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
  type: typeof RecordType.tombstone | typeof RecordType.obituary
  block: number
  offset: number
  /** Tombstone: the deleted piece's key (hex). */
  key: string
  a: number
  b: number
}

export class BlockInfo {
  /** Change only through CacheState.setState (it keeps the counts). */
  state: BlockState = 'free'
  seq = 0
  /** Where the next record goes (open) or where the records end (sealed). */
  end = 0
  /** Bytes of live records (pieces and extras). */
  live = 0
  /** Piece records here. */
  pieces = 0
  readonly extras = new Set<Extra>()
  /** Parts of the current checkpoint stored here (not live: never copied). */
  cpParts = 0
  /** A program or erase failed here: once empty it becomes 'bad', not 'free'. */
  retired = false
  /** Bumped by every erase: a read that started before it must not trust what it got. */
  generation = 0
}

export class CacheState {
  readonly blocks: BlockInfo[]
  /** Live pieces by hex key; Map order is recency (first = least recently used). */
  readonly index = new Map<string, PieceLoc>()
  /** Sum of live piece lengths. */
  bytes = 0
  tombs = 0
  /** Obituaries by the dead block. */
  readonly deadByBlock = new Map<number, Extra>()
  openBlock: number | null = null
  /** Bytes an empty-bodied record (tombstone, obituary) occupies. */
  readonly extraBytes: number
  private readonly counts: Record<BlockState, number> = { slot: 0, free: 0, open: 0, sealed: 0, bad: 0, dead: 0, unknown: 0 }

  constructor (blockCount: number, slotBlocks: number, readonly programBytes: number) {
    this.blocks = Array.from({ length: blockCount }, () => new BlockInfo())
    this.counts.free = blockCount
    this.extraBytes = recordBytesFor(0, programBytes)
    for (let i = 0; i < slotBlocks; i++) this.setState(i, 'slot')
  }

  setState (block: number, s: BlockState): void {
    const b = this.blocks[block]!
    this.counts[b.state]--
    this.counts[s]++
    b.state = s
    if (s === 'open') this.openBlock = block
    else if (this.openBlock === block) this.openBlock = null
    assert(this.counts.open <= 1, 'at most one open segment')
  }

  count (state: BlockState): number { return this.counts[state] }

  // ---- pieces ----------------------------------------------------------------------

  /** A new piece, most recently used. */
  addPiece (key: string, loc: PieceLoc): void {
    assert(!this.index.has(key), 'piece added twice')
    this.index.set(key, loc)
    this.bytes += loc.length
    this.account(loc, 1)
  }

  /** The same piece at a new place (compaction); recency unchanged. */
  movePiece (key: string, loc: PieceLoc): void {
    const old = this.index.get(key)
    assert(old?.length === loc.length, 'moved piece exists with the same length')
    this.account(old!, -1)
    this.index.set(key, loc)
    this.account(loc, 1)
  }

  removePiece (key: string): PieceLoc | undefined {
    const loc = this.index.get(key)
    if (loc === undefined) return undefined
    this.index.delete(key)
    this.bytes -= loc.length
    this.account(loc, -1)
    return loc
  }

  touch (key: string): void {
    const loc = this.index.get(key)
    if (loc === undefined) return
    this.index.delete(key)
    this.index.set(key, loc)
  }

  /** Pieces with a part in a block (compaction, obituaries): a scan of the index, bounded by its size. */
  piecesIn (block: number): Array<[string, PieceLoc]> {
    const out: Array<[string, PieceLoc]> = []
    if (this.blocks[block]!.pieces === 0) return out
    for (const e of this.index) if (e[1].block === block || e[1].block2 === block) out.push(e)
    assert(out.length === this.blocks[block]!.pieces, 'per-block part count matches the index')
    return out
  }

  /** Where a piece ends in log order (its last part): tombstones cancel copies up to there. */
  lastPosition (loc: PieceLoc): { seq: number, offset: number } {
    return loc.block2 < 0
      ? { seq: this.blocks[loc.block]!.seq, offset: loc.offset }
      : { seq: this.blocks[loc.block2]!.seq, offset: loc.offset2 }
  }

  private account (loc: PieceLoc, sign: 1 | -1): void {
    for (const p of partsOf(loc)) {
      const b = this.blocks[p.block]!
      b.live += sign * recordBytesFor(p.length, this.programBytes)
      b.pieces += sign
      assert(b.live >= 0 && b.pieces >= 0, 'block live bytes never negative')
    }
  }

  // ---- tombstones and obituaries -----------------------------------------------------

  addExtra (e: Extra): void {
    const b = this.blocks[e.block]!
    b.extras.add(e)
    b.live += this.extraBytes
    if (e.type === RecordType.tombstone) this.tombs++
    else this.deadByBlock.set(e.b, e)
  }

  removeExtra (e: Extra): void {
    const b = this.blocks[e.block]!
    if (!b.extras.delete(e)) return
    b.live -= this.extraBytes
    assert(b.live >= 0, 'block live bytes never negative')
    if (e.type === RecordType.tombstone) this.tombs--
    else if (this.deadByBlock.get(e.b) === e) this.deadByBlock.delete(e.b)
  }

  /**
   * Whether an extra must be kept. A tombstone: while any segment at or
   * before the deleted copy's may still hold a copy of the piece (a stale
   * duplicate left by a compaction that lost power before its erase);
   * conservative: any such segment counts, and a block we could not read
   * could hold anything. An obituary: while its dead block still holds the
   * dead segment.
   */
  extraLive (e: Extra): boolean {
    if (e.type === RecordType.obituary) {
      const b = this.blocks[e.b]
      return b?.state === 'dead' && b.seq === e.a
    }
    if (this.counts.unknown > 0) return true
    return this.blocks.some((b, i) =>
      // A dead block whose obituary is not on flash yet will be replayed by a full scan.
      (b.state === 'sealed' || b.state === 'open' || (b.state === 'dead' && !this.deadByBlock.has(i))) && b.seq <= e.a)
  }

  // ---- blocks --------------------------------------------------------------------------

  /** The sealed segment with the lowest seq (by: 'seq') or the fewest live bytes (by: 'live'), skipping `skip`. */
  sealed (by: 'seq' | 'live', skip?: Set<number>): number | null {
    let best: number | null = null
    this.blocks.forEach((b, i) => {
      if (b.state === 'sealed' && skip?.has(i) !== true && (best === null || b[by] < this.blocks[best]![by])) best = i
    })
    return best
  }

  /** Forget everything a block held (after a successful erase, or at an obituary). */
  clearBlock (block: number): void {
    const b = this.blocks[block]!
    for (const [key] of this.piecesIn(block)) this.removePiece(key)
    for (const e of [...b.extras]) this.removeExtra(e)
    assert(b.live === 0 && b.pieces === 0, 'a cleared block holds nothing live')
    b.cpParts = 0
    b.end = 0
  }
}
