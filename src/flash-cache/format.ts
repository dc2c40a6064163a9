// The bytes on flash, and nothing else: encoders that size once and assert
// every byte was written, decoders that check length before every read and
// return null (never throw) on anything that is not a valid structure.
// FORMAT.md in this folder describes the same bytes for people; keep the two
// true together. All integers are little-endian.

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

export const RecordType = { piece: 1, tombstone: 2, checkpoint: 3, obituary: 4 } as const
/** A piece is one record, or two parts written back to back across a block boundary. */
export const PiecePart = { whole: 0, first: 1, second: 2 } as const
export type RecordTypeCode = typeof RecordType[keyof typeof RecordType]
const RECORD_TYPES: ReadonlySet<number> = new Set(Object.values(RecordType))

const ZERO_KEY = Buffer.alloc(HASH_BYTES)

export const alignUp = (n: number, unit: number): number => Math.ceil(n / unit) * unit
export const sha256 = (data: Uint8Array): Buffer => createHash('sha256').update(data).digest()

// ---- segment header: offset 0 of every block in the log ----------------------------------

export interface SegmentHeader { seq: number }

export function encodeSegmentHeader (seq: number, block: number, blockBytes: number, programBytes: number): Buffer {
  assert(Number.isInteger(seq) && seq >= 1 && seq <= 0xffffffff, 'segment seq is a u32 above 0')
  const out = Buffer.alloc(alignUp(SEGMENT_HEADER_BYTES, programBytes), 0)
  out.writeUInt32LE(MAGIC_SEGMENT, 0)
  out.writeUInt8(FORMAT_VERSION, 4)
  out.writeUInt8(1, 5) // kind: log segment
  out.writeUInt32LE(seq, 8)
  out.writeUInt32LE(block, 12)
  out.writeUInt32LE(blockBytes, 16)
  out.writeUInt32LE(crc32(out.subarray(0, 28)), 28)
  return out
}

export function decodeSegmentHeader (buf: Uint8Array, block: number, blockBytes: number): SegmentHeader | null {
  if (buf.length < SEGMENT_HEADER_BYTES) return null
  const b = Buffer.from(buf.buffer, buf.byteOffset, SEGMENT_HEADER_BYTES)
  if (b.readUInt32LE(0) !== MAGIC_SEGMENT || b.readUInt32LE(28) !== crc32(b.subarray(0, 28))) return null
  if (b.readUInt8(4) !== FORMAT_VERSION || b.readUInt8(5) !== 1) return null
  const seq = b.readUInt32LE(8)
  if (seq === 0 || b.readUInt32LE(12) !== block || b.readUInt32LE(16) !== blockBytes) return null
  return { seq }
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
  /** piece: 0 whole, 1 first part, 2 second part (PiecePart); tombstone: offset of the deleted copy; checkpoint: part index; obituary: dead block. */
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

/** A record buffer with the body in place and the header left blank (stampRecord fills it). */
export function allocRecord (body: Uint8Array, programBytes: number): Buffer {
  const out = Buffer.alloc(recordBytesFor(body.length, programBytes), 0)
  out.set(body, RECORD_HEADER_BYTES)
  return out
}

/** Write the header and the commit CRC (the last four bytes, over every byte before them). */
export function stampRecord (out: Buffer, f: RecordFields, bodyLength: number): Buffer {
  const total = out.length
  out.fill(0, 0, RECORD_HEADER_BYTES)
  out.writeUInt32LE(MAGIC_RECORD, 0)
  out.writeUInt8(FORMAT_VERSION, 4)
  out.writeUInt8(f.type, 5)
  out.writeUInt32LE(f.seq, 8)
  out.writeUInt32LE(f.offset, 12)
  out.writeUInt32LE(bodyLength, 16)
  out.writeUInt32LE(f.a ?? 0, 20)
  out.writeUInt32LE(f.b ?? 0, 24)
  const key = f.key ?? ZERO_KEY
  assert(key.length === HASH_BYTES, 'record key is 32 bytes')
  out.set(key, 28)
  out.writeUInt32LE(crc32(out.subarray(0, 60)), 60)
  out.writeUInt32LE(crc32(out.subarray(0, total - RECORD_TRAILER_BYTES)), total - RECORD_TRAILER_BYTES)
  return out
}

/** One record, ready to program: its last four bytes are the commit CRC over every byte before them. */
export function encodeRecord (f: RecordFields, body: Uint8Array, programBytes: number): Buffer {
  return stampRecord(allocRecord(body, programBytes), f, body.length)
}

/**
 * A record header at `at` in buf, checked against where it was found (its
 * segment's seq and its own offset: a header copied or misread elsewhere does
 * not pass). Does not look at the body.
 */
export function decodeRecordHeader (buf: Uint8Array, at: number, expect: { seq: number, offset: number, blockBytes: number, programBytes: number }): RecordHeader | null {
  if (at < 0 || at + RECORD_HEADER_BYTES > buf.length) return null
  const b = Buffer.from(buf.buffer, buf.byteOffset + at, RECORD_HEADER_BYTES)
  if (b.readUInt32LE(0) !== MAGIC_RECORD || b.readUInt32LE(60) !== crc32(b.subarray(0, 60))) return null
  const type = b.readUInt8(5)
  if (b.readUInt8(4) !== FORMAT_VERSION || !RECORD_TYPES.has(type) || b.readUInt16LE(6) !== 0) return null
  const seq = b.readUInt32LE(8)
  const offset = b.readUInt32LE(12)
  const bodyLength = b.readUInt32LE(16)
  if (seq !== expect.seq || offset !== expect.offset) return null
  const recordBytes = recordBytesFor(bodyLength, expect.programBytes)
  if (bodyLength > expect.blockBytes || offset + recordBytes > expect.blockBytes) return null
  return {
    type: type as RecordTypeCode,
    seq,
    offset,
    bodyLength,
    recordBytes,
    a: b.readUInt32LE(20),
    b: b.readUInt32LE(24),
    key: Buffer.from(b.subarray(28, 60))
  }
}

/** Whether a whole record (header at 0 of buf) carries its commit CRC: nothing torn, nothing rotten. */
export function recordCommitted (record: Uint8Array, h: RecordHeader): boolean {
  if (record.length < h.recordBytes) return false
  const r = Buffer.from(record.buffer, record.byteOffset, h.recordBytes)
  const end = h.recordBytes - RECORD_TRAILER_BYTES
  return r.readUInt32LE(end) === crc32(r.subarray(0, end))
}

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
  const out = Buffer.alloc(total, 0)
  out.writeUInt32LE(MAGIC_ANCHOR, 0)
  out.writeUInt8(FORMAT_VERSION, 4)
  out.writeUInt16LE(a.parts.length, 6)
  out.writeUInt32LE(a.revision, 8)
  out.writeUInt32LE(a.nextSeq, 12)
  out.writeUInt32LE(a.checkpointBytes, 16)
  out.writeUInt32LE(total, 20)
  assert(a.checkpointHash.length === HASH_BYTES, 'checkpoint hash is 32 bytes')
  out.set(a.checkpointHash, 24)
  let at = ANCHOR_FIXED_BYTES
  for (const p of a.parts) {
    out.writeUInt32LE(p.block, at)
    out.writeUInt32LE(p.seq, at + 4)
    out.writeUInt32LE(p.offset, at + 8)
    out.writeUInt32LE(p.bodyLength, at + 12)
    at += ANCHOR_PART_BYTES
  }
  assert(at + 4 <= total, 'anchor parts fit')
  out.writeUInt32LE(crc32(out.subarray(0, total - 4)), total - 4)
  return out
}

export function decodeAnchor (buf: Uint8Array, at: number, programBytes: number, partsMax: number): Anchor | null {
  if (at < 0 || at + ANCHOR_FIXED_BYTES + 4 > buf.length) return null
  const b = Buffer.from(buf.buffer, buf.byteOffset + at, buf.length - at)
  if (b.readUInt32LE(0) !== MAGIC_ANCHOR || b.readUInt8(4) !== FORMAT_VERSION) return null
  const count = b.readUInt16LE(6)
  const total = b.readUInt32LE(20)
  if (count > partsMax || total !== anchorBytesFor(count, programBytes) || total > b.length) return null
  if (b.readUInt32LE(total - 4) !== crc32(b.subarray(0, total - 4))) return null
  const parts: CheckpointPart[] = []
  for (let i = 0, p = ANCHOR_FIXED_BYTES; i < count; i++, p += ANCHOR_PART_BYTES) {
    parts.push({ block: b.readUInt32LE(p), seq: b.readUInt32LE(p + 4), offset: b.readUInt32LE(p + 8), bodyLength: b.readUInt32LE(p + 12) })
  }
  return {
    revision: b.readUInt32LE(8),
    nextSeq: b.readUInt32LE(12),
    checkpointBytes: b.readUInt32LE(16),
    checkpointHash: Buffer.from(b.subarray(24, 56)),
    parts,
    anchorBytes: total
  }
}

// ---- checkpoint: the index as of one log position, split over checkpoint records -------

export interface CheckpointPiece {
  key: Buffer
  /** The whole piece's length. */
  length: number
  /** First (or only) record and its body length. */
  block: number, seq: number, offset: number, length1: number
  /** Second part of a split piece; block2 = NO_BLOCK for a whole piece. */
  block2: number, seq2: number, offset2: number
}
export const NO_BLOCK = 0xffffffff
export interface CheckpointTomb { key: Buffer, block: number, seq: number, offset: number, targetSeq: number, targetOffset: number }
export interface CheckpointDead { deadBlock: number, deadSeq: number, block: number, seq: number, offset: number }

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

const COUNTER_FIELDS = ['bytesProgrammed', 'erases', 'evictions', 'corruptDropped', 'bytesAccepted'] as const

export function encodeCheckpoint (c: Checkpoint): Buffer {
  const total = checkpointBytesFor(c.pieces.length, c.tombs.length, c.dead.length)
  const out = Buffer.alloc(total, 0)
  out.writeUInt32LE(MAGIC_CHECKPOINT, 0)
  out.writeUInt8(FORMAT_VERSION, 4)
  out.writeUInt32LE(c.revision, 8)
  out.writeUInt32LE(c.logSeq, 12)
  out.writeUInt32LE(c.logOffset, 16)
  out.writeUInt32LE(c.nextSeq, 20)
  out.writeUInt32LE(c.pieces.length, 24)
  out.writeUInt32LE(c.tombs.length, 28)
  out.writeUInt32LE(c.dead.length, 32)
  COUNTER_FIELDS.forEach((f, i) => { out.writeBigUInt64LE(BigInt(Math.max(0, Math.floor(c.counters[f]))), 40 + 8 * i) })
  let at = CHECKPOINT_HEADER_BYTES
  for (const p of c.pieces) {
    out.set(p.key, at)
    out.writeUInt32LE(p.length, at + 32)
    out.writeUInt32LE(p.block, at + 36); out.writeUInt32LE(p.seq, at + 40); out.writeUInt32LE(p.offset, at + 44); out.writeUInt32LE(p.length1, at + 48)
    out.writeUInt32LE(p.block2, at + 52); out.writeUInt32LE(p.seq2, at + 56); out.writeUInt32LE(p.offset2, at + 60)
    at += CHECKPOINT_PIECE_BYTES
  }
  for (const t of c.tombs) {
    out.set(t.key, at)
    out.writeUInt32LE(t.block, at + 32); out.writeUInt32LE(t.seq, at + 36)
    out.writeUInt32LE(t.offset, at + 40); out.writeUInt32LE(t.targetSeq, at + 44); out.writeUInt32LE(t.targetOffset, at + 48)
    at += CHECKPOINT_TOMB_BYTES
  }
  for (const d of c.dead) {
    out.writeUInt32LE(d.deadBlock, at); out.writeUInt32LE(d.deadSeq, at + 4)
    out.writeUInt32LE(d.block, at + 8); out.writeUInt32LE(d.seq, at + 12); out.writeUInt32LE(d.offset, at + 16)
    at += CHECKPOINT_DEAD_BYTES
  }
  assert(at === total, 'checkpoint encoder wrote every byte')
  return out
}

export function decodeCheckpoint (buf: Uint8Array): Checkpoint | null {
  if (buf.length < CHECKPOINT_HEADER_BYTES) return null
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.length)
  if (b.readUInt32LE(0) !== MAGIC_CHECKPOINT || b.readUInt8(4) !== FORMAT_VERSION) return null
  const np = b.readUInt32LE(24)
  const nt = b.readUInt32LE(28)
  const nd = b.readUInt32LE(32)
  if (checkpointBytesFor(np, nt, nd) !== b.length) return null // also rejects trailing bytes
  const counters = {} as CheckpointCounters
  COUNTER_FIELDS.forEach((f, i) => { counters[f] = Number(b.readBigUInt64LE(40 + 8 * i)) })
  const pieces: CheckpointPiece[] = []
  const tombs: CheckpointTomb[] = []
  const dead: CheckpointDead[] = []
  let at = CHECKPOINT_HEADER_BYTES
  for (let i = 0; i < np; i++, at += CHECKPOINT_PIECE_BYTES) {
    pieces.push({
      key: Buffer.from(b.subarray(at, at + 32)),
      length: b.readUInt32LE(at + 32),
      block: b.readUInt32LE(at + 36), seq: b.readUInt32LE(at + 40), offset: b.readUInt32LE(at + 44), length1: b.readUInt32LE(at + 48),
      block2: b.readUInt32LE(at + 52), seq2: b.readUInt32LE(at + 56), offset2: b.readUInt32LE(at + 60)
    })
  }
  for (let i = 0; i < nt; i++, at += CHECKPOINT_TOMB_BYTES) {
    tombs.push({ key: Buffer.from(b.subarray(at, at + 32)), block: b.readUInt32LE(at + 32), seq: b.readUInt32LE(at + 36), offset: b.readUInt32LE(at + 40), targetSeq: b.readUInt32LE(at + 44), targetOffset: b.readUInt32LE(at + 48) })
  }
  for (let i = 0; i < nd; i++, at += CHECKPOINT_DEAD_BYTES) {
    dead.push({ deadBlock: b.readUInt32LE(at), deadSeq: b.readUInt32LE(at + 4), block: b.readUInt32LE(at + 8), seq: b.readUInt32LE(at + 12), offset: b.readUInt32LE(at + 16) })
  }
  return {
    revision: b.readUInt32LE(8),
    logSeq: b.readUInt32LE(12),
    logOffset: b.readUInt32LE(16),
    nextSeq: b.readUInt32LE(20),
    counters,
    pieces,
    tombs,
    dead
  }
}
