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

export class TsChunker {
  readonly counters: ChunkerCounters = { packets: 0, chunks: 0, keyChunks: 0, skippedBytes: 0 }
  private readonly scratch: Buffer
  private count = 0
  private flags = 0
  private readonly carry = Buffer.alloc(TS_PACKET_BYTES)
  private carryFill = 0
  private readonly pmtPids = new Set<number>()
  /** PID of the video stream, or of the first audio stream when there is no video; and its stream_type. */
  private keyPid = -1
  private keyType = 0

  constructor (private readonly onChunk: (packets: Buffer, flags: number) => void, private readonly packetsMax = STREAM_CHUNK_PACKETS_MAX) {
    this.scratch = Buffer.alloc(packetsMax * TS_PACKET_BYTES)
  }

  push (data: Uint8Array): void {
    let at = 0
    while (at < data.length) {
      if (this.carryFill > 0) {
        const take = Math.min(TS_PACKET_BYTES - this.carryFill, data.length - at)
        this.carry.set(data.subarray(at, at + take), this.carryFill)
        this.carryFill += take
        at += take
        if (this.carryFill < TS_PACKET_BYTES) break
        this.carryFill = 0
        this.packet(this.carry, 0)
        continue
      }
      if (data[at] !== TS_SYNC) {
        at = this.resync(data, at)
        continue
      }
      if (data.length - at < TS_PACKET_BYTES) {
        this.carry.set(data.subarray(at), 0)
        this.carryFill = data.length - at
        break
      }
      this.packet(data, at)
      at += TS_PACKET_BYTES
    }
    const holding = this.flags === CHUNK_FLAGS.psi && this.count < PSI_HOLD_PACKETS
    if (!holding) this.emit()
  }

  /** The input ended: emit what is pending (a partial packet is dropped). */
  end (): void {
    if (this.carryFill > 0) this.counters.skippedBytes += this.carryFill
    this.carryFill = 0
    this.emit()
  }

  private resync (data: Uint8Array, from: number): number {
    let i = from + 1
    while (i < data.length && (data[i] !== TS_SYNC || (i + TS_PACKET_BYTES < data.length && data[i + TS_PACKET_BYTES] !== TS_SYNC))) i++
    this.counters.skippedBytes += i - from
    return i
  }

  private packet (src: Uint8Array, at: number): void {
    this.counters.packets++
    const pid = pidOf(src, at)
    if (pid === PID_PAT && pusiOf(src, at)) {
      this.emit() // a chunk starts at every PAT
      this.flags = CHUNK_FLAGS.psi
      this.pmtPids.clear()
      for (const p of parsePat(src, at)) this.pmtPids.add(p)
    } else if (this.pmtPids.has(pid) && pusiOf(src, at)) {
      this.learnPmt(src, at)
    } else if (pid === this.keyPid && this.flags === CHUNK_FLAGS.psi && opensKeyframe(src, at, isAudioType(this.keyType) ? -1 : this.keyType)) {
      this.flags |= CHUNK_FLAGS.key
    } else if (pid === this.keyPid && this.flags === CHUNK_FLAGS.psi && isAudioType(this.keyType) && pusiOf(src, at)) {
      this.flags |= CHUNK_FLAGS.key // audio only: every PES start is a start point
    }
    this.scratch.set(src.subarray(at, at + TS_PACKET_BYTES), this.count * TS_PACKET_BYTES)
    this.count++
    if (this.count === this.packetsMax) this.emit()
  }

  private learnPmt (src: Uint8Array, at: number): void {
    const streams = parsePmt(src, at)
    const video = streams.find((s) => isVideoType(s.type))
    const audio = streams.find((s) => isAudioType(s.type))
    const pick = video ?? audio
    if (pick !== undefined) { this.keyPid = pick.pid; this.keyType = pick.type }
  }

  private emit (): void {
    if (this.count === 0) return
    this.counters.chunks++
    if ((this.flags & CHUNK_FLAGS.key) !== 0) this.counters.keyChunks++
    const flags = this.flags
    const n = this.count
    this.count = 0
    this.flags = 0
    this.onChunk(this.scratch.subarray(0, n * TS_PACKET_BYTES), flags)
  }
}
