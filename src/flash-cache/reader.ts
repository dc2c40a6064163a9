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
import { decodeRecordHeader, PiecePart, RECORD_HEADER_BYTES, recordCommitted, RecordType, sha256 } from './format'
import { partsOf, type CacheState, type Part, type PieceLoc } from './state'

/**
 * Read every part of a piece where `loc` says it is: its bytes, null when a
 * part's header does not name this piece (or, with checkCommit, its commit
 * CRC fails), or 'moved' when a block was erased or the piece moved while we
 * read (look again). Does not check the SHA-256: callers do, or rely on CRCs.
 */
export async function readPiece (dev: CacheDevice, state: CacheState, key: string, loc: PieceLoc, checkCommit: boolean): Promise<Buffer | null | 'moved'> {
  const g = dev.geometry
  const parts = partsOf(loc)
  const generations = parts.map((p) => state.blocks[p.block]!.generation)
  const seqs = parts.map((p) => state.blocks[p.block]!.seq)
  const bodies: Buffer[] = []
  let valid = true
  for (const [i, p] of parts.entries()) {
    const record = await dev.read(p.block, p.offset, p.recordBytes)
    const h = decodeRecordHeader(record, 0, { seq: seqs[i]!, offset: p.offset, blockBytes: g.blockBytes, programBytes: g.programBytes })
    const part = parts.length === 1 ? PiecePart.whole : i === 0 ? PiecePart.first : PiecePart.second
    valid &&= h !== null && h.type === RecordType.piece && h.b === part && h.a === loc.length && h.bodyLength === p.length &&
      h.recordBytes === p.recordBytes && h.key.toString('hex') === key && (!checkCommit || recordCommitted(record, h))
    bodies.push(record.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + p.length))
  }
  if (parts.some((p, i) => state.blocks[p.block]!.generation !== generations[i]) || state.index.get(key) !== loc) return 'moved'
  if (!valid) return null
  return bodies.length === 1 ? bodies[0]! : Buffer.concat(bodies, loc.length)
}

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
      const body = await readPiece(this.dev, this.state, key, loc, false)
      if (body === 'moved') continue
      if (body === null || sha256(body).toString('hex') !== key) return this.drop(key, loc)
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
      const body = await readPiece(this.dev, this.state, key, loc, false)
      if (body === 'moved') continue
      return body !== null && sha256(body).toString('hex') === key ? 'ok' : 'damaged'
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
      for (let pos = start; pos < end;) {
        const chunk = await self.readBody(key, pos, Math.min(CACHE_READ_CHUNK_BYTES, end - pos))
        hash?.update(chunk)
        if (held !== null) yield held
        held = chunk
        pos += chunk.length
        self.counters.bytesRead += chunk.length
      }
      // The last chunk goes out only once the whole piece matched again.
      if (hash !== null && hash.digest('hex') !== key) throw new CanopyError('CACHE_CORRUPT', `piece ${key} changed while it was streamed`)
      if (held !== null) yield held
    }
    return Readable.from(chunks(), { objectMode: false, highWaterMark: CACHE_READ_CHUNK_BYTES })
  }

  /** Hash the whole piece chunk by chunk (memory: one chunk); false (and dropped) when it does not match. */
  private async verify (key: string): Promise<boolean> {
    const g = this.dev.geometry
    for (let attempt = 0; attempt < CACHE_READ_RETRIES_MAX; attempt++) {
      const loc = this.state.index.get(key)
      if (loc === undefined) return false
      const parts = partsOf(loc)
      const generations = parts.map((p) => this.state.blocks[p.block]!.generation)
      const seqs = parts.map((p) => this.state.blocks[p.block]!.seq)
      const hash = createHash('sha256')
      let headersOk = true
      for (const [i, p] of parts.entries()) {
        const head = await this.dev.read(p.block, p.offset, RECORD_HEADER_BYTES)
        const h = decodeRecordHeader(head, 0, { seq: seqs[i]!, offset: p.offset, blockBytes: g.blockBytes, programBytes: g.programBytes })
        const part = parts.length === 1 ? PiecePart.whole : i === 0 ? PiecePart.first : PiecePart.second
        headersOk &&= h !== null && h.type === RecordType.piece && h.b === part && h.a === loc.length && h.bodyLength === p.length && h.key.toString('hex') === key
        for (let pos = 0; pos < p.length; pos += CACHE_READ_CHUNK_BYTES) {
          hash.update(await this.dev.read(p.block, p.offset + RECORD_HEADER_BYTES + pos, Math.min(CACHE_READ_CHUNK_BYTES, p.length - pos)))
        }
      }
      if (parts.some((p, i) => this.state.blocks[p.block]!.generation !== generations[i]) || this.state.index.get(key) !== loc) continue
      if (headersOk && hash.digest('hex') === key) return true
      await this.drop(key, loc)
      return false
    }
    return false
  }

  /** Up to n bytes at `pos` of the piece, wherever it lives now (it may have moved since the last chunk). */
  private async readBody (key: string, pos: number, n: number): Promise<Buffer> {
    for (let attempt = 0; attempt < CACHE_READ_RETRIES_MAX; attempt++) {
      const loc = this.state.index.get(key)
      if (loc === undefined) break
      let at = pos
      let part: Part | undefined
      for (const p of partsOf(loc)) {
        if (at < p.length) { part = p; break }
        at -= p.length
      }
      if (part === undefined) break
      const info = this.state.blocks[part.block]!
      const generation = info.generation
      const chunk = await this.dev.read(part.block, part.offset + RECORD_HEADER_BYTES + at, Math.min(n, part.length - at))
      if (info.generation === generation && this.state.index.get(key) === loc) return chunk
    }
    throw new CanopyError('CACHE_NOT_FOUND', `piece ${key} left the cache while it was streamed`)
  }

  private async drop (key: string, loc: PieceLoc): Promise<undefined> {
    await this.hooks.corrupt(key, loc)
    return undefined
  }
}
