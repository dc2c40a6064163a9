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
import { CACHE_READ_CHUNK_BYTES, CACHE_READ_RETRIES_MAX } from '../limits'
import { crc32 } from './crc32'
import type { CacheDevice } from './device'
import { decodeRecordHeader, hex, PART_WHOLE, RECORD_HEADER_BYTES, RECORD_TRAILER_BYTES, recordBytesFor, sha256, TYPE_PIECE } from './format'
import { partsOf, type CacheState, type Part, type PieceLoc } from './state'

/** How a read checks a piece: each record's commit CRC-32, or that and the body's SHA-256. */
export type VerifyReads = 'crc32' | 'sha256'

/** The erase generation of each part's block: compared after a read, a change means "look again". */
const generations = (state: CacheState, parts: Part[]): number[] => parts.map((p) => state.blocks[p.block]!.generation)
const moved = (state: CacheState, key: string, loc: PieceLoc, parts: Part[], before: number[]): boolean =>
  state.index.get(key) !== loc || parts.some((p, i) => state.blocks[p.block]!.generation !== before[i])

/**
 * Read every record of a piece where `loc` says it is, `chunk` bytes at a
 * time (whole records: Infinity), checking that each header names this piece
 * and part there and that each commit CRC holds, and handing the body bytes
 * to `body` in order. false: a check failed; 'moved': a block was erased or
 * the piece moved meanwhile (look again).
 */
async function walk (dev: CacheDevice, state: CacheState, key: string, loc: PieceLoc, chunk: number, body: (b: Buffer) => void): Promise<boolean | 'moved'> {
  const g = dev.geometry
  const parts = partsOf(loc)
  const before = generations(state, parts)
  let ok = true
  for (const [i, p] of parts.entries()) {
    const seq = state.blocks[p.block]!.seq
    const size = recordBytesFor(p.length, g.programBytes)
    const crcEnd = size - RECORD_TRAILER_BYTES
    const trailer = Buffer.alloc(RECORD_TRAILER_BYTES)
    let crc = 0
    for (let pos = 0; pos < size; pos += chunk) {
      const c = await dev.read(p.block, p.offset + pos, Math.min(chunk, size - pos))
      if (pos === 0) {
        const h = decodeRecordHeader(c, 0, { ...g, seq, offset: p.offset })
        ok &&= h?.type === TYPE_PIECE && h.b === (parts.length === 1 ? PART_WHOLE : i + 1) && h.a === loc.length && h.bodyLength === p.length && hex(h.key) === key
      }
      const from = Math.max(0, RECORD_HEADER_BYTES - pos)
      const to = Math.min(c.length, RECORD_HEADER_BYTES + p.length - pos)
      if (to > from) body(c.subarray(from, to))
      crc = crc32(c.subarray(0, Math.max(0, crcEnd - pos)), crc)
      if (crcEnd - pos < c.length) c.copy(trailer, Math.max(0, pos - crcEnd), Math.max(0, crcEnd - pos))
    }
    ok &&= trailer.readUInt32LE(0) === crc
  }
  return moved(state, key, loc, parts, before) ? 'moved' : ok
}

/**
 * The piece's bytes read where `loc` says they are: null when a part's
 * header does not name this piece, a record's commit CRC fails, or (with
 * `sha`) the body's SHA-256 does; 'moved' when a block was erased or the
 * piece moved while we read (look again).
 */
export async function readPiece (dev: CacheDevice, state: CacheState, key: string, loc: PieceLoc, sha: boolean): Promise<Buffer | null | 'moved'> {
  const bodies: Buffer[] = []
  const ok = await walk(dev, state, key, loc, Infinity, (b) => bodies.push(b))
  if (ok === 'moved') return ok
  const body = bodies.length === 1 ? bodies[0]! : Buffer.concat(bodies, loc.length)
  return ok && (!sha || hex(sha256(body)) === key) ? body : null
}

/** A running check of body bytes: CRC-32 or SHA-256, as hex. */
interface Digest { update (b: Buffer): void, hex (): string }

export interface PieceReader {
  reads: number
  /** The verified bytes, or undefined (absent; or damaged, and then dropped). */
  get (key: string): Promise<Buffer | undefined>
  /** Whether the stored copy is there and verifies (no side effects): a duplicate put must not trust a rotten copy. */
  check (key: string): Promise<boolean>
  /** Bytes [start, end) of a verified piece as a stream, or undefined when absent or damaged. */
  stream (key: string, range?: { start?: number, end?: number }): Promise<Readable | undefined>
}

/**
 * @param sha check the SHA-256 as well (verifyReads 'sha256')
 * @param drop a piece failed its check where `loc` says it is: drop it (and count it)
 */
export function createReader (dev: CacheDevice, state: CacheState, sha: boolean, drop: (key: string, loc: PieceLoc) => Promise<void>): PieceReader {
  const digest = (): Digest => {
    if (sha) {
      const h = createHash('sha256')
      return { update: (b) => { h.update(b) }, hex: () => h.digest('hex') }
    }
    let c = 0
    return { update: (b) => { c = crc32(b, c) }, hex: () => c.toString(16) }
  }

  /** The piece as the index has it: [bytes or null when damaged, where], or undefined when absent. */
  const load = async (key: string): Promise<[Buffer | null, PieceLoc] | undefined> => {
    for (let attempt = 0; attempt < CACHE_READ_RETRIES_MAX; attempt++) {
      const loc = state.index.get(key)
      if (loc === undefined) break
      const body = await readPiece(dev, state, key, loc, sha)
      if (body !== 'moved') return [body, loc]
    }
    return undefined
  }

  /**
   * Check the whole piece chunk by chunk (memory: one chunk): every header,
   * each record's commit CRC, and with sha the body's SHA-256. Returns what
   * the body digest must come to when it is streamed, or null (absent; or
   * damaged, and then dropped).
   */
  const verify = async (key: string): Promise<string | null> => {
    for (let attempt = 0; attempt < CACHE_READ_RETRIES_MAX; attempt++) {
      const loc = state.index.get(key)
      if (loc === undefined) break
      const body = digest()
      const ok = await walk(dev, state, key, loc, CACHE_READ_CHUNK_BYTES, (b) => body.update(b))
      if (ok === 'moved') continue
      const hex = body.hex()
      if (ok && (!sha || hex === key)) return hex
      await drop(key, loc)
      break
    }
    return null
  }

  /** Up to n bytes at `pos` of the piece, wherever it lives now (it may have moved since the last chunk). */
  const readBody = async (key: string, pos: number, n: number): Promise<Buffer> => {
    for (let attempt = 0; attempt < CACHE_READ_RETRIES_MAX; attempt++) {
      const loc = state.index.get(key)
      if (loc === undefined) break
      const second = pos >= loc.length1
      const p = partsOf(loc)[second ? 1 : 0]!
      const at = second ? pos - loc.length1 : pos
      const before = generations(state, [p])
      const chunk = await dev.read(p.block, p.offset + RECORD_HEADER_BYTES + at, Math.min(n, p.length - at))
      if (!moved(state, key, loc, [p], before)) return chunk
    }
    throw new CanopyError('CACHE_NOT_FOUND', `piece ${key} left while streamed`)
  }

  const reader: PieceReader = {
    reads: 0,
    async get (key) {
      const r = await load(key)
      if (r?.[0] == null) {
        if (r !== undefined) await drop(key, r[1])
        return undefined
      }
      state.touch(key)
      reader.reads++
      return r[0]
    },
    check: async (key) => (await load(key))?.[0] != null,
    async stream (key, range = {}) {
      const length = state.index.get(key)?.length
      if (length === undefined) return undefined
      const { start = 0, end = length } = range
      if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || start > end || end > length) {
        throw new CanopyError('INPUT_INVALID', `range ${start}-${end} outside ${length} bytes`)
      }
      const target = await verify(key)
      if (target === null) return undefined
      state.touch(key)
      reader.reads++
      const again = start === 0 && end === length ? digest() : null
      async function * chunks (): AsyncGenerator<Buffer> {
        let held: Buffer | null = null
        for (let pos = start; pos < end;) {
          const chunk = await readBody(key, pos, Math.min(CACHE_READ_CHUNK_BYTES, end - pos))
          again?.update(chunk)
          if (held !== null) yield held
          held = chunk
          pos += chunk.length
        }
        // The last chunk goes out only once the whole piece checked again.
        if (again !== null && again.hex() !== target) throw new CanopyError('CACHE_CORRUPT', `piece ${key} changed while streamed`)
        if (held !== null) yield held
      }
      return Readable.from(chunks(), { objectMode: false, highWaterMark: CACHE_READ_CHUNK_BYTES })
    }
  }
  return reader
}
