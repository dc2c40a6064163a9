// Checkpoints and anchors. A checkpoint is the whole index as of one log
// position, written into the log itself as checkpoint records (so its wear is
// spread like any data). An anchor, appended to one of the two slot blocks
// with a revision counter, says where the newest complete checkpoint is and
// carries its SHA-256. Anchors also reserve segment numbers: no segment number
// at or above the newest anchor's nextSeq is used before a new anchor raises
// it, so a session that could not read every block still never reuses one. Order: parts, sync, anchor, sync. Correctness does not
// rest on that first sync (an anchor counts only if its parts read back and
// hash right); it makes a landed anchor useful. Recovery takes the newest
// anchor whose checkpoint still reads back whole, and replays the log after
// it; with none, it replays everything (slower, same result).

import { CanopyError } from '../errors'
import { CACHE_CHECKPOINT_INTERVAL_FACTOR, CACHE_CHECKPOINT_RECORDS_MAX, CACHE_SLOT_BLOCKS } from '../limits'
import { classifyWriteError, type CacheDevice } from './device'
import {
  ANCHOR_FIXED_BYTES, decodeAnchor, decodeCheckpoint, decodeRecordHeader, encodeAnchor,
  NO_BLOCK, recordBody, recordBytesFor, recordCommitted, RecordType, sha256, type Anchor, type Checkpoint, type CheckpointCounters, type CheckpointPart
} from './format'
import type { LogWriter } from './log'
import type { CacheState } from './state'

export interface SlotScan {
  /** Valid anchors from both slots, newest first. */
  anchors: Anchor[]
  activeSlot: number
  /** Where the next anchor goes in the active slot (blockBytes: switch slots first). */
  slotEnd: number
  revision: number
  /** The highest reservation among all valid anchors. */
  reservedUntil: number
  readErrors: number
}

/** Read both slot blocks and every valid anchor in them (each slot: anchors back to back from offset 0). */
export async function scanSlots (dev: CacheDevice, partsMax: number): Promise<SlotScan> {
  const g = dev.geometry
  const anchors: Array<Anchor & { slot: number }> = []
  const ends: number[] = []
  let readErrors = 0
  for (let slot = 0; slot < CACHE_SLOT_BLOCKS; slot++) {
    let buf: Buffer
    try {
      // One read of the whole slot: anchors are small and slots are read once per open.
      buf = await dev.readAtOpen(slot, 0, g.blockBytes)
    } catch (err) {
      if (!CanopyError.is(err, 'FLASH_IO')) throw err
      ends.push(g.blockBytes)
      readErrors++
      continue
    }
    let at = 0
    while (at + ANCHOR_FIXED_BYTES <= buf.length) {
      const a = decodeAnchor(buf, at, g.programBytes, partsMax)
      if (a === null) break
      anchors.push({ ...a, slot })
      at += a.anchorBytes
    }
    ends.push(isErased(buf.subarray(at)) ? at : g.blockBytes)
  }
  anchors.sort((x, y) => y.revision - x.revision)
  const newest = anchors[0]
  const activeSlot = newest?.slot ?? 0
  const reservedUntil = anchors.reduce((m, a) => Math.max(m, a.nextSeq), 0)
  return { anchors, activeSlot, slotEnd: ends[activeSlot]!, revision: newest?.revision ?? 0, reservedUntil, readErrors }
}

/** The checkpoint an anchor names, if every part still reads back whole and the hash matches. */
export async function loadCheckpoint (dev: CacheDevice, state: CacheState, anchor: Anchor): Promise<Checkpoint | null> {
  const g = dev.geometry
  const bodies: Buffer[] = []
  let total = 0
  for (let i = 0; i < anchor.parts.length; i++) {
    const p = anchor.parts[i]!
    const blk = state.blocks[p.block]
    if (blk === undefined || blk.state !== 'sealed' || blk.seq !== p.seq) return null
    const size = recordBytesFor(p.bodyLength, g.programBytes)
    if (p.offset + size > g.blockBytes) return null
    let rec: Buffer
    try {
      rec = await dev.readAtOpen(p.block, p.offset, size)
    } catch (err) {
      if (CanopyError.is(err, 'FLASH_IO')) return null
      throw err
    }
    const h = decodeRecordHeader(rec, 0, { seq: p.seq, offset: p.offset, blockBytes: g.blockBytes, programBytes: g.programBytes })
    if (h === null || h.type !== RecordType.checkpoint || h.b !== i || h.bodyLength !== p.bodyLength) return null
    if (!recordCommitted(rec, h)) return null
    bodies.push(recordBody(rec, h))
    total += h.bodyLength
  }
  if (total !== anchor.checkpointBytes) return null
  const blob = Buffer.concat(bodies, total)
  if (!sha256(blob).equals(anchor.checkpointHash)) return null
  return decodeCheckpoint(blob)
}

const ERASED = Buffer.alloc(64 * 1024, 0xff)
/** Whether every byte reads erased (compared a chunk at a time: a byte loop over megabytes is slow). */
export function isErased (b: Buffer): boolean {
  for (let at = 0; at < b.length; at += ERASED.length) {
    const n = Math.min(ERASED.length, b.length - at)
    if (!b.subarray(at, at + n).equals(ERASED.subarray(0, n))) return false
  }
  return true
}

interface CurrentCheckpoint { parts: CheckpointPart[], bytes: number, hash: Buffer }

export class Checkpointer {
  /** Bytes of the last checkpoint written or loaded. */
  lastBytes = 0
  /** Set when a compaction erased a block holding the current checkpoint. */
  stale = false
  /** Recovery could not read everything: a checkpoint now could leave out pieces still on flash. */
  disabled = false
  /** The checkpoint the anchors name (reservation anchors repeat it). */
  current: CurrentCheckpoint | null = null
  written = 0
  failed = 0
  skippedTooLarge = 0

  constructor (
    private readonly dev: CacheDevice,
    private readonly state: CacheState,
    private readonly log: LogWriter,
    private readonly partsMax: number,
    private readonly intervalBytesMin: number,
    public activeSlot: number,
    public slotEnd: number,
    public revision: number
  ) {}

  due (): boolean {
    if (this.disabled || (this.log.recordsSinceCheckpoint === 0 && !this.stale)) return false
    return this.stale || this.log.recordsSinceCheckpoint >= CACHE_CHECKPOINT_RECORDS_MAX ||
      this.log.bytesSinceCheckpoint >= Math.max(this.intervalBytesMin, CACHE_CHECKPOINT_INTERVAL_FACTOR * this.lastBytes)
  }

  /** The index as of now, least recently used first. */
  snapshot (counters: CheckpointCounters): Checkpoint {
    const pos = this.log.position()
    const cp: Checkpoint = { revision: this.revision + 1, logSeq: pos.seq, logOffset: pos.offset, nextSeq: this.log.nextSeq, counters, pieces: [], tombs: [], dead: [] }
    const seqOf = (block: number): number => (block < 0 ? 0 : this.state.blocks[block]!.seq)
    for (const [key, loc] of this.state.index) {
      cp.pieces.push({
        key: Buffer.from(key, 'hex'),
        length: loc.length,
        block: loc.block, seq: seqOf(loc.block), offset: loc.offset, length1: loc.length1,
        block2: loc.block2 < 0 ? NO_BLOCK : loc.block2, seq2: seqOf(loc.block2), offset2: loc.offset2
      })
    }
    this.state.blocks.forEach((b) => {
      for (const e of b.extras) {
        if (e.kind === 'tomb') cp.tombs.push({ key: Buffer.from(e.key, 'hex'), block: e.block, seq: b.seq, offset: e.offset, targetSeq: e.targetSeq, targetOffset: e.targetOffset })
        else cp.dead.push({ deadBlock: e.deadBlock, deadSeq: e.targetSeq, block: e.block, seq: b.seq, offset: e.offset })
      }
    })
    return cp
  }

  /** Blocks the parts of a checkpoint of `bytes` need (the caller makes room first, so no compaction runs in between). */
  blocksNeeded (bytes: number): number {
    const per = this.log.usableBytes - recordBytesFor(0, this.dev.geometry.programBytes)
    return Math.ceil(bytes / per) + 1
  }

  /**
   * Write a checkpoint and its anchor. Returns false when it could not (too
   * large, bad slots); the log stays correct without it. Power loss and our
   * own bugs are thrown.
   */
  async write (blob: Buffer): Promise<boolean> {
    const g = this.dev.geometry
    const perPart = this.log.usableBytes - recordBytesFor(0, g.programBytes)
    const count = Math.max(1, Math.ceil(blob.length / perPart))
    if (count > this.partsMax) { this.skippedTooLarge++; return false }
    const id = this.revision + 1 // the checkpoint's revision, written into its parts (informational)
    const parts: CheckpointPart[] = []
    try {
      for (let i = 0; i < count; i++) {
        const body = blob.subarray(i * perPart, Math.min(blob.length, (i + 1) * perPart))
        const placed = await this.log.append({ type: RecordType.checkpoint, a: id, b: i }, body)
        parts.push({ block: placed.block, seq: placed.seq, offset: placed.offset, bodyLength: body.length })
      }
      await this.log.sync()
    } catch (err) {
      if (classifyWriteError(err) === 'fatal' && !CanopyError.is(err, 'CACHE_FULL')) throw err
      this.failed++
      return false
    }
    const current = { parts, bytes: blob.length, hash: sha256(blob) }
    const revision = this.revision + 1 // parts may have reserved segment numbers (new anchors) meanwhile
    const anchor = encodeAnchor({ revision, nextSeq: this.log.reservedUntil, checkpointBytes: current.bytes, checkpointHash: current.hash, parts }, g.programBytes)
    if (!await this.writeAnchor(anchor)) { this.failed++; return false }
    this.revision = revision
    this.current = current
    this.lastBytes = blob.length
    this.log.recordsSinceCheckpoint = 0
    this.log.bytesSinceCheckpoint = 0
    this.stale = false
    this.written++
    for (const b of this.state.blocks) b.checkpointParts = 0
    for (const p of parts) this.state.blocks[p.block]!.checkpointParts++
    return true
  }

  /** Durably reserve segment numbers below `until` (an anchor naming the current checkpoint, if it is whole). */
  async reserve (until: number): Promise<void> {
    const c = this.stale ? null : this.current
    const anchor = encodeAnchor({ revision: this.revision + 1, nextSeq: until, checkpointBytes: c?.bytes ?? 0, checkpointHash: c?.hash ?? Buffer.alloc(32), parts: c?.parts ?? [] }, this.dev.geometry.programBytes)
    if (!await this.writeAnchor(anchor)) throw new CanopyError('FLASH_IO', 'cannot reserve segment numbers: neither anchor slot takes a write')
    this.revision++
    this.log.reservedUntil = until
  }

  /** Append to the active slot; when it is full or damaged, erase the other slot and continue there. */
  private async writeAnchor (anchor: Buffer): Promise<boolean> {
    const g = this.dev.geometry
    for (let attempt = 0; attempt < CACHE_SLOT_BLOCKS; attempt++) {
      try {
        if (this.slotEnd + anchor.length > g.blockBytes) {
          const other = (this.activeSlot + 1) % CACHE_SLOT_BLOCKS
          this.slotEnd = g.blockBytes // if the erase fails, this slot stays unusable
          this.activeSlot = other
          await this.dev.erase(other)
          this.slotEnd = 0
        }
        await this.dev.program(this.activeSlot, this.slotEnd, anchor)
        this.slotEnd += anchor.length
        await this.dev.sync()
        return true
      } catch (err) {
        if (classifyWriteError(err) === 'fatal') throw err
        this.slotEnd = g.blockBytes
      }
    }
    return false
  }
}
