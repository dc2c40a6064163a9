// The cache's memory of the flash: what every block holds, where every live
// piece is (in least-recently-used order), and which small records must be
// kept when their block is compacted. No I/O here; every change keeps the
// per-block live byte counts exact, and the assertions say so.

import { assert } from '../errors'

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
 * next segment). Flat fields rather than a list: this is kept per piece.
 */
export interface PieceLoc {
  /** Body bytes of the whole piece. */
  length: number
  /** The first (or only) record. */
  block: number
  offset: number
  length1: number
  recordBytes: number
  /** The second part of a split piece; block2 = -1 for a whole one. */
  block2: number
  offset2: number
  recordBytes2: number
}

export interface Part { block: number, offset: number, length: number, recordBytes: number }

export const wholeLoc = (p: Part): PieceLoc =>
  ({ length: p.length, block: p.block, offset: p.offset, length1: p.length, recordBytes: p.recordBytes, block2: -1, offset2: 0, recordBytes2: 0 })

export function splitLoc (a: Part, b: Part): PieceLoc {
  assert(a.block !== b.block, 'the parts of a split piece are in two blocks')
  return { length: a.length + b.length, block: a.block, offset: a.offset, length1: a.length, recordBytes: a.recordBytes, block2: b.block, offset2: b.offset, recordBytes2: b.recordBytes }
}

export function partsOf (loc: PieceLoc): Part[] {
  const first = { block: loc.block, offset: loc.offset, length: loc.length1, recordBytes: loc.recordBytes }
  if (loc.block2 < 0) return [first]
  return [first, { block: loc.block2, offset: loc.offset2, length: loc.length - loc.length1, recordBytes: loc.recordBytes2 }]
}

/** A tombstone or an obituary: small records that stay live while what they cancel may still be on flash. */
export interface Extra {
  kind: 'tomb' | 'dead'
  block: number
  offset: number
  recordBytes: number
  /** tomb: the deleted piece's key. */
  key: string
  /** tomb: where the deleted copy was (seq, offset); dead: the dead segment's seq and block. */
  targetSeq: number
  targetOffset: number
  deadBlock: number
}

export class BlockInfo {
  /** Change only through CacheState.setState (it keeps the counts). */
  state: BlockState = 'free'
  seq = 0
  /** Where the next record goes (open) or where the records end (sealed). */
  end = 0
  /** Bytes of live records (pieces and extras). */
  live = 0
  /** Pieces located here. */
  pieces = 0
  readonly extras = new Set<Extra>()
  /** Parts of the current checkpoint stored here (not live: never copied). */
  checkpointParts = 0
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
  private readonly counts: Record<BlockState, number> = { slot: 0, free: 0, open: 0, sealed: 0, bad: 0, dead: 0, unknown: 0 }

  constructor (blockCount: number, slotBlocks: number) {
    this.blocks = Array.from({ length: blockCount }, () => new BlockInfo())
    this.counts.free = blockCount
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
    assert(old !== undefined && old.length === loc.length, 'moved piece exists with the same length')
    this.account(old, -1)
    this.index.set(key, loc)
    this.account(loc, 1)
  }

  removePiece (key: string): PieceLoc | undefined {
    const loc = this.index.get(key)
    if (loc === undefined) return undefined
    this.index.delete(key)
    this.bytes -= loc.length
    this.account(loc, -1)
    assert(this.bytes >= 0, 'stored bytes never negative')
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
      b.live += sign * p.recordBytes
      b.pieces += sign
      assert(b.live >= 0 && b.pieces >= 0, 'block live bytes never negative')
    }
  }

  // ---- tombstones and obituaries -----------------------------------------------------

  addExtra (e: Extra): void {
    const b = this.blocks[e.block]!
    b.extras.add(e)
    b.live += e.recordBytes
    if (e.kind === 'tomb') this.tombs++
    else this.deadByBlock.set(e.deadBlock, e)
  }

  removeExtra (e: Extra): void {
    const b = this.blocks[e.block]!
    if (!b.extras.delete(e)) return
    b.live -= e.recordBytes
    assert(b.live >= 0, 'block live bytes never negative')
    if (e.kind === 'tomb') this.tombs--
    else if (this.deadByBlock.get(e.deadBlock) === e) this.deadByBlock.delete(e.deadBlock)
  }

  /**
   * A tombstone must be kept while any segment at or before the deleted copy's
   * may still hold a copy of the piece (a stale duplicate left by a compaction
   * that lost power before its erase). Conservative: any such segment counts;
   * a block we could not read could hold anything.
   */
  tombLive (e: Extra): boolean {
    if (this.counts.unknown > 0) return true
    for (let i = 0; i < this.blocks.length; i++) {
      const b = this.blocks[i]!
      // A dead block whose obituary is not on flash yet will be replayed by a full scan.
      const onFlash = b.state === 'sealed' || b.state === 'open' || (b.state === 'dead' && !this.deadByBlock.has(i))
      if (onFlash && b.seq <= e.targetSeq) return true
    }
    return false
  }

  /** An obituary is kept while its dead block still holds the dead segment. */
  deadLive (e: Extra): boolean {
    const b = this.blocks[e.deadBlock]
    return b !== undefined && b.state === 'dead' && b.seq === e.targetSeq
  }

  extraLive (e: Extra): boolean { return e.kind === 'tomb' ? this.tombLive(e) : this.deadLive(e) }

  // ---- blocks --------------------------------------------------------------------------

  count (state: BlockState): number { return this.counts[state] }

  /** The oldest segment on flash (compacted first when tombstones pile up). */
  oldestSealed (): number | null {
    let best: number | null = null
    this.blocks.forEach((b, i) => {
      if (b.state === 'sealed' && (best === null || b.seq < this.blocks[best]!.seq)) best = i
    })
    return best
  }

  /** The sealed segment with the fewest live bytes (greedy: least copying per block freed). */
  leastLive (): number | null {
    let best: number | null = null
    this.blocks.forEach((b, i) => {
      if (b.state === 'sealed' && (best === null || b.live < this.blocks[best]!.live)) best = i
    })
    return best
  }

  /** Forget everything a block held (after a successful erase, or at an obituary). */
  clearBlock (block: number): void {
    const b = this.blocks[block]!
    for (const [key] of this.piecesIn(block)) this.removePiece(key)
    for (const e of [...b.extras]) this.removeExtra(e)
    assert(b.live === 0 && b.pieces === 0, 'a cleared block holds nothing live')
    b.checkpointParts = 0
    b.end = 0
  }
}
