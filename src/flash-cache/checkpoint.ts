// Checkpoints and anchors. A checkpoint is the whole index as of one log
// position, written into the log itself as checkpoint records (so its wear is
// spread like any data). An anchor, appended to one of the two slot blocks
// with a revision counter, says where the newest complete checkpoint is and
// carries its SHA-256. Anchors also reserve segment numbers: no segment number
// at or above the newest anchor's nextSeq is used before a new anchor raises
// it, so a session that could not read every block still never reuses one.
// Order: parts, sync, anchor, sync. Correctness does not rest on that first
// sync (an anchor counts only if its parts read back and hash right); it makes
// a landed anchor useful. Recovery takes the newest anchor whose checkpoint
// still reads back whole, and replays the log after it; with none, it replays
// everything (slower, same result).

import { CanopyError } from '../errors'
import { CACHE_CHECKPOINT_INTERVAL_FACTOR, CACHE_CHECKPOINT_RECORDS_MAX, CACHE_SLOT_BLOCKS } from '../limits'
import { classifyWriteError, isErased, type CacheDevice } from './device'
import {
  ANCHOR_FIXED_BYTES, decodeAnchor, decodeCheckpoint, decodeRecordHeader, encodeAnchor, HASH_BYTES,
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
    for (let a; at + ANCHOR_FIXED_BYTES <= buf.length && (a = decodeAnchor(buf, at, g.programBytes, partsMax)) !== null; at += a.anchorBytes) anchors.push({ ...a, slot })
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
  for (const [i, p] of anchor.parts.entries()) {
    const blk = state.blocks[p.block]
    if (blk?.state !== 'sealed' || blk.seq !== p.seq) return null
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
    if (h?.type !== RecordType.checkpoint || h.b !== i || h.bodyLength !== p.bodyLength || !recordCommitted(rec, h)) return null
    bodies.push(recordBody(rec, h))
  }
  const blob = Buffer.concat(bodies)
  if (blob.length !== anchor.checkpointBytes || !sha256(blob).equals(anchor.checkpointHash)) return null
  return decodeCheckpoint(blob)
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

  constructor (
    private readonly dev: CacheDevice,
    private readonly state: CacheState,
    private readonly log: LogWriter,
    private readonly partsMax: number,
    private readonly intervalBytesMin: number,
    private activeSlot: number,
    private slotEnd: number,
    public revision: number
  ) {}

  due (): boolean {
    const log = this.log
    return !this.disabled && (this.stale || (log.cpRecords > 0 &&
      (log.cpRecords >= CACHE_CHECKPOINT_RECORDS_MAX || log.cpBytes >= Math.max(this.intervalBytesMin, CACHE_CHECKPOINT_INTERVAL_FACTOR * this.lastBytes))))
  }

  /** Body bytes of one checkpoint part: what fills an empty segment. */
  private perPart (): number { return this.log.usableBytes - this.state.extraBytes }

  /** Blocks the parts of a checkpoint of `bytes` need (the caller makes room first, so no compaction runs in between). */
  blocksNeeded (bytes: number): number { return Math.ceil(bytes / this.perPart()) + 1 }

  /** The index as of now, least recently used first. */
  snapshot (counters: CheckpointCounters): Checkpoint {
    const pos = this.log.position()
    const blocks = this.state.blocks
    const cp: Checkpoint = { revision: this.revision + 1, logSeq: pos.seq, logOffset: pos.offset, nextSeq: this.log.nextSeq, counters, pieces: [], tombs: [], dead: [] }
    for (const [key, loc] of this.state.index) {
      const two = loc.block2 >= 0
      cp.pieces.push({
        key: Buffer.from(key, 'hex'),
        length: loc.length,
        block: loc.block, seq: blocks[loc.block]!.seq, offset: loc.offset, length1: loc.length1,
        block2: two ? loc.block2 : NO_BLOCK, seq2: two ? blocks[loc.block2]!.seq : 0, offset2: loc.offset2
      })
    }
    for (const b of blocks) {
      for (const e of b.extras) {
        if (e.type === RecordType.tombstone) cp.tombs.push({ key: Buffer.from(e.key, 'hex'), block: e.block, seq: b.seq, offset: e.offset, targetSeq: e.a, targetOffset: e.b })
        else cp.dead.push({ deadBlock: e.b, deadSeq: e.a, block: e.block, seq: b.seq, offset: e.offset })
      }
    }
    return cp
  }

  /**
   * Write a checkpoint and its anchor. Gives up (counted in `failed`) when it
   * could not: too large, no room, bad slots; the log stays correct without
   * it. Power loss and our own bugs are thrown.
   */
  async write (blob: Buffer): Promise<void> {
    const perPart = this.perPart()
    const count = Math.max(1, Math.ceil(blob.length / perPart))
    const parts: CheckpointPart[] = []
    if (count > this.partsMax) { this.failed++; return }
    const id = this.revision + 1 // the checkpoint's revision, written into its parts (informational)
    try {
      for (let i = 0; i < count; i++) {
        const body = blob.subarray(i * perPart, (i + 1) * perPart)
        const placed = await this.log.append({ type: RecordType.checkpoint, a: id, b: i }, body)
        parts.push({ block: placed.block, seq: placed.seq, offset: placed.offset, bodyLength: body.length })
      }
      await this.log.sync()
    } catch (err) {
      if (classifyWriteError(err) === 'fatal' && !CanopyError.is(err, 'CACHE_FULL')) throw err
      this.failed++
      return
    }
    const current = { parts, bytes: blob.length, hash: sha256(blob) }
    // The revision is read again: the parts may have reserved segment numbers (new anchors) meanwhile.
    if (!await this.writeAnchor(this.log.reservedUntil, current)) { this.failed++; return }
    this.current = current
    this.lastBytes = blob.length
    this.log.cpRecords = this.log.cpBytes = 0
    this.stale = false
    this.written++
    for (const b of this.state.blocks) b.cpParts = 0
    for (const p of parts) this.state.blocks[p.block]!.cpParts++
  }

  /** Durably reserve segment numbers below `until` (an anchor naming the current checkpoint, if it is whole). */
  async reserve (until: number): Promise<void> {
    if (!await this.writeAnchor(until, this.stale ? null : this.current)) throw new CanopyError('FLASH_IO', 'cannot reserve segment numbers: neither anchor slot takes a write')
    this.log.reservedUntil = until
  }

  /** Append an anchor to the active slot; when it is full or damaged, erase the other slot and continue there. */
  private async writeAnchor (nextSeq: number, c: CurrentCheckpoint | null): Promise<boolean> {
    const g = this.dev.geometry
    const anchor = encodeAnchor({ revision: this.revision + 1, nextSeq, checkpointBytes: c?.bytes ?? 0, checkpointHash: c?.hash ?? Buffer.alloc(HASH_BYTES), parts: c?.parts ?? [] }, g.programBytes)
    for (let attempt = 0; attempt < CACHE_SLOT_BLOCKS; attempt++) {
      try {
        if (this.slotEnd + anchor.length > g.blockBytes) {
          this.slotEnd = g.blockBytes // if the erase fails, this slot stays unusable
          this.activeSlot = (this.activeSlot + 1) % CACHE_SLOT_BLOCKS
          await this.dev.erase(this.activeSlot)
          this.slotEnd = 0
        }
        await this.dev.program(this.activeSlot, this.slotEnd, anchor)
        this.slotEnd += anchor.length
        await this.dev.sync()
        this.revision++
        return true
      } catch (err) {
        if (classifyWriteError(err) === 'fatal') throw err
        this.slotEnd = g.blockBytes
      }
    }
    return false
  }
}
