// The stream wire format: messages on the link's "stream" channel, one per
// link frame, first payload byte = type. Layouts, byte by byte, are in
// FORMAT.md. Encoders return whole link frames (one allocation, every byte
// asserted written); decodeMessage checks the remaining length before every
// read, rejects trailing bytes and unknown types, and throws nothing but
// STREAM_MALFORMED.

import { SIGNATURE_BYTES } from '../crypto'
import { CanopyError } from '../errors'
import { STREAM_CANDIDATES_MAX, STREAM_CHUNK_PACKETS_MAX, STREAM_DEPTH_MAX, STREAM_NAME_BYTES_MAX, STREAM_SIG_BATCH_CHUNKS_MAX, TS_PACKET_BYTES } from '../limits'
import { ByteReader, ByteWriter, FRAME_HEADER_BYTES, LINK_CHANNELS, allocFrame, textBytes, type FramePool } from '../protocol/link'
import { CHUNK_FLAGS_KNOWN } from './chunker'
import { META_BYTES_MAX, STREAM_ID_BYTES, STREAM_NAME_PATTERN } from './meta'
import { TS_SYNC } from './ts'

export const MSG = {
  chunk: 0x01,
  sig: 0x02,
  find: 0x10,
  found: 0x11,
  notFound: 0x12,
  join: 0x20,
  accept: 0x21,
  redirect: 0x22,
  refuse: 0x23,
  leave: 0x24,
  end: 0x25,
  status: 0x30,
  report: 0x31,
  heartbeat: 0x32,
  gap: 0x33
} as const

export const NODE_ID_BYTES = 16
export const HASH_BYTES = 32
/** Type, flags, stream id, seq: then the packets. */
export const CHUNK_HEADER_BYTES = 1 + 1 + STREAM_ID_BYTES + 4
/** JOIN.fromSeq asking the parent to start at its newest KEY chunk. */
export const FROM_NEWEST_KEY = 0xffffffff
export const ADDRESS_BYTES_MAX = 64

export const REFUSE = { loop: 1, notReady: 2, full: 3, unknownStream: 4, depth: 5, blacklisted: 6 } as const
export const REDIRECT = { full: 1, move: 2, displaced: 3 } as const
export const JOIN_FLAGS = { orphan: 0x01 } as const

/** A node a joiner may try: its id, place in the tree, spare child slots, age, and where to dial it. */
export interface Candidate {
  nodeId: string
  depth: number
  spare: number
  uptimeS: number
  /** Link port and address as seen by the node that reported it ("" / 0: ask the directory). */
  port: number
  address: string
}

export type StreamMessage =
  | { type: 'chunk', flags: number, streamId: string, seq: number, packets: number }
  | { type: 'sig', streamId: string, firstSeq: number, count: number, bitrate: number, hashesAt: number, signedEnd: number }
  | { type: 'find', requestId: number, name: string }
  | { type: 'found', requestId: number, rootId: string, bitrate: number, meta: Uint8Array, candidates: Candidate[] }
  | { type: 'notFound', requestId: number }
  | { type: 'join', streamId: string, fromSeq: number, capacity: number, uptimeS: number, flags: number, formerParent: string }
  | { type: 'accept', streamId: string, startSeq: number, latencyMs: number, path: string[] }
  | { type: 'redirect', streamId: string, reason: number, candidates: Candidate[] }
  | { type: 'refuse', streamId: string, reason: number }
  | { type: 'leave', streamId: string }
  | { type: 'end', streamId: string, lastSeq: number, signedEnd: number }
  | { type: 'status', streamId: string, latencyMs: number, path: string[], backups: Candidate[] }
  | { type: 'report', streamId: string, subtree: number, capacity: number, children: number, uptimeS: number, nextSeq: number, spare: Candidate[] }
  | { type: 'heartbeat', streamId: string }
  | { type: 'gap', streamId: string, fromSeq: number, count: number }

const ZERO_ID = '0'.repeat(NODE_ID_BYTES * 2)
const frame = (size: number): ByteWriter => new ByteWriter(allocFrame(LINK_CHANNELS.stream, size), FRAME_HEADER_BYTES)
const u16 = (v: number): number => Math.max(0, Math.min(0xffff, Math.round(v)))
const u32 = (v: number): number => Math.max(0, Math.min(0xffffffff, Math.round(v)))

// ---- chunks and signatures (the hot path) --------------------------------------

/** A CHUNK frame holding a copy of the packets (from the pool when given: the caller holds its one reference). */
export function encodeChunk (streamId: string, seq: number, flags: number, packets: Uint8Array, pool?: FramePool): Buffer {
  const size = CHUNK_HEADER_BYTES + packets.length
  const buf = pool !== undefined ? pool.take(FRAME_HEADER_BYTES + size) : allocFrame(LINK_CHANNELS.stream, size)
  buf.writeUInt32BE(1 + size, 0)
  buf[4] = LINK_CHANNELS.stream
  return new ByteWriter(buf, FRAME_HEADER_BYTES).u8(MSG.chunk).u8(flags).hex(streamId, STREAM_ID_BYTES).u32(seq).bytes(packets).done()
}

/** Offset, inside a CHUNK frame, of its first TS packet. */
export const CHUNK_PACKETS_OFFSET = FRAME_HEADER_BYTES + CHUNK_HEADER_BYTES

/** The bytes a SIG signature covers: everything from the type byte to the last hash. */
export function sigBody (streamId: string, firstSeq: number, bitrate: number, hashes: readonly Uint8Array[]): Buffer {
  const w = new ByteWriter(Buffer.allocUnsafe(1 + STREAM_ID_BYTES + 4 + 1 + 4 + hashes.length * HASH_BYTES))
    .u8(MSG.sig).hex(streamId, STREAM_ID_BYTES).u32(firstSeq).u8(hashes.length).u32(u32(bitrate))
  for (const h of hashes) w.bytes(h)
  return w.done()
}

export function encodeSig (body: Uint8Array, signature: Uint8Array): Buffer {
  return frame(body.length + SIGNATURE_BYTES).bytes(body).bytes(signature).done()
}

export function endBody (streamId: string, lastSeq: number): Buffer {
  return new ByteWriter(Buffer.allocUnsafe(1 + STREAM_ID_BYTES + 4)).u8(MSG.end).hex(streamId, STREAM_ID_BYTES).u32(lastSeq).done()
}

export function encodeEnd (body: Uint8Array, signature: Uint8Array): Buffer {
  return frame(body.length + SIGNATURE_BYTES).bytes(body).bytes(signature).done()
}

// ---- control ------------------------------------------------------------------------

const candidateBytes = (c: Candidate): number => NODE_ID_BYTES + 1 + 1 + 4 + 2 + textBytes(c.address)
const candidatesBytes = (cs: readonly Candidate[]): number => 1 + cs.reduce((n, c) => n + candidateBytes(c), 0)

function writeCandidates (w: ByteWriter, cs: readonly Candidate[]): ByteWriter {
  const list = cs.slice(0, STREAM_CANDIDATES_MAX)
  w.u8(list.length)
  for (const c of list) w.hex(c.nodeId, NODE_ID_BYTES).u8(c.depth).u8(c.spare).u32(u32(c.uptimeS)).u16(c.port).text(c.address)
  return w
}

function writePath (w: ByteWriter, path: readonly string[]): ByteWriter {
  w.u8(path.length)
  for (const id of path) w.hex(id, NODE_ID_BYTES)
  return w
}

const clampCandidates = (cs: readonly Candidate[]): Candidate[] =>
  cs.slice(0, STREAM_CANDIDATES_MAX).map((c) => (Buffer.byteLength(c.address) > ADDRESS_BYTES_MAX ? { ...c, address: '' } : c))

export function encodeFind (requestId: number, name: string): Buffer {
  return frame(1 + 4 + textBytes(name)).u8(MSG.find).u32(requestId).text(name).done()
}

export function encodeFound (requestId: number, rootId: string, bitrate: number, meta: Uint8Array, candidates: readonly Candidate[]): Buffer {
  const cs = clampCandidates(candidates)
  const w = frame(1 + 4 + NODE_ID_BYTES + 4 + 2 + meta.length + candidatesBytes(cs))
    .u8(MSG.found).u32(requestId).hex(rootId, NODE_ID_BYTES).u32(u32(bitrate)).u16(meta.length).bytes(meta)
  return writeCandidates(w, cs).done()
}

export function encodeNotFound (requestId: number): Buffer {
  return frame(5).u8(MSG.notFound).u32(requestId).done()
}

export function encodeJoin (m: { streamId: string, fromSeq: number, capacity: number, uptimeS: number, flags: number, formerParent?: string }): Buffer {
  return frame(1 + STREAM_ID_BYTES + 4 + 1 + 4 + 1 + NODE_ID_BYTES)
    .u8(MSG.join).hex(m.streamId, STREAM_ID_BYTES).u32(m.fromSeq).u8(Math.min(255, m.capacity)).u32(u32(m.uptimeS)).u8(m.flags)
    .hex(m.formerParent ?? ZERO_ID, NODE_ID_BYTES).done()
}

export function encodeAccept (streamId: string, startSeq: number, latencyMs: number, path: readonly string[]): Buffer {
  const w = frame(1 + STREAM_ID_BYTES + 4 + 2 + 1 + path.length * NODE_ID_BYTES)
    .u8(MSG.accept).hex(streamId, STREAM_ID_BYTES).u32(startSeq).u16(u16(latencyMs))
  return writePath(w, path).done()
}

export function encodeRedirect (streamId: string, reason: number, candidates: readonly Candidate[]): Buffer {
  const cs = clampCandidates(candidates)
  const w = frame(1 + STREAM_ID_BYTES + 1 + candidatesBytes(cs)).u8(MSG.redirect).hex(streamId, STREAM_ID_BYTES).u8(reason)
  return writeCandidates(w, cs).done()
}

export function encodeRefuse (streamId: string, reason: number): Buffer {
  return frame(1 + STREAM_ID_BYTES + 1).u8(MSG.refuse).hex(streamId, STREAM_ID_BYTES).u8(reason).done()
}

export function encodeLeave (streamId: string): Buffer {
  return frame(1 + STREAM_ID_BYTES).u8(MSG.leave).hex(streamId, STREAM_ID_BYTES).done()
}

export function encodeHeartbeat (streamId: string): Buffer {
  return frame(1 + STREAM_ID_BYTES).u8(MSG.heartbeat).hex(streamId, STREAM_ID_BYTES).done()
}

export function encodeStatus (streamId: string, latencyMs: number, path: readonly string[], backups: readonly Candidate[]): Buffer {
  const cs = clampCandidates(backups)
  const w = frame(1 + STREAM_ID_BYTES + 2 + 1 + path.length * NODE_ID_BYTES + candidatesBytes(cs))
    .u8(MSG.status).hex(streamId, STREAM_ID_BYTES).u16(u16(latencyMs))
  return writeCandidates(writePath(w, path), cs).done()
}

export function encodeReport (m: { streamId: string, subtree: number, capacity: number, children: number, uptimeS: number, nextSeq: number, spare: readonly Candidate[] }): Buffer {
  const cs = clampCandidates(m.spare)
  const w = frame(1 + STREAM_ID_BYTES + 4 + 1 + 1 + 4 + 4 + candidatesBytes(cs))
    .u8(MSG.report).hex(m.streamId, STREAM_ID_BYTES).u32(u32(m.subtree)).u8(Math.min(255, m.capacity)).u8(Math.min(255, m.children))
    .u32(u32(m.uptimeS)).u32(m.nextSeq)
  return writeCandidates(w, cs).done()
}

export function encodeGap (streamId: string, fromSeq: number, count: number): Buffer {
  return frame(1 + STREAM_ID_BYTES + 4 + 2).u8(MSG.gap).hex(streamId, STREAM_ID_BYTES).u32(fromSeq).u16(count).done()
}

// ---- decoding -------------------------------------------------------------------------

function readCandidates (r: ByteReader, what: string): Candidate[] {
  const n = r.u8(`${what} count`)
  if (n > STREAM_CANDIDATES_MAX) r.fail(`${what}: ${n} entries, more than ${STREAM_CANDIDATES_MAX}`)
  const out: Candidate[] = []
  for (let i = 0; i < n; i++) {
    const nodeId = r.hex(NODE_ID_BYTES, `${what} node id`)
    const depth = r.u8(`${what} depth`)
    const spare = r.u8(`${what} spare`)
    const uptimeS = r.u32(`${what} uptime`)
    const port = r.u16(`${what} port`)
    const address = r.text(ADDRESS_BYTES_MAX, `${what} address`)
    if (!/^[0-9A-Za-z.:%_-]*$/.test(address)) r.fail(`${what} address has odd characters`)
    out.push({ nodeId, depth, spare, uptimeS, port, address })
  }
  return out
}

function readPath (r: ByteReader): string[] {
  const n = r.u8('path length')
  if (n > STREAM_DEPTH_MAX) r.fail(`path of ${n} nodes exceeds ${STREAM_DEPTH_MAX}`)
  const path: string[] = []
  for (let i = 0; i < n; i++) path.push(r.hex(NODE_ID_BYTES, 'path node id'))
  return path
}

/**
 * Decode one stream-channel payload. `payload` is the frame without its
 * 5-byte link header; offsets returned (CHUNK packets, SIG hashes) are
 * relative to the payload.
 */
export function decodeMessage (payload: Uint8Array): StreamMessage {
  const r = new ByteReader(payload, 'STREAM_MALFORMED')
  const type = r.u8('message type')
  switch (type) {
    case MSG.chunk: {
      const flags = r.u8('chunk flags')
      if ((flags & ~CHUNK_FLAGS_KNOWN) !== 0) r.fail(`chunk flags 0x${flags.toString(16)} has unknown bits`)
      const streamId = r.hex(STREAM_ID_BYTES, 'chunk stream id')
      const seq = r.u32('chunk seq')
      const bytes = r.remaining
      const packets = bytes / TS_PACKET_BYTES
      if (!Number.isInteger(packets) || packets < 1 || packets > STREAM_CHUNK_PACKETS_MAX) r.fail(`chunk of ${bytes} bytes is not 1..${STREAM_CHUNK_PACKETS_MAX} whole TS packets`)
      const at = r.offset
      for (let i = 0; i < packets; i++) if (payload[at + i * TS_PACKET_BYTES] !== TS_SYNC) r.fail(`chunk packet ${i} has no sync byte`)
      return { type: 'chunk', flags, streamId, seq, packets }
    }
    case MSG.sig: {
      const streamId = r.hex(STREAM_ID_BYTES, 'sig stream id')
      const firstSeq = r.u32('sig first seq')
      const count = r.u8('sig count')
      if (count < 1 || count > STREAM_SIG_BATCH_CHUNKS_MAX) r.fail(`sig batch of ${count} hashes outside 1..${STREAM_SIG_BATCH_CHUNKS_MAX}`)
      const bitrate = r.u32('sig bitrate')
      const hashesAt = r.offset
      r.bytes(count * HASH_BYTES, 'sig hashes')
      const signedEnd = r.offset
      r.bytes(SIGNATURE_BYTES, 'sig signature')
      r.done('sig')
      return { type: 'sig', streamId, firstSeq, count, bitrate, hashesAt, signedEnd }
    }
    case MSG.find: {
      const requestId = r.u32('find request id')
      const name = r.text(STREAM_NAME_BYTES_MAX, 'find name')
      if (!STREAM_NAME_PATTERN.test(name)) r.fail('find name has characters outside A-Z a-z 0-9 . _ -')
      r.done('find')
      return { type: 'find', requestId, name }
    }
    case MSG.found: {
      const requestId = r.u32('found request id')
      const rootId = r.hex(NODE_ID_BYTES, 'found root id')
      const bitrate = r.u32('found bitrate')
      const metaLength = r.u16('found meta length')
      if (metaLength > META_BYTES_MAX) r.fail(`found meta of ${metaLength} bytes exceeds ${META_BYTES_MAX}`)
      const meta = r.bytes(metaLength, 'found meta')
      const candidates = readCandidates(r, 'found candidates')
      r.done('found')
      return { type: 'found', requestId, rootId, bitrate, meta, candidates }
    }
    case MSG.notFound: {
      const requestId = r.u32('not-found request id')
      r.done('not-found')
      return { type: 'notFound', requestId }
    }
    case MSG.join: {
      const streamId = r.hex(STREAM_ID_BYTES, 'join stream id')
      const fromSeq = r.u32('join from seq')
      const capacity = r.u8('join capacity')
      const uptimeS = r.u32('join uptime')
      const flags = r.u8('join flags')
      const formerParent = r.hex(NODE_ID_BYTES, 'join former parent')
      r.done('join')
      return { type: 'join', streamId, fromSeq, capacity, uptimeS, flags, formerParent }
    }
    case MSG.accept: {
      const streamId = r.hex(STREAM_ID_BYTES, 'accept stream id')
      const startSeq = r.u32('accept start seq')
      const latencyMs = r.u16('accept latency')
      const path = readPath(r)
      if (path.length === 0) r.fail('accept with an empty path')
      r.done('accept')
      return { type: 'accept', streamId, startSeq, latencyMs, path }
    }
    case MSG.redirect: {
      const streamId = r.hex(STREAM_ID_BYTES, 'redirect stream id')
      const reason = r.u8('redirect reason')
      const candidates = readCandidates(r, 'redirect candidates')
      r.done('redirect')
      return { type: 'redirect', streamId, reason, candidates }
    }
    case MSG.refuse: {
      const streamId = r.hex(STREAM_ID_BYTES, 'refuse stream id')
      const reason = r.u8('refuse reason')
      r.done('refuse')
      return { type: 'refuse', streamId, reason }
    }
    case MSG.leave:
    case MSG.heartbeat: {
      const streamId = r.hex(STREAM_ID_BYTES, 'stream id')
      r.done(type === MSG.leave ? 'leave' : 'heartbeat')
      return { type: type === MSG.leave ? 'leave' : 'heartbeat', streamId }
    }
    case MSG.end: {
      const streamId = r.hex(STREAM_ID_BYTES, 'end stream id')
      const lastSeq = r.u32('end last seq')
      const signedEnd = r.offset
      r.bytes(SIGNATURE_BYTES, 'end signature')
      r.done('end')
      return { type: 'end', streamId, lastSeq, signedEnd }
    }
    case MSG.status: {
      const streamId = r.hex(STREAM_ID_BYTES, 'status stream id')
      const latencyMs = r.u16('status latency')
      const path = readPath(r)
      if (path.length === 0) r.fail('status with an empty path')
      const backups = readCandidates(r, 'status backups')
      r.done('status')
      return { type: 'status', streamId, latencyMs, path, backups }
    }
    case MSG.report: {
      const streamId = r.hex(STREAM_ID_BYTES, 'report stream id')
      const subtree = r.u32('report subtree')
      const capacity = r.u8('report capacity')
      const children = r.u8('report children')
      const uptimeS = r.u32('report uptime')
      const nextSeq = r.u32('report next seq')
      const spare = readCandidates(r, 'report spare')
      r.done('report')
      return { type: 'report', streamId, subtree, capacity, children, uptimeS, nextSeq, spare }
    }
    case MSG.gap: {
      const streamId = r.hex(STREAM_ID_BYTES, 'gap stream id')
      const fromSeq = r.u32('gap from seq')
      const count = r.u16('gap count')
      r.done('gap')
      return { type: 'gap', streamId, fromSeq, count }
    }
    default:
      throw new CanopyError('STREAM_MALFORMED', `unknown stream message type 0x${type.toString(16)}`)
  }
}
