// The stream wire format: messages on the link's "stream" channel, one per
// link frame, first payload byte = type. Layouts, byte by byte, are in
// FORMAT.md and, as data, in LAYOUTS below (fields from protocol/link/bytes).
// Encoders return whole link frames (one allocation, every byte asserted
// written); decodeMessage checks the remaining length before every read,
// rejects trailing bytes and unknown types, and throws nothing but
// STREAM_MALFORMED.

import { SIGNATURE_BYTES } from '../crypto'
import { STREAM_CANDIDATES_MAX, STREAM_CHUNK_PACKETS_MAX, STREAM_DEPTH_MAX, STREAM_NAME_BYTES_MAX, STREAM_SIG_BATCH_CHUNKS_MAX, TS_PACKET_BYTES } from '../limits'
import {
  FRAME_HEADER_BYTES, LINK_CHANNELS, OFFSET, U16, U32, U8, blob, decodeTyped, encodeFields, hexId, list, raw, record, text, uint,
  type Field, type FramePool
} from '../protocol/link'
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

// ---- fields ---------------------------------------------------------------------------

const SID = hexId(STREAM_ID_BYTES)
const NID = hexId(NODE_ID_BYTES)
const SIGNATURE = raw(SIGNATURE_BYTES)
const CANDIDATES = list(STREAM_CANDIDATES_MAX, record('nodeId depth spare uptimeS port address', NID, U8, U8, U32, U16, text(ADDRESS_BYTES_MAX, /^[0-9A-Za-z.:%_-]*$/)))
/** Root..sender: never empty. */
const PATH = list(STREAM_DEPTH_MAX, NID, 1)
const REQUEST = record('requestId', U32)

/** CHUNK flags: known bits only. */
const FLAGS: Field<number> = [() => 1, (w, v) => w.uint(1, v), (r, what) => {
  const v = r.uint(1, what)
  if ((v & ~CHUNK_FLAGS_KNOWN) !== 0) r.fail(`${what}: unknown bits`)
  return v
}]

/** CHUNK packets: the rest of the payload, 1..STREAM_CHUNK_PACKETS_MAX whole TS packets; read as their count. */
const PACKETS: Field<any> = [(v: Uint8Array) => v.length, (w, v: Uint8Array) => w.bytes(v), (r, what) => {
  const n = r.remaining / TS_PACKET_BYTES
  if (!Number.isInteger(n) || n < 1 || n > STREAM_CHUNK_PACKETS_MAX) r.fail(`${what}: not 1..${STREAM_CHUNK_PACKETS_MAX} TS packets`)
  for (let i = 0; i < n; i++) if (r.bytes(TS_PACKET_BYTES, what)[0] !== TS_SYNC) r.fail(`${what}: no sync byte`)
  return n
}]

/** SIG hashes: count (read before) of them. */
const HASHES: Field<Uint8Array> = [(v) => v.length, (w, v) => w.bytes(v), (r, what, m) => r.bytes(m.count * HASH_BYTES, what)]

const SIG_HEAD = [SID, U32, uint(1, 1, STREAM_SIG_BATCH_CHUNKS_MAX), U32] as const
const END_HEAD = [SID, U32] as const

const RECORDS: Record<keyof typeof MSG, Field> = {
  chunk: record('flags streamId seq packets', FLAGS, SID, U32, PACKETS),
  sig: record('streamId firstSeq count bitrate hashesAt - signedEnd -', ...SIG_HEAD, OFFSET, HASHES, OFFSET, SIGNATURE),
  find: record('requestId name', U32, text(STREAM_NAME_BYTES_MAX, STREAM_NAME_PATTERN)),
  found: record('requestId rootId bitrate meta candidates', U32, NID, U32, blob(META_BYTES_MAX), CANDIDATES),
  notFound: REQUEST,
  join: record('streamId fromSeq capacity uptimeS flags formerParent', SID, U32, U8, U32, U8, NID),
  accept: record('streamId startSeq latencyMs path', SID, U32, U16, PATH),
  redirect: record('streamId reason candidates', SID, U8, CANDIDATES),
  refuse: record('streamId reason', SID, U8),
  leave: record('streamId', SID),
  end: record('streamId lastSeq signedEnd -', ...END_HEAD, OFFSET, SIGNATURE),
  status: record('streamId latencyMs path backups', SID, U16, PATH, CANDIDATES),
  report: record('streamId subtree capacity children uptimeS nextSeq spare', SID, U32, U8, U8, U32, U32, CANDIDATES),
  heartbeat: record('streamId', SID),
  gap: record('streamId fromSeq count', SID, U32, U16)
}
/** By type byte: the message's name and layout. */
const LAYOUTS: Record<number, readonly [string, Field]> = Object.fromEntries(Object.entries(RECORDS).map(([name, r]) => [MSG[name as keyof typeof MSG], [name, r]]))

/** A stream frame: the type byte, then the message's fields (an object by name, or an array by position). */
const encode = (type: number, m: unknown, pool?: FramePool): Buffer => encodeFields([U8, LAYOUTS[type]![1]], [type, m], LINK_CHANNELS.stream, pool)
/** Any stream message by name, its fields by position (tree.ts sends its control this way). */
export const encodeMessage = (type: keyof typeof MSG, values: readonly unknown[]): Buffer => encode(MSG[type], values)
/** Signed bytes (SIG, END bodies): the type byte, then the fields. */
const body = (type: number, fields: readonly Field[], values: unknown[]): Buffer => encodeFields([U8, ...fields], [type, ...values])

// ---- chunks and signatures (the hot path) --------------------------------------

/** A CHUNK frame holding a copy of the packets (from the pool when given: the caller holds its one reference). */
export const encodeChunk = (streamId: string, seq: number, flags: number, packets: Uint8Array, pool?: FramePool): Buffer =>
  encode(MSG.chunk, [flags, streamId, seq, packets], pool)

/** Offset, inside a CHUNK frame, of its first TS packet. */
export const CHUNK_PACKETS_OFFSET = FRAME_HEADER_BYTES + CHUNK_HEADER_BYTES

/** The bytes a SIG signature covers: everything from the type byte to the last hash. */
export const sigBody = (streamId: string, firstSeq: number, bitrate: number, hashes: readonly Uint8Array[]): Buffer =>
  body(MSG.sig, [...SIG_HEAD, HASHES], [streamId, firstSeq, hashes.length, bitrate, Buffer.concat(hashes)])

export const endBody = (streamId: string, lastSeq: number): Buffer => body(MSG.end, END_HEAD, [streamId, lastSeq])

/** A SIG or END frame: its body, then the signature over it. */
export const encodeSig = (signed: Uint8Array, signature: Uint8Array): Buffer =>
  encodeFields([raw(), SIGNATURE], [signed, signature], LINK_CHANNELS.stream)
export const encodeEnd = encodeSig

// ---- control ------------------------------------------------------------------------

export const encodeFind = (requestId: number, name: string): Buffer => encode(MSG.find, [requestId, name])
export const encodeFound = (requestId: number, rootId: string, bitrate: number, meta: Uint8Array, candidates: readonly Candidate[]): Buffer =>
  encode(MSG.found, [requestId, rootId, bitrate, meta, candidates])
export const encodeNotFound = (requestId: number): Buffer => encode(MSG.notFound, [requestId])
export const encodeJoin = (m: { streamId: string, fromSeq: number, capacity: number, uptimeS: number, flags: number, formerParent?: string }): Buffer => encode(MSG.join, m)
export const encodeAccept = (streamId: string, startSeq: number, latencyMs: number, path: readonly string[]): Buffer =>
  encode(MSG.accept, [streamId, startSeq, latencyMs, path])
export const encodeRedirect = (streamId: string, reason: number, candidates: readonly Candidate[]): Buffer => encode(MSG.redirect, [streamId, reason, candidates])
export const encodeRefuse = (streamId: string, reason: number): Buffer => encode(MSG.refuse, [streamId, reason])
export const encodeLeave = (streamId: string): Buffer => encode(MSG.leave, [streamId])
export const encodeHeartbeat = (streamId: string): Buffer => encode(MSG.heartbeat, [streamId])
export const encodeStatus = (streamId: string, latencyMs: number, path: readonly string[], backups: readonly Candidate[]): Buffer =>
  encode(MSG.status, [streamId, latencyMs, path, backups])
export const encodeReport = (m: { streamId: string, subtree: number, capacity: number, children: number, uptimeS: number, nextSeq: number, spare: readonly Candidate[] }): Buffer =>
  encode(MSG.report, m)
/** count is clamped to what a GAP carries (u16). */
export const encodeGap = (streamId: string, fromSeq: number, count: number): Buffer => encode(MSG.gap, [streamId, fromSeq, count])

// ---- decoding -------------------------------------------------------------------------

/**
 * Decode one stream-channel payload. `payload` is the frame without its
 * 5-byte link header; offsets returned (SIG hashes, signatures) are
 * relative to the payload.
 */
export const decodeMessage = (payload: Uint8Array): StreamMessage => decodeTyped(payload, 'STREAM_MALFORMED', LAYOUTS) as StreamMessage
