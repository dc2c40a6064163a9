// Reads that never hand out a byte that does not match its hash. A whole
// read checks the record's header and the body's SHA-256 before returning. A
// streaming read first verifies the whole piece chunk by chunk (memory: one
// chunk), then streams it, hashing again and holding back the last chunk
// until the hash matches. Reads run beside writes: a piece may move
// (compaction) or its block be erased while a read is in flight; every read
// checks the block's erase generation afterwards and looks again if it
// changed (content-addressed bytes are the same wherever they live).

import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { CanopyError } from '../errors'
import { CACHE_READ_CHUNK_BYTES, CACHE_READ_RETRIES_MAX } from '../limits'
import type { CacheDevice } from './device'
import { decodeRecordHeader, RECORD_HEADER_BYTES, RecordType, sha256 } from './format'
import type { CacheState, PieceLoc } from './state'

export interface ReaderHooks {
  /** A piece failed verification where `loc` says it is: drop it (and count it). */
  corrupt (key: string, loc: PieceLoc): Promise<void>
}

export interface ReadCounters { reads: number, bytesRead: number }

export class PieceReader {
  readonly counters: ReadCounters = { reads: 0, bytesRead: 0 }

  constructor (private readonly dev: CacheDevice, private readonly state: CacheState, private readonly hooks: ReaderHooks) {}

  async get (key: string): Promise<Buffer | undefined> {
    for (let attempt = 0; attempt < CACHE_READ_RETRIES_MAX; attempt++) {
      const loc = this.state.index.get(key)
      if (loc === undefined) return undefined
      const info = this.state.blocks[loc.block]!
      const generation = info.generation
      const seq = info.seq
      const record = await this.dev.read(loc.block, loc.offset, loc.recordBytes)
      if (info.generation !== generation || this.state.index.get(key) !== loc) continue // moved or erased meanwhile
      if (!this.headerMatches(record, key, loc, seq)) return this.drop(key, loc)
      const body = record.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + loc.length)
      if (sha256(body).toString('hex') !== key) return this.drop(key, loc)
      this.state.touch(key)
      this.counters.reads++
      this.counters.bytesRead += body.length
      return body
    }
    return undefined
  }

  /** Whether the stored copy still verifies (no side effects): a duplicate put must not trust a rotten copy. */
  async check (key: string): Promise<'ok' | 'damaged' | 'gone'> {
    for (let attempt = 0; attempt < CACHE_READ_RETRIES_MAX; attempt++) {
      const loc = this.state.index.get(key)
      if (loc === undefined) return 'gone'
      const info = this.state.blocks[loc.block]!
      const generation = info.generation
      const seq = info.seq
      const record = await this.dev.read(loc.block, loc.offset, loc.recordBytes)
      if (info.generation !== generation || this.state.index.get(key) !== loc) continue
      const ok = this.headerMatches(record, key, loc, seq) && sha256(record.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + loc.length)).toString('hex') === key
      return ok ? 'ok' : 'damaged'
    }
    return 'gone'
  }

  /** Bytes [start, end) of a verified piece as a stream, or undefined when absent or damaged. */
  async stream (key: string, range: { start?: number, end?: number } = {}): Promise<Readable | undefined> {
    const first = this.state.index.get(key)
    if (first === undefined) return undefined
    const length = first.length
    const start = range.start ?? 0
    const end = range.end ?? length
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || start > end || end > length) {
      throw new CanopyError('INPUT_INVALID', `range ${start}-${end} is outside the piece (${length} bytes)`)
    }
    if (!await this.verify(key)) return undefined
    this.state.touch(key)
    this.counters.reads++
    const whole = start === 0 && end === length
    const self = this
    async function * chunks (): AsyncGenerator<Buffer> {
      const hash = whole ? createHash('sha256') : null
      let held: Buffer | null = null
      for (let pos = start; pos < end; pos += CACHE_READ_CHUNK_BYTES) {
        const chunk = await self.readBody(key, pos, Math.min(CACHE_READ_CHUNK_BYTES, end - pos))
        hash?.update(chunk)
        if (held !== null) yield held
        held = chunk
        self.counters.bytesRead += chunk.length
      }
      // The last chunk goes out only once the whole piece matched again.
      if (hash !== null && hash.digest('hex') !== key) throw new CanopyError('CACHE_CORRUPT', `piece ${key} changed while it was streamed`)
      if (held !== null) yield held
    }
    return Readable.from(chunks(), { objectMode: false, highWaterMark: CACHE_READ_CHUNK_BYTES })
  }

  /** Hash the whole piece chunk by chunk; false (and dropped) when it does not match. */
  private async verify (key: string): Promise<boolean> {
    for (let attempt = 0; attempt < CACHE_READ_RETRIES_MAX; attempt++) {
      const loc = this.state.index.get(key)
      if (loc === undefined) return false
      const info = this.state.blocks[loc.block]!
      const generation = info.generation
      const seq = info.seq
      const head = await this.dev.read(loc.block, loc.offset, RECORD_HEADER_BYTES)
      const hash = createHash('sha256')
      for (let pos = 0; pos < loc.length; pos += CACHE_READ_CHUNK_BYTES) {
        hash.update(await this.dev.read(loc.block, loc.offset + RECORD_HEADER_BYTES + pos, Math.min(CACHE_READ_CHUNK_BYTES, loc.length - pos)))
      }
      if (info.generation !== generation || this.state.index.get(key) !== loc) continue
      if (this.headerMatches(head, key, loc, seq) && hash.digest('hex') === key) return true
      await this.drop(key, loc)
      return false
    }
    return false
  }

  private async readBody (key: string, pos: number, n: number): Promise<Buffer> {
    for (let attempt = 0; attempt < CACHE_READ_RETRIES_MAX; attempt++) {
      const loc = this.state.index.get(key)
      if (loc === undefined) break
      const info = this.state.blocks[loc.block]!
      const generation = info.generation
      const chunk = await this.dev.read(loc.block, loc.offset + RECORD_HEADER_BYTES + pos, n)
      if (info.generation === generation && this.state.index.get(key) === loc) return chunk
    }
    throw new CanopyError('CACHE_NOT_FOUND', `piece ${key} left the cache while it was streamed`)
  }

  private headerMatches (record: Buffer, key: string, loc: PieceLoc, seq: number): boolean {
    const g = this.dev.geometry
    const h = decodeRecordHeader(record, 0, { seq, offset: loc.offset, blockBytes: g.blockBytes, programBytes: g.programBytes })
    return h !== null && h.type === RecordType.piece && h.bodyLength === loc.length && h.key.toString('hex') === key
  }

  private async drop (key: string, loc: PieceLoc): Promise<undefined> {
    await this.hooks.corrupt(key, loc)
    return undefined
  }
}
