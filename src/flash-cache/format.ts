// The bytes on flash, and nothing else: encoders that size once and assert
// every byte was written, decoders that check length before every read and
// return null (never throw) on anything that is not a valid structure.
// FORMAT.md in this folder describes the same bytes for people; keep the two
// true together. All integers are little-endian u32 unless FORMAT.md says
// otherwise.

import { createHash } from 'node:crypto'
import { assert } from '../errors'
import { crc32 } from './crc32'

export const FORMAT_VERSION = 1

const MAGIC_SEGMENT = 0x53504e43 // "CNPS"
const MAGIC_RECORD = 0x52504e43 // "CNPR"
const MAGIC_ANCHOR = 0x41504e43 // "CNPA"
const MAGIC_CHECKPOINT = 0x4b504e43 // "CNPK"

export const SEGMENT_HEADER_BYTES = 32
export const RECORD_HEADER_BYTES = 64
export const RECORD_TRAILER_BYTES = 4
export const HASH_BYTES = 32
export const ANCHOR_FIXED_BYTES = 56
export const ANCHOR_PART_BYTES = 16
export const CHECKPOINT_HEADER_BYTES = 128
export const CHECKPOINT_PIECE_BYTES = 64
export const CHECKPOINT_TOMB_BYTES = 52
export const CHECKPOINT_DEAD_BYTES = 24

/** Record types (plain constants: the minifier writes them as numbers). */
export const TYPE_PIECE = 1
export const TYPE_TOMBSTONE = 2
export const TYPE_CHECKPOINT = 3
export const TYPE_OBITUARY = 4
export const RecordType = { piece: TYPE_PIECE, tombstone: TYPE_TOMBSTONE, checkpoint: TYPE_CHECKPOINT, obituary: TYPE_OBITUARY } as const
export type RecordTypeCode = typeof RecordType[keyof typeof RecordType]
/** A piece is one record, or two parts written back to back across a block boundary: field b of its record(s). */
export const PART_WHOLE = 0
export const PART_FIRST = 1
export const PART_SECOND = 2

/** A key as bytes, and back. */
export const keyBytes = (key: string): Buffer => Buffer.from(key, 'hex')
export const hex = (b: Buffer): string => b.toString('hex')

export const alignUp = (n: number, unit: number): number => Math.ceil(n / unit) * unit
export const sha256 = (data: Uint8Array): Buffer => createHash('sha256').update(data).digest()

/** A Buffer view of any bytes (no copy). */
const view = (b: Uint8Array, at = 0, n = b.length - at): Buffer => Buffer.from(b.buffer, b.byteOffset + at, n)
/** Write u32s one after another from `at`; returns where they end. */
function put32 (b: Buffer, at: number, values: number[]): number {
  for (const v of values) { b.writeUInt32LE(v, at); at += 4 }
  return at
}
const get32 = (b: Buffer, at: number): number => b.readUInt32LE(at)
/** The CRC-32 of b[0, end), stored at `end`. */
const seal = (b: Buffer, end: number): number => b.writeUInt32LE(crc32(b.subarray(0, end)), end)
const sealOk = (b: Buffer, end: number): boolean => get32(b, end) === crc32(b.subarray(0, end))

// ---- segment header: offset 0 of every block in the log ----------------------------------

export function encodeSegmentHeader (seq: number, block: number, blockBytes: number, programBytes: number): Buffer {
  assert(Number.isInteger(seq) && seq >= 1 && seq <= 0xffffffff, 'seq in 1..2^32-1')
  const out = Buffer.alloc(alignUp(SEGMENT_HEADER_BYTES, programBytes))
  put32(out, 0, [MAGIC_SEGMENT, 0x0101 /* version 1, kind 1: log segment */, seq, block, blockBytes])
  seal(out, 28)
  return out
}

/** The segment's seq, or null: a header only counts in the block, and on the geometry, it names. */
export function decodeSegmentHeader (buf: Uint8Array, block: number, blockBytes: number): { seq: number } | null {
  if (buf.length < SEGMENT_HEADER_BYTES) return null
  const b = view(buf, 0, SEGMENT_HEADER_BYTES)
  const seq = get32(b, 8)
  const ok = get32(b, 0) === MAGIC_SEGMENT && sealOk(b, 28) && b.readUInt16LE(4) === 0x0101 &&
    seq !== 0 && get32(b, 12) === block && get32(b, 16) === blockBytes
  return ok ? { seq } : null
}

// ---- records: appended after the segment header --------------------------------------------

export interface RecordFields {
  type: RecordTypeCode
  /** Sequence number of the segment the record is written into. */
  seq: number
  /** Offset of the record inside its block. */
  offset: number
  /** piece: the whole piece's length; tombstone: seq of the deleted copy's segment; checkpoint: revision; obituary: dead seq. */
  a?: number
  /** piece: 0 whole, 1 first part, 2 second part (PART_*); tombstone: offset of the deleted copy; checkpoint: part index; obituary: dead block. */
  b?: number
  /** piece and tombstone: the piece's SHA-256. */
  key?: Uint8Array
}

export interface RecordHeader extends Required<Omit<RecordFields, 'key'>> {
  key: Buffer
  bodyLength: number
  /** Header, body, padding and trailer: what the record occupies. */
  recordBytes: number
}

export const recordBytesFor = (bodyLength: number, programBytes: number): number =>
  alignUp(RECORD_HEADER_BYTES + bodyLength + RECORD_TRAILER_BYTES, programBytes)

/** The largest body that fits an empty segment. */
export const bodyBytesMax = (blockBytes: number, programBytes: number): number =>
  blockBytes - alignUp(SEGMENT_HEADER_BYTES, programBytes) - RECORD_HEADER_BYTES - RECORD_TRAILER_BYTES

/** A record buffer with the body in place, its padding zero and the header left for stampRecord. */
export function allocRecord (body: Uint8Array, programBytes: number): Buffer {
  const out = Buffer.allocUnsafe(recordBytesFor(body.length, programBytes))
  out.set(body, RECORD_HEADER_BYTES)
  return out.fill(0, RECORD_HEADER_BYTES + body.length)
}

/** Write the header and the commit CRC (the last four bytes, over every byte before them). */
export function stampRecord (out: Buffer, f: RecordFields, bodyLength: number): Buffer {
  out.set(f.key ?? Buffer.alloc(HASH_BYTES), 28)
  put32(out, 0, [MAGIC_RECORD, FORMAT_VERSION | f.type << 8, f.seq, f.offset, bodyLength, f.a ?? 0, f.b ?? 0])
  seal(out, 60)
  seal(out, out.length - RECORD_TRAILER_BYTES)
  return out
}

/** One record, ready to program: its last four bytes are the commit CRC over every byte before them. */
export const encodeRecord = (f: RecordFields, body: Uint8Array, programBytes: number): Buffer =>
  stampRecord(allocRecord(body, programBytes), f, body.length)

/**
 * A record header at `at` in buf, checked against where it was found (its
 * segment's seq and its own offset: a header copied or misread elsewhere does
 * not pass). Does not look at the body.
 */
export function decodeRecordHeader (buf: Uint8Array, at: number, expect: { seq: number, offset: number, blockBytes: number, programBytes: number }): RecordHeader | null {
  if (at < 0 || at + RECORD_HEADER_BYTES > buf.length) return null
  const b = view(buf, at, RECORD_HEADER_BYTES)
  const type = b[5]!
  const bodyLength = get32(b, 16)
  const recordBytes = recordBytesFor(bodyLength, expect.programBytes)
  if (get32(b, 0) !== MAGIC_RECORD || !sealOk(b, 60) || b[4] !== FORMAT_VERSION || type < 1 || type > 4 || b.readUInt16LE(6) !== 0 ||
    get32(b, 8) !== expect.seq || get32(b, 12) !== expect.offset ||
    bodyLength > expect.blockBytes || expect.offset + recordBytes > expect.blockBytes) return null
  return { type: type as RecordTypeCode, seq: expect.seq, offset: expect.offset, bodyLength, recordBytes, a: get32(b, 20), b: get32(b, 24), key: Buffer.from(b.subarray(28, 60)) }
}

/** Whether a whole record (header at 0 of buf) carries its commit CRC: nothing torn, nothing rotten. */
export const recordCommitted = (record: Uint8Array, h: { recordBytes: number }): boolean =>
  record.length >= h.recordBytes && sealOk(view(record, 0, h.recordBytes), h.recordBytes - RECORD_TRAILER_BYTES)

export const recordBody = (record: Buffer, h: RecordHeader): Buffer =>
  record.subarray(RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + h.bodyLength)

// ---- anchors: appended in the two slot blocks, the newest valid one wins ---------------

export interface CheckpointPart { block: number, seq: number, offset: number, bodyLength: number }

export interface Anchor {
  revision: number
  nextSeq: number
  checkpointBytes: number
  checkpointHash: Buffer
  parts: CheckpointPart[]
  /** Bytes the anchor occupies in its slot. */
  anchorBytes: number
}

export const anchorBytesFor = (parts: number, programBytes: number): number =>
  alignUp(ANCHOR_FIXED_BYTES + ANCHOR_PART_BYTES * parts + 4, programBytes)

export function encodeAnchor (a: Omit<Anchor, 'anchorBytes'>, programBytes: number): Buffer {
  const total = anchorBytesFor(a.parts.length, programBytes)
  const out = Buffer.alloc(total)
  put32(out, 0, [MAGIC_ANCHOR, FORMAT_VERSION | a.parts.length << 16, a.revision, a.nextSeq, a.checkpointBytes, total])
  out.set(a.checkpointHash, 24)
  put32(out, ANCHOR_FIXED_BYTES, a.parts.flatMap((p) => [p.block, p.seq, p.offset, p.bodyLength]))
  seal(out, total - 4)
  return out
}

export function decodeAnchor (buf: Uint8Array, at: number, programBytes: number, partsMax: number): Anchor | null {
  if (at < 0 || at + ANCHOR_FIXED_BYTES + 4 > buf.length) return null
  const b = view(buf, at)
  const count = b.readUInt16LE(6)
  const total = get32(b, 20)
  if (get32(b, 0) !== MAGIC_ANCHOR || b[4] !== FORMAT_VERSION || count > partsMax ||
    total !== anchorBytesFor(count, programBytes) || total > b.length || !sealOk(b, total - 4)) return null
  const parts: CheckpointPart[] = []
  for (let p = ANCHOR_FIXED_BYTES; parts.length < count; p += ANCHOR_PART_BYTES) {
    parts.push({ block: get32(b, p), seq: get32(b, p + 4), offset: get32(b, p + 8), bodyLength: get32(b, p + 12) })
  }
  return { revision: get32(b, 8), nextSeq: get32(b, 12), checkpointBytes: get32(b, 16), checkpointHash: Buffer.from(b.subarray(24, 56)), parts, anchorBytes: total }
}

// ---- checkpoint: the index as of one log position, split over checkpoint records -------

/**
 * Checkpoint entries, field by field in their byte order (FORMAT.md). A piece:
 * its first (or only) record, and the second part of a split piece (block2
 * NO_BLOCK for a whole one).
 */
export type CheckpointPiece = [key: Buffer, length: number, block: number, seq: number, offset: number, length1: number, block2: number, seq2: number, offset2: number]
export type CheckpointTomb = [key: Buffer, block: number, seq: number, offset: number, targetSeq: number, targetOffset: number]
export type CheckpointDead = [deadBlock: number, deadSeq: number, block: number, seq: number, offset: number]
export const NO_BLOCK = 0xffffffff

export interface CheckpointCounters {
  bytesProgrammed: number
  erases: number
  evictions: number
  corruptDropped: number
  bytesAccepted: number
}

export interface Checkpoint {
  revision: number
  /** Everything before (logSeq, logOffset) is in this checkpoint; replay starts there. */
  logSeq: number
  logOffset: number
  nextSeq: number
  counters: CheckpointCounters
  /** Least recently used first. */
  pieces: CheckpointPiece[]
  tombs: CheckpointTomb[]
  dead: CheckpointDead[]
}

export const checkpointBytesFor = (pieces: number, tombs: number, dead: number): number =>
  CHECKPOINT_HEADER_BYTES + pieces * CHECKPOINT_PIECE_BYTES + tombs * CHECKPOINT_TOMB_BYTES + dead * CHECKPOINT_DEAD_BYTES

export const COUNTER_FIELDS = ['bytesProgrammed', 'erases', 'evictions', 'corruptDropped', 'bytesAccepted'] as const
/** The three entry tables: entry bytes, and whether a 32-byte key leads (the rest are u32s, zero padded). */
const TABLES = [['pieces', CHECKPOINT_PIECE_BYTES, true], ['tombs', CHECKPOINT_TOMB_BYTES, true], ['dead', CHECKPOINT_DEAD_BYTES, false]] as const
type Entry = Array<Buffer | number>

export function encodeCheckpoint (c: Checkpoint): Buffer {
  const total = checkpointBytesFor(c.pieces.length, c.tombs.length, c.dead.length)
  const out = Buffer.alloc(total)
  put32(out, 0, [MAGIC_CHECKPOINT, FORMAT_VERSION, c.revision, c.logSeq, c.logOffset, c.nextSeq, c.pieces.length, c.tombs.length, c.dead.length])
  COUNTER_FIELDS.forEach((f, i) => { out.writeBigUInt64LE(BigInt(Math.max(0, Math.floor(c.counters[f]))), 40 + 8 * i) })
  let at = CHECKPOINT_HEADER_BYTES
  for (const [name, size, keyed] of TABLES) {
    for (const e of c[name] as Entry[]) {
      if (keyed) out.set(e[0] as Buffer, at)
      put32(out, keyed ? at + HASH_BYTES : at, (keyed ? e.slice(1) : e) as number[])
      at += size
    }
  }
  assert(at === total, 'checkpoint fully written')
  return out
}

/** Fields per entry of each table. */
const FIELDS = [8, 5, 5]

export function decodeCheckpoint (buf: Uint8Array): Checkpoint | null {
  if (buf.length < CHECKPOINT_HEADER_BYTES) return null
  const b = view(buf)
  const counts = [24, 28, 32].map((at) => get32(b, at))
  // The length must match the counts exactly: this also rejects trailing bytes.
  if (get32(b, 0) !== MAGIC_CHECKPOINT || b[4] !== FORMAT_VERSION || checkpointBytesFor(counts[0]!, counts[1]!, counts[2]!) !== b.length) return null
  const c = { revision: get32(b, 8), logSeq: get32(b, 12), logOffset: get32(b, 16), nextSeq: get32(b, 20), counters: {} } as Checkpoint
  COUNTER_FIELDS.forEach((f, i) => { c.counters[f] = Number(b.readBigUInt64LE(40 + 8 * i)) })
  let at = CHECKPOINT_HEADER_BYTES
  TABLES.forEach(([name, size, keyed], t) => {
    const list: Entry[] = []
    for (let i = 0; i < counts[t]!; i++, at += size) {
      const e: Entry = keyed ? [Buffer.from(b.subarray(at, at + HASH_BYTES))] : []
      for (let j = 0; j < FIELDS[t]!; j++) e.push(get32(b, at + (keyed ? HASH_BYTES : 0) + 4 * j))
      list.push(e)
    }
    (c as unknown as Record<string, Entry[]>)[name] = list
  })
  return c
}
