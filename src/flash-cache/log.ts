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
import { alignUp, allocRecord, encodeSegmentHeader, PiecePart, RECORD_HEADER_BYTES, RECORD_TRAILER_BYTES, recordBytesFor, RecordType, SEGMENT_HEADER_BYTES, stampRecord, type RecordFields } from './format'
import { splitLoc, wholeLoc, type CacheState, type PieceLoc } from './state'

export interface Placed { block: number, offset: number, recordBytes: number, seq: number }

export type RecordSpec = Omit<RecordFields, 'seq' | 'offset'>

/** Thrown when no erased block is left outside the reserve: the caller compacts or evicts. */
const noFreeBlock = (): CanopyError => new CanopyError('CACHE_FULL', 'no erased block left on the flash')

export class LogWriter {
  readonly headerBytes: number
  readonly usableBytes: number
  /** The smallest first part worth splitting a piece for: a smaller end of a block stays unused. */
  readonly splitBytesMin: number
  /** Blocks found bad this session (failed program/erase or read-back). */
  badBlocksFound = 0
  /** Pieces written in two parts across a block boundary this session. */
  splitPieces = 0
  /** Records and bytes appended since the last checkpoint. */
  cpRecords = 0
  cpBytes = 0
  /** Segment numbers below this are durably reserved (see checkpoint.ts). */
  reservedUntil = 0
  /** Writes an anchor reserving numbers below `until` (set by the store: the checkpointer writes anchors). */
  reserve: (until: number) => Promise<void> = async () => { throw new CanopyError('ASSERTION', 'the log cannot reserve segment numbers') }
  private cursor = CACHE_SLOT_BLOCKS

  constructor (private readonly dev: CacheDevice, private readonly state: CacheState, public nextSeq: number) {
    const g = dev.geometry
    this.headerBytes = alignUp(SEGMENT_HEADER_BYTES, g.programBytes)
    this.usableBytes = g.blockBytes - this.headerBytes
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

  /** Bytes left in the open segment. */
  private room (): number {
    const open = this.state.openBlock
    return open === null ? 0 : this.dev.geometry.blockBytes - this.state.blocks[open]!.end
  }

  /** Can `recordBytes` be appended without touching the compaction reserve? */
  fits (recordBytes: number): boolean {
    return recordBytes <= this.room() || this.state.count('free') > CACHE_RESERVE_BLOCKS
  }

  /** Append one record. `built` is a record buffer from allocRecord already holding the body (saves a copy). */
  async append (spec: RecordSpec, body: Uint8Array, useReserve = false, built?: Buffer): Promise<Placed> {
    const size = this.recordBytes(body.length)
    assert(size <= this.usableBytes, 'a record fits an empty segment')
    const record = built ?? allocRecord(body, this.dev.geometry.programBytes)
    for (let attempt = 0; attempt < CACHE_ALLOCATE_ATTEMPTS_MAX; attempt++) {
      const block = size <= this.room() ? this.state.openBlock! : await this.openNew(useReserve)
      const info = this.state.blocks[block]!
      const offset = info.end
      stampRecord(record, { ...spec, seq: info.seq, offset }, body.length)
      try {
        await this.dev.program(block, offset, record)
      } catch (err) {
        // The block's tail is unknown now: seal it; a bad block is also retired.
        const kind = classifyWriteError(err)
        if (kind === 'fatal') throw err
        this.seal(block)
        if (kind === 'no-space') throw err
        this.retire(block)
        continue
      }
      info.end += size
      this.cpRecords++
      this.cpBytes += size
      return { block, offset, recordBytes: size, seq: info.seq }
    }
    throw new CanopyError('CACHE_FULL', `could not place a record after ${CACHE_ALLOCATE_ATTEMPTS_MAX} attempts (bad blocks)`)
  }

  /**
   * A piece: one record when it fits the open segment; otherwise, when the
   * rest of the segment is worth it, two parts back to back (the first fills
   * the segment, the second opens the next), so power-of-two pieces do not
   * leave most of a power-of-two block unused.
   */
  async appendPiece (key: Buffer, body: Uint8Array, useReserve = false, built?: Buffer): Promise<PieceLoc> {
    const room = this.room()
    const first = room - RECORD_HEADER_BYTES - RECORD_TRAILER_BYTES
    const spec = (b: number): RecordSpec => ({ type: RecordType.piece, key, a: body.length, b })
    const whole = async (): Promise<PieceLoc> => {
      const p = await this.append(spec(PiecePart.whole), body, useReserve, built)
      return wholeLoc({ block: p.block, offset: p.offset, length: body.length })
    }
    if (this.recordBytes(body.length) <= room || first < this.splitBytesMin || first >= body.length) return whole()
    const a = await this.append(spec(PiecePart.first), body.subarray(0, first), useReserve)
    // A failed program moved the first part to a fresh segment: no boundary to span any more. That
    // first part stays behind as dead bytes (replay drops a first part not followed by its second).
    if (a.offset + a.recordBytes !== this.dev.geometry.blockBytes) return whole()
    const b = await this.append(spec(PiecePart.second), body.subarray(first), useReserve)
    this.splitPieces++
    return splitLoc({ block: a.block, offset: a.offset, length: first }, { block: b.block, offset: b.offset, length: body.length - first })
  }

  /** Make everything written so far durable. A failed sync seals the open block (the store's onSyncError): its tail is no longer known. */
  async sync (): Promise<void> {
    if (this.dev.dirty) await this.dev.sync()
  }

  seal (block: number): void {
    if (this.state.blocks[block]!.state === 'open') this.state.setState(block, 'sealed')
  }

  /** A program or erase failed here: the block is not used again once it is empty. */
  retire (block: number): void {
    const info = this.state.blocks[block]!
    if (!info.retired) this.badBlocksFound++
    info.retired = true
  }

  private async openNew (useReserve: boolean): Promise<number> {
    if (this.state.openBlock !== null) this.seal(this.state.openBlock)
    const g = this.dev.geometry
    // Reserve first: a segment number must be durably reserved before any block carries it.
    if (this.nextSeq + CACHE_ALLOCATE_ATTEMPTS_MAX >= this.reservedUntil) await this.reserve(this.nextSeq + CACHE_ALLOCATE_ATTEMPTS_MAX + CACHE_SEQ_RESERVE_COUNT)
    for (let attempt = 0; attempt < CACHE_ALLOCATE_ATTEMPTS_MAX; attempt++) {
      const block = this.pickFree(useReserve)
      const info = this.state.blocks[block]!
      info.generation++
      try {
        await this.dev.erase(block)
        const seq = this.nextSeq++
        await this.dev.program(block, 0, encodeSegmentHeader(seq, block, g.blockBytes, g.programBytes))
        info.seq = seq
        info.end = this.headerBytes
        info.cpParts = 0
        assert(info.live === 0 && info.pieces === 0 && info.extras.size === 0, 'a new segment starts empty')
        this.state.setState(block, 'open')
        return block
      } catch (err) {
        if (classifyWriteError(err) !== 'bad-block') throw err
        this.state.setState(block, 'bad')
        this.retire(block)
      }
    }
    throw new CanopyError('CACHE_FULL', `no good block after ${CACHE_ALLOCATE_ATTEMPTS_MAX} attempts`)
  }

  /** Round robin over free blocks: erases spread over the whole device (wear levelling without counters). */
  private pickFree (useReserve: boolean): number {
    const n = this.state.blocks.length
    if (this.state.count('free') <= (useReserve ? 0 : CACHE_RESERVE_BLOCKS)) throw noFreeBlock()
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
