// Cuts an MPEG-TS byte stream (an HTTP body, stdin) into chunks of whole
// 188-byte packets. Where the cuts go (documented in FORMAT.md, "Start
// points"):
//
// * before every PAT, so a chunk that starts with a PAT carries the PSI a
//   decoder needs first (flag PSI);
// * a PSI chunk in which a keyframe starts on the video PID (or, with no
//   video, any audio PES start) is flagged KEY: a player can start there;
// * when a chunk reaches STREAM_CHUNK_PACKETS_MAX packets;
// * at the end of every input write, so a chunk never waits for more input
//   (latency) — except a PSI chunk shorter than PSI_HOLD_PACKETS that has no
//   keyframe yet, held until the next write so that the PAT, the PMT and the
//   keyframe that follow one another end up in one KEY chunk.
//
// Bytes that do not line up on a sync byte are skipped until two sync bytes
// 188 apart are found again (counted). Packets are gathered in one
// preallocated scratch buffer; the callback copies them out.

import { STREAM_CHUNK_PACKETS_MAX, TS_PACKET_BYTES } from '../limits'
import { PID_PAT, TS_SYNC, isAudioType, isVideoType, opensKeyframe, parsePat, parsePmt, pidOf, pusiOf } from './ts'

export const CHUNK_FLAGS = { key: 0x01, psi: 0x02 } as const
export const CHUNK_FLAGS_KNOWN = CHUNK_FLAGS.key | CHUNK_FLAGS.psi

/** A PSI chunk this short with no keyframe yet waits for the next write. */
const PSI_HOLD_PACKETS = 8

export interface ChunkerCounters { packets: number, chunks: number, keyChunks: number, skippedBytes: number }

export type TsChunker = ReturnType<typeof createTsChunker>

export function createTsChunker (onChunk: (packets: Buffer, flags: number) => void, packetsMax = STREAM_CHUNK_PACKETS_MAX) {
  const counters: ChunkerCounters = { packets: 0, chunks: 0, keyChunks: 0, skippedBytes: 0 }
  const scratch = Buffer.alloc(packetsMax * TS_PACKET_BYTES)
  let count = 0
  let flags = 0
  const carry = Buffer.alloc(TS_PACKET_BYTES)
  let carryFill = 0
  const pmtPids = new Set<number>()
  /** PID of the video stream, or of the first audio stream when there is no video; and its stream_type. */
  let keyPid = -1
  let keyType = 0

  function packet (src: Uint8Array, at: number): void {
    counters.packets++
    const pid = pidOf(src, at)
    const pusi = pusiOf(src, at)
    if (pid === PID_PAT && pusi) {
      emit() // a chunk starts at every PAT
      flags = CHUNK_FLAGS.psi
      pmtPids.clear()
      for (const p of parsePat(src, at)) pmtPids.add(p)
    } else if (pmtPids.has(pid) && pusi) {
      const streams = parsePmt(src, at)
      const pick = streams.find((s) => isVideoType(s.type)) ?? streams.find((s) => isAudioType(s.type))
      if (pick !== undefined) { keyPid = pick.pid; keyType = pick.type }
    } else if (pid === keyPid && flags === CHUNK_FLAGS.psi && (isAudioType(keyType) ? pusi : opensKeyframe(src, at, keyType))) {
      flags |= CHUNK_FLAGS.key // audio only: every PES start is a start point
    }
    scratch.set(src.subarray(at, at + TS_PACKET_BYTES), count * TS_PACKET_BYTES)
    if (++count === packetsMax) emit()
  }

  function emit (): void {
    if (count === 0) return
    counters.chunks++
    if ((flags & CHUNK_FLAGS.key) !== 0) counters.keyChunks++
    const f = flags
    const n = count
    count = 0
    flags = 0
    onChunk(scratch.subarray(0, n * TS_PACKET_BYTES), f)
  }

  return {
    counters,

    push (data: Uint8Array): void {
      let at = 0
      while (at < data.length) {
        if (carryFill > 0) {
          const take = Math.min(TS_PACKET_BYTES - carryFill, data.length - at)
          carry.set(data.subarray(at, at + take), carryFill)
          carryFill += take
          at += take
          if (carryFill < TS_PACKET_BYTES) break
          carryFill = 0
          packet(carry, 0)
        } else if (data[at] !== TS_SYNC) {
          // Skip to two sync bytes 188 apart.
          const from = at++
          while (at < data.length && (data[at] !== TS_SYNC || (at + TS_PACKET_BYTES < data.length && data[at + TS_PACKET_BYTES] !== TS_SYNC))) at++
          counters.skippedBytes += at - from
        } else if (data.length - at < TS_PACKET_BYTES) {
          carry.set(data.subarray(at), 0)
          carryFill = data.length - at
          break
        } else {
          packet(data, at)
          at += TS_PACKET_BYTES
        }
      }
      if (flags !== CHUNK_FLAGS.psi || count >= PSI_HOLD_PACKETS) emit()
    },

    /** The input ended: emit what is pending (a partial packet is dropped). */
    end (): void {
      counters.skippedBytes += carryFill
      carryFill = 0
      emit()
    }
  }
}
