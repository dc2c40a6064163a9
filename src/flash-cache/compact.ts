// Compaction: copy a sealed segment's live records to the head of the log,
// sync, then erase it. The victim is the segment with the fewest live bytes
// (greedy), so each block freed costs the least copying. Copies are synced
// before the erase: at every instant one of the two copies is durable. A
// piece is copied only after its commit CRC and its SHA-256 both check, so
// every record's CRC covers bytes that were verified against their hash just
// before they were written (what a CRC-checked read relies on). A block whose
// erase fails keeps its segment forever; an obituary record tells recovery to
// ignore it (its live records were already copied).

import { assert, CanopyError } from '../errors'
import { classifyWriteError, type CacheDevice } from './device'
import { RecordType } from './format'
import type { LogWriter } from './log'
import { readPiece } from './reader'
import type { CacheState, Extra } from './state'

export class Compactor {
  compactions = 0
  /** Blocks with live pieces we could not read this session: never erased (they may read again later). */
  private readonly unmovable = new Set<number>()

  constructor (
    private readonly dev: CacheDevice,
    private readonly state: CacheState,
    private readonly log: LogWriter,
    /** A live piece failed its check while being copied: it is dropped. */
    private readonly onCorrupt: (key: string) => void,
    /** The erased block held parts of the current checkpoint. */
    private readonly checkpointLost: () => void
  ) {}

  /** One round on the sealed segment with the fewest live bytes; false when none leaves `gain` bytes free. */
  async once (gain: number): Promise<boolean> {
    const victim = this.state.sealed('live', this.unmovable)
    return victim !== null && this.state.blocks[victim]!.live + gain <= this.log.usableBytes && await this.compact(victim)
  }

  async compact (victim: number): Promise<boolean> {
    const state = this.state
    const info = state.blocks[victim]!
    assert(info.state === 'sealed', 'only sealed segments are compacted')
    for (const [key, loc] of state.piecesIn(victim)) {
      let body: Buffer | null | 'moved'
      try {
        body = await readPiece(this.dev, state, key, loc, true)
      } catch (err) {
        if (!CanopyError.is(err, 'FLASH_IO')) throw err
        this.unmovable.add(victim)
        return false
      }
      // Only a failed sync takes a piece out meanwhile (its put was not acknowledged): nothing to copy then.
      if (body === 'moved') continue
      if (body === null) {
        state.removePiece(key)
        this.onCorrupt(key)
        continue
      }
      const copy = await this.log.appendPiece(Buffer.from(key, 'hex'), body, true)
      if (state.index.get(key) === loc) state.movePiece(key, copy)
    }
    for (const e of [...info.extras]) {
      // Forget the old place only once the copy is written: a failed copy leaves it tracked.
      const placed = state.extraLive(e) ? await this.log.append(extraSpec(e), Buffer.alloc(0), true) : null
      state.removeExtra(e)
      if (placed !== null) state.addExtra({ ...e, block: placed.block, offset: placed.offset })
    }
    assert(info.live === 0 && info.pieces === 0, 'a compacted segment holds nothing live')
    if (info.cpParts > 0) this.checkpointLost()
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
    state.clearBlock(victim)
    info.seq = 0
    state.setState(victim, info.retired ? 'bad' : 'free')
    this.compactions++
    return true
  }

  /** Write an obituary for a block that holds a segment we cannot erase. */
  async bury (block: number): Promise<void> {
    const info = this.state.blocks[block]!
    this.log.retire(block)
    if (info.state !== 'dead') {
      this.state.clearBlock(block)
      this.state.setState(block, 'dead')
    }
    const e: Extra = { type: RecordType.obituary, block: 0, offset: 0, key: '', a: info.seq, b: block }
    const placed = await this.log.append(extraSpec(e), Buffer.alloc(0), true)
    this.state.addExtra({ ...e, block: placed.block, offset: placed.offset })
    await this.log.sync()
  }
}

const extraSpec = (e: Extra): { type: Extra['type'], a: number, b: number, key?: Buffer } =>
  ({ type: e.type, a: e.a, b: e.b, key: e.type === RecordType.tombstone ? Buffer.from(e.key, 'hex') : undefined })
