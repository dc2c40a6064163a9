// Reads that never hand out a byte that is not the piece's. Every part's
// record header must name this piece where the index says it is, and every
// record's commit CRC must hold (CRC-32 over header, body and padding: the
// bytes are the bytes written, and those were checked against their SHA-256
// just before; see FORMAT.md, "Verification on read"); with verifyReads
// 'sha256' the body's SHA-256 must match its name too. A streaming read first
// verifies the whole piece chunk by chunk (memory: one chunk), then streams
// it, checking again and holding back the last chunk until the check passes.
// Reads run beside writes: a piece may move (compaction) or its block be
// erased while a read is in flight; every read checks the block's erase
// generation afterwards and looks again if it changed (content-addressed
// bytes are the same wherever they live).

import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import { CanopyError } from '../errors'
import type { FlashGeometry } from '../hal'
import { CACHE_READ_CHUNK_BYTES, CACHE_READ_RETRIES_MAX } from '../limits'
import { crc32 } from './crc32'
import type { CacheDevice } from './device'
import { decodeRecordHeader, PiecePart, RECORD_HEADER_BYTES, RECORD_TRAILER_BYTES, recordBytesFor, recordCommitted, RecordType, sha256 } from './format'
import { partsOf, type CacheState, type Part, type PieceLoc } from './state'

/** How a read checks a piece: each record's commit CRC-32, or that and the body's SHA-256. */
export type VerifyReads = 'crc32' | 'sha256'

/** Whether a record header (at 0 of `head`) is part i of this piece's n, in segment `seq` where the index says. */
function headerOk (g: FlashGeometry, head: Buffer, seq: number, key: string, loc: PieceLoc, n: number, i: number, p: Part): boolean {
  const h = decodeRecordHeader(head, 0, { seq, offset: p.offset, blockBytes: g.blockBytes, programBytes: g.programBytes })
  return h?.type === RecordType.piece && h.b === (n === 1 ? PiecePart.whole : i + 1) && h.a === loc.length &&
    h.bodyLength === p.length && h.key.toString('hex') === key
}

/** The erase generation of each part's block: compared after a read, a change means "look again". */
const generations = (state: CacheState, parts: Part[]): number[] => parts.map((p) => state.blocks[p.block]!.generation)
const moved = (state: CacheState, key: string, loc: PieceLoc, parts: Part[], before: number[]): boolean =>
  state.index.get(key) !== loc || parts.some((p, i) => state.blocks[p.block]!.generation !== before[i])

/**
 * The piece's bytes read where `loc` says they are: null when a part's
 * header does not name this piece, a record's commit CRC fails, or (with
 * `sha`) the body's SHA-256 does; 'moved' when a block was erased or the
 * piece moved while we read (look again).
 */
export async function readPiece (dev: CacheDevice, state: CacheState, key: string, loc: PieceLoc, sha: boolean): Promise<Buffer | null | 'moved'> {
  const parts = partsOf(loc)
  const before = generations(state, parts)
  const seqs = parts.map((p) => state.blocks[p.block]!.seq)
  const bodies: Buffer[] = []
  let ok = true
  for (const [i, p] of parts.entries()) {
    const recordBytes = recordBytesFor(p.length, dev.geometry.programBytes)
    const record = await dev.read(p.block, p.offset, recordBytes)
    ok &&= headerOk(dev.geometry, record, seqs[i]!, key, loc, parts.length, i, p) && recordCommitted(record, { recordBytes })
    bodies.push(record.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + p.length))
  }
  if (moved(state, key, loc, parts, before)) return 'moved'
  const body = bodies.length === 1 ? bodies[0]! : Buffer.concat(bodies, loc.length)
  return ok && (!sha || sha256(body).toString('hex') === key) ? body : null
}

/** A running check of body bytes: CRC-32 or SHA-256, as hex. */
interface Digest { update (b: Buffer): void, hex (): string }

export class PieceReader {
  reads = 0

  /**
   * @param sha check the SHA-256 as well (verifyReads 'sha256')
   * @param drop a piece failed its check where `loc` says it is: drop it (and count it)
   */
  constructor (private readonly dev: CacheDevice, private readonly state: CacheState, private readonly sha: boolean, private readonly drop: (key: string, loc: PieceLoc) => Promise<void>) {}

  /** The piece as the index has it: [bytes or null when damaged, where], or undefined when absent. */
  private async load (key: string): Promise<[Buffer | null, PieceLoc] | undefined> {
    for (let attempt = 0; attempt < CACHE_READ_RETRIES_MAX; attempt++) {
      const loc = this.state.index.get(key)
      if (loc === undefined) break
      const body = await readPiece(this.dev, this.state, key, loc, this.sha)
      if (body !== 'moved') return [body, loc]
    }
    return undefined
  }

  /** The verified bytes, or undefined (absent; or damaged, and then dropped). */
  async get (key: string): Promise<Buffer | undefined> {
    const r = await this.load(key)
    if (r?.[0] == null) {
      if (r !== undefined) await this.drop(key, r[1])
      return undefined
    }
    this.state.touch(key)
    this.reads++
    return r[0]
  }

  /** Whether the stored copy is there and verifies (no side effects): a duplicate put must not trust a rotten copy. */
  async check (key: string): Promise<boolean> {
    return (await this.load(key))?.[0] != null
  }

  /** Bytes [start, end) of a verified piece as a stream, or undefined when absent or damaged. */
  async stream (key: string, range: { start?: number, end?: number } = {}): Promise<Readable | undefined> {
    const length = this.state.index.get(key)?.length
    if (length === undefined) return undefined
    const { start = 0, end = length } = range
    if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || start > end || end > length) {
      throw new CanopyError('INPUT_INVALID', `range ${start}-${end} is outside the piece (${length} bytes)`)
    }
    const target = await this.verify(key)
    if (target === null) return undefined
    this.state.touch(key)
    this.reads++
    const digest = start === 0 && end === length ? this.digest() : null
    const self = this
    async function * chunks (): AsyncGenerator<Buffer> {
      let held: Buffer | null = null
      for (let pos = start; pos < end;) {
        const chunk = await self.readBody(key, pos, Math.min(CACHE_READ_CHUNK_BYTES, end - pos))
        digest?.update(chunk)
        if (held !== null) yield held
        held = chunk
        pos += chunk.length
      }
      // The last chunk goes out only once the whole piece checked again.
      if (digest !== null && digest.hex() !== target) throw new CanopyError('CACHE_CORRUPT', `piece ${key} changed while it was streamed`)
      if (held !== null) yield held
    }
    return Readable.from(chunks(), { objectMode: false, highWaterMark: CACHE_READ_CHUNK_BYTES })
  }

  private digest (): Digest {
    if (this.sha) {
      const h = createHash('sha256')
      return { update: (b) => { h.update(b) }, hex: () => h.digest('hex') }
    }
    let c = 0
    return { update: (b) => { c = crc32(b, c) }, hex: () => c.toString(16) }
  }

  /**
   * Check the whole piece chunk by chunk (memory: one chunk): every header,
   * each record's commit CRC, and in sha mode the body's SHA-256. Returns what the body
   * digest must come to when it is streamed, or null (absent; or damaged, and
   * then dropped).
   */
  private async verify (key: string): Promise<string | null> {
    const g = this.dev.geometry
    for (let attempt = 0; attempt < CACHE_READ_RETRIES_MAX; attempt++) {
      const loc = this.state.index.get(key)
      if (loc === undefined) break
      const parts = partsOf(loc)
      const before = generations(this.state, parts)
      const seqs = parts.map((p) => this.state.blocks[p.block]!.seq)
      const body = this.digest()
      let ok = true
      for (const [i, p] of parts.entries()) {
        const size = recordBytesFor(p.length, g.programBytes)
        const crcEnd = size - RECORD_TRAILER_BYTES
        const trailer = Buffer.alloc(RECORD_TRAILER_BYTES)
        let crc = 0
        for (let pos = 0; pos < size; pos += CACHE_READ_CHUNK_BYTES) {
          const chunk = await this.dev.read(p.block, p.offset + pos, Math.min(CACHE_READ_CHUNK_BYTES, size - pos))
          if (pos === 0) ok &&= headerOk(g, chunk, seqs[i]!, key, loc, parts.length, i, p)
          const from = Math.max(0, RECORD_HEADER_BYTES - pos)
          const to = Math.min(chunk.length, RECORD_HEADER_BYTES + p.length - pos)
          if (to > from) body.update(chunk.subarray(from, to))
          crc = crc32(chunk.subarray(0, Math.max(0, crcEnd - pos)), crc)
          if (crcEnd - pos < chunk.length) chunk.copy(trailer, Math.max(0, pos - crcEnd), Math.max(0, crcEnd - pos))
        }
        ok &&= trailer.readUInt32LE(0) === crc
      }
      if (moved(this.state, key, loc, parts, before)) continue
      const digest = body.hex()
      if (ok && (!this.sha || digest === key)) return digest
      await this.drop(key, loc)
      break
    }
    return null
  }

  /** Up to n bytes at `pos` of the piece, wherever it lives now (it may have moved since the last chunk). */
  private async readBody (key: string, pos: number, n: number): Promise<Buffer> {
    for (let attempt = 0; attempt < CACHE_READ_RETRIES_MAX; attempt++) {
      const loc = this.state.index.get(key)
      if (loc === undefined) break
      const parts = partsOf(loc)
      const i = pos < loc.length1 ? 0 : 1
      const p = parts[i]!
      const at = pos - (i === 0 ? 0 : loc.length1)
      const before = generations(this.state, [p])
      const chunk = await this.dev.read(p.block, p.offset + RECORD_HEADER_BYTES + at, Math.min(n, p.length - at))
      if (!moved(this.state, key, loc, [p], before)) return chunk
    }
    throw new CanopyError('CACHE_NOT_FOUND', `piece ${key} left the cache while it was streamed`)
  }
}
