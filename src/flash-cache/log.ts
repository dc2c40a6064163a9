// The append end of the log: one open segment at a time, records programmed
// (and read back) one after another, a fresh erased block when the open one is
// full. Two rules make recovery cheap and safe:
//
//  * nothing is durable until sync(): callers sync before they acknowledge and
//    before they erase anything a record was copied out of (recovery checks
//    every replayed record to its commit CRC, so unsynced records anywhere in
//    the tail are found, not trusted);
//  * a failed program leaves the rest of a block unknown: the block is sealed
//    and nothing more is appended to it (and it is retired if it is bad).

import { assert, CanopyError } from '../errors'
import { CACHE_ALLOCATE_ATTEMPTS_MAX, CACHE_RESERVE_BLOCKS, CACHE_SEQ_RESERVE_COUNT, CACHE_SLOT_BLOCKS } from '../limits'
import { classifyWriteError, type CacheDevice } from './device'
import { alignUp, allocRecord, encodeSegmentHeader, PiecePart, RECORD_HEADER_BYTES, RECORD_TRAILER_BYTES, recordBytesFor, RecordType, SEGMENT_HEADER_BYTES, stampRecord, type RecordTypeCode } from './format'
import { splitLoc, wholeLoc, type PieceLoc } from './state'
import type { CacheState } from './state'

export interface Placed { block: number, offset: number, recordBytes: number, seq: number }

export interface RecordSpec { type: RecordTypeCode, a?: number, b?: number, key?: Uint8Array }

/** Thrown when no erased block is left outside the reserve: the caller compacts or evicts. */
export const noFreeBlock = (): CanopyError =>
  new CanopyError('CACHE_FULL', 'no erased block left on the flash', { detail: { reason: 'no-free-block' } })

export const isNoFreeBlock = (err: unknown): boolean =>
  CanopyError.is(err, 'CACHE_FULL') && err.detail?.reason === 'no-free-block'

export class LogWriter {
  readonly segmentHeaderBytes: number
  readonly usableBytes: number
  /** The smallest first part worth splitting a piece for: a smaller end of a block stays unused. */
  readonly splitBytesMin: number
  /** Blocks found bad this session (failed program/erase or read-back). */
  badBlocksFound = 0
  /** Pieces written in two parts across a block boundary this session. */
  splitPieces = 0
  recordsSinceCheckpoint = 0
  bytesSinceCheckpoint = 0
  /** Segment numbers below this are durably reserved (see checkpoint.ts). */
  reservedUntil = 0
  /** Writes an anchor reserving numbers below `until` (set by the store: the checkpointer writes anchors). */
  reserve: ((until: number) => Promise<void>) | null = null
  private cursor = CACHE_SLOT_BLOCKS

  constructor (private readonly dev: CacheDevice, private readonly state: CacheState, public nextSeq: number) {
    const g = dev.geometry
    this.segmentHeaderBytes = alignUp(SEGMENT_HEADER_BYTES, g.programBytes)
    this.usableBytes = g.blockBytes - this.segmentHeaderBytes
    this.splitBytesMin = Math.max(g.programBytes, Math.floor(this.usableBytes / 16))
  }

  recordBytes (bodyLength: number): number { return recordBytesFor(bodyLength, this.dev.geometry.programBytes) }

  /** Where the next record would start: (seq, offset), for tombstones and checkpoints. */
  position (): { seq: number, offset: number } {
    const open = this.state.openBlock
    if (open === null) return { seq: this.nextSeq - 1, offset: this.dev.geometry.blockBytes }
    const b = this.state.blocks[open]!
    return { seq: b.seq, offset: b.end }
  }

  /** Can `recordBytes` be appended without touching the compaction reserve? */
  fits (recordBytes: number, reserve = CACHE_RESERVE_BLOCKS): boolean {
    const open = this.state.openBlock
    if (open !== null && this.state.blocks[open]!.end + recordBytes <= this.dev.geometry.blockBytes) return true
    return this.state.count('free') > reserve
  }

  /** Append one record. `built` is a record buffer from allocRecord already holding the body (saves a copy). */
  async append (spec: RecordSpec, body: Uint8Array, options: { useReserve?: boolean, built?: Buffer } = {}): Promise<Placed> {
    const g = this.dev.geometry
    const size = this.recordBytes(body.length)
    assert(size <= this.usableBytes, 'a record fits an empty segment')
    const record = options.built ?? allocRecord(body, g.programBytes)
    assert(record.length === size, 'a built record has the size of its body')
    for (let attempt = 0; attempt < CACHE_ALLOCATE_ATTEMPTS_MAX; attempt++) {
      let open = this.state.openBlock
      if (open === null || this.state.blocks[open]!.end + size > g.blockBytes) open = await this.openNew(options.useReserve === true)
      const info = this.state.blocks[open]!
      stampRecord(record, { ...spec, seq: info.seq, offset: info.end }, body.length)
      try {
        await this.dev.program(open, info.end, record)
      } catch (err) {
        this.writeFailed(err, open)
        continue
      }
      const placed = { block: open, offset: info.end, recordBytes: size, seq: info.seq }
      info.end += size
      this.recordsSinceCheckpoint++
      this.bytesSinceCheckpoint += size
      return placed
    }
    throw new CanopyError('CACHE_FULL', `could not place a record after ${CACHE_ALLOCATE_ATTEMPTS_MAX} attempts (bad blocks)`)
  }

  /**
   * A piece: one record when it fits the open segment; otherwise, when the
   * rest of the segment is worth it, two parts back to back (the first fills
   * the segment, the second opens the next), so power-of-two pieces do not
   * leave most of a power-of-two block unused.
   */
  async appendPiece (key: Buffer, body: Uint8Array, options: { useReserve?: boolean, built?: Buffer } = {}): Promise<PieceLoc> {
    const g = this.dev.geometry
    const open = this.state.openBlock
    const room = open === null ? 0 : g.blockBytes - this.state.blocks[open]!.end
    const first = room - RECORD_HEADER_BYTES - RECORD_TRAILER_BYTES
    if (this.recordBytes(body.length) <= room || first < this.splitBytesMin || first >= body.length) {
      const p = await this.append({ type: RecordType.piece, key, a: body.length, b: PiecePart.whole }, body, options)
      return wholeLoc({ block: p.block, offset: p.offset, length: body.length, recordBytes: p.recordBytes })
    }
    const reserve = { useReserve: options.useReserve }
    const a = await this.append({ type: RecordType.piece, key, a: body.length, b: PiecePart.first }, body.subarray(0, first), reserve)
    if (a.offset + a.recordBytes !== g.blockBytes) {
      // A failed program moved the first part to a fresh segment: no boundary to span any more. That
      // first part stays behind as dead bytes (replay drops a first part not followed by its second).
      const p = await this.append({ type: RecordType.piece, key, a: body.length, b: PiecePart.whole }, body, options)
      return wholeLoc({ block: p.block, offset: p.offset, length: body.length, recordBytes: p.recordBytes })
    }
    const b = await this.append({ type: RecordType.piece, key, a: body.length, b: PiecePart.second }, body.subarray(first), reserve)
    this.splitPieces++
    return splitLoc({ block: a.block, offset: a.offset, length: first, recordBytes: a.recordBytes }, { block: b.block, offset: b.offset, length: body.length - first, recordBytes: b.recordBytes })
  }

  /** Make everything written so far durable. A failed sync seals the open block: its tail is no longer known. */
  async sync (): Promise<void> {
    if (!this.dev.dirty) return
    try {
      await this.dev.sync()
    } catch (err) {
      if (this.state.openBlock !== null) this.seal(this.state.openBlock)
      throw err
    }
  }

  seal (block: number): void {
    if (this.state.blocks[block]!.state === 'open') this.state.setState(block, 'sealed')
  }

  /** A failed program: the block's tail is unknown, so it is sealed; a bad block is also retired. */
  private writeFailed (err: unknown, block: number): void {
    const kind = classifyWriteError(err)
    if (kind === 'fatal') throw err
    this.seal(block)
    if (kind === 'no-space') throw err
    if (!this.state.blocks[block]!.retired) this.badBlocksFound++
    this.state.blocks[block]!.retired = true
  }

  private async openNew (useReserve: boolean): Promise<number> {
    if (this.state.openBlock !== null) this.seal(this.state.openBlock)
    const g = this.dev.geometry
    // Reserve first: a segment number must be durably reserved before any block carries it.
    if (this.nextSeq + CACHE_ALLOCATE_ATTEMPTS_MAX >= this.reservedUntil) {
      assert(this.reserve !== null, 'the log can reserve segment numbers')
      await this.reserve(this.nextSeq + CACHE_ALLOCATE_ATTEMPTS_MAX + CACHE_SEQ_RESERVE_COUNT)
    }
    for (let attempt = 0; attempt < CACHE_ALLOCATE_ATTEMPTS_MAX; attempt++) {
      const block = this.pickFree(useReserve)
      const info = this.state.blocks[block]!
      info.generation++
      try {
        await this.dev.erase(block)
        const seq = this.nextSeq++
        await this.dev.program(block, 0, encodeSegmentHeader(seq, block, g.blockBytes, g.programBytes))
        info.seq = seq
        info.end = this.segmentHeaderBytes
        info.checkpointParts = 0
        assert(info.live === 0 && info.pieces === 0 && info.extras.size === 0, 'a new segment starts empty')
        this.state.setState(block, 'open')
        return block
      } catch (err) {
        const kind = classifyWriteError(err)
        if (kind !== 'bad-block') throw err
        this.state.setState(block, 'bad')
        info.retired = true
        this.badBlocksFound++
      }
    }
    throw new CanopyError('CACHE_FULL', `no good block after ${CACHE_ALLOCATE_ATTEMPTS_MAX} attempts`)
  }

  /** Round robin over free blocks: erases spread over the whole device (wear levelling without counters). */
  private pickFree (useReserve: boolean): number {
    const free = this.state.count('free')
    if (free <= (useReserve ? 0 : CACHE_RESERVE_BLOCKS)) throw noFreeBlock()
    const n = this.state.blocks.length
    for (let i = 0; i < n; i++) {
      const b = (this.cursor + i) % n
      if (this.state.blocks[b]!.state === 'free') {
        this.cursor = b + 1
        return b
      }
    }
    throw noFreeBlock()
  }
}
