// Compaction: copy a sealed segment's live records to the head of the log,
// sync, then erase it. The victim is the segment with the fewest live bytes
// (greedy), so each block freed costs the least copying. Copies are synced
// before the erase: at every instant one of the two copies is durable. A block
// whose erase fails keeps its segment forever; an obituary record tells
// recovery to ignore it (its live records were already copied).

import { assert, CanopyError } from '../errors'
import { classifyWriteError, type CacheDevice } from './device'
import { RecordType } from './format'
import { readPiece } from './reader'
import type { LogWriter } from './log'
import type { CacheState, Extra } from './state'

export interface CompactorHooks {
  /** A live piece failed its check while being copied: it is dropped. */
  onCorrupt (key: string): void
  /** The erased block held parts of the current checkpoint. */
  checkpointLost (): void
}

export class Compactor {
  compactions = 0
  copiedBytes = 0
  /** Blocks with live pieces we could not read this session: never erased (they may read again later). */
  private readonly unmovable = new Set<number>()

  constructor (
    private readonly dev: CacheDevice,
    private readonly state: CacheState,
    private readonly log: LogWriter,
    private readonly hooks: CompactorHooks
  ) {}

  /** The sealed segment with the fewest live bytes, if compacting it leaves at least `gain` bytes free. */
  pick (gain: number): number | null {
    let best: number | null = null
    this.state.blocks.forEach((b, i) => {
      if (b.state !== 'sealed' || this.unmovable.has(i)) return
      if (best === null || b.live < this.state.blocks[best]!.live) best = i
    })
    if (best === null || this.state.blocks[best]!.live + gain > this.log.usableBytes) return null
    return best
  }

  /** One round; false when no segment is worth compacting. */
  async once (gain: number): Promise<boolean> {
    const victim = this.pick(gain)
    if (victim === null) return false
    return this.compact(victim)
  }

  async compact (victim: number): Promise<boolean> {
    const info = this.state.blocks[victim]!
    assert(info.state === 'sealed', 'only sealed segments are compacted')
    for (const [key, loc] of this.state.piecesIn(victim)) {
      let body: Buffer | null | 'moved'
      try {
        body = await readPiece(this.dev, this.state, key, loc, true)
      } catch (err) {
        if (!CanopyError.is(err, 'FLASH_IO')) throw err
        this.unmovable.add(victim)
        return false
      }
      assert(body !== 'moved', 'nothing moves a piece during a compaction')
      if (body === null) {
        this.state.removePiece(key)
        this.hooks.onCorrupt(key)
        continue
      }
      const moved = await this.log.appendPiece(Buffer.from(key, 'hex'), body, { useReserve: true })
      this.state.movePiece(key, moved)
      this.copiedBytes += moved.recordBytes + moved.recordBytes2
    }
    for (const e of [...info.extras]) {
      if (!this.state.extraLive(e)) { this.state.removeExtra(e); continue }
      // Forget the old place only once the copy is written: a failed copy leaves it tracked.
      const placed = await this.log.append(extraSpec(e), Buffer.alloc(0), { useReserve: true })
      this.state.removeExtra(e)
      this.state.addExtra({ ...e, block: placed.block, offset: placed.offset, recordBytes: placed.recordBytes })
      this.copiedBytes += placed.recordBytes
    }
    assert(info.live === 0 && info.pieces === 0 && info.extras.size === 0, 'a compacted segment holds nothing live')
    if (info.checkpointParts > 0) this.hooks.checkpointLost()
    // The copies must be durable before the originals go.
    await this.log.sync()
    info.generation++
    try {
      await this.dev.erase(victim)
    } catch (err) {
      if (classifyWriteError(err) !== 'bad-block') throw err
      await this.bury(victim)
      return true
    }
    this.state.clearBlock(victim)
    info.seq = 0
    this.state.setState(victim, info.retired ? 'bad' : 'free')
    this.compactions++
    return true
  }

  /** Write an obituary for a block that holds a segment we cannot erase. */
  async bury (block: number): Promise<void> {
    const info = this.state.blocks[block]!
    if (!info.retired) this.log.badBlocksFound++
    info.retired = true
    if (info.state !== 'dead') {
      this.state.clearBlock(block)
      this.state.setState(block, 'dead')
    }
    const placed = await this.log.append({ type: RecordType.obituary, a: info.seq, b: block }, Buffer.alloc(0), { useReserve: true })
    this.state.addExtra({ kind: 'dead', block: placed.block, offset: placed.offset, recordBytes: placed.recordBytes, key: '', targetSeq: info.seq, targetOffset: 0, deadBlock: block })
    await this.log.sync()
  }
}

export function extraSpec (e: Extra): { type: typeof RecordType.tombstone | typeof RecordType.obituary, a: number, b: number, key?: Buffer } {
  return e.kind === 'tomb'
    ? { type: RecordType.tombstone, a: e.targetSeq, b: e.targetOffset, key: Buffer.from(e.key, 'hex') }
    : { type: RecordType.obituary, a: e.targetSeq, b: e.deadBlock }
}
