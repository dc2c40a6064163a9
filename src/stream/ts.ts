// Just enough MPEG-TS (ISO/IEC 13818-1) to cut a stream at good places and
// check it: packet header fields (§2.4.3.2), the adaptation field's
// random_access_indicator (§2.4.3.4), PAT and PMT sections (§2.4.4.3,
// §2.4.4.8), and the start of a keyframe inside a PES payload when an encoder
// does not set the indicator. Every read is bounds-checked: input is untrusted.

import { TS_PACKET_BYTES } from '../limits'

export const TS_SYNC = 0x47
export const PID_PAT = 0x0000
export const PID_NULL = 0x1fff

export const pidOf = (p: Uint8Array, at = 0): number => ((p[at + 1]! & 0x1f) << 8) | p[at + 2]!
export const pusiOf = (p: Uint8Array, at = 0): boolean => (p[at + 1]! & 0x40) !== 0
export const ccOf = (p: Uint8Array, at = 0): number => p[at + 3]! & 0x0f
/** adaptation_field_control: 1 payload only, 2 adaptation only, 3 both. */
export const afcOf = (p: Uint8Array, at = 0): number => (p[at + 3]! >> 4) & 0x03
export const hasPayload = (p: Uint8Array, at = 0): boolean => (afcOf(p, at) & 1) !== 0

/** The adaptation field's flags byte, or 0 when there is none. */
function afFlags (p: Uint8Array, at: number): number {
  if ((afcOf(p, at) & 2) === 0) return 0
  const len = p[at + 4]!
  return len >= 1 && len <= 183 ? p[at + 5]! : 0
}

export const randomAccessOf = (p: Uint8Array, at = 0): boolean => (afFlags(p, at) & 0x40) !== 0
export const discontinuityOf = (p: Uint8Array, at = 0): boolean => (afFlags(p, at) & 0x80) !== 0

/** Offset of the payload inside the packet, or -1 when it has none or the adaptation field is malformed. */
export function payloadStart (p: Uint8Array, at = 0): number {
  const afc = afcOf(p, at)
  if ((afc & 1) === 0) return -1
  if ((afc & 2) === 0) return 4
  const start = 5 + p[at + 4]!
  return start < TS_PACKET_BYTES ? start : -1
}

/** A PSI section inside a PUSI packet: [start, end) of the section after pointer_field, or null. */
function section (p: Uint8Array, at: number): { start: number, end: number } | null {
  const ps = payloadStart(p, at)
  if (ps < 0 || !pusiOf(p, at)) return null
  const start = ps + 1 + p[at + ps]!
  if (start + 3 > TS_PACKET_BYTES) return null
  const length = ((p[at + start + 1]! & 0x0f) << 8) | p[at + start + 2]!
  // Sections longer than one packet are not followed; PAT/PMT of ordinary streams fit one.
  const end = Math.min(TS_PACKET_BYTES, start + 3 + length - 4) // without the CRC
  return end > start + 3 ? { start: at + start, end: at + end } : null
}

/** Program map PIDs listed by a PAT packet. */
export function parsePat (p: Uint8Array, at = 0): number[] {
  const s = section(p, at)
  if (s === null || p[s.start] !== 0x00) return []
  const pids: number[] = []
  for (let i = s.start + 8; i + 4 <= s.end; i += 4) {
    const program = (p[i]! << 8) | p[i + 1]!
    const pid = ((p[i + 2]! & 0x1f) << 8) | p[i + 3]!
    if (program !== 0) pids.push(pid)
  }
  return pids
}

export interface PmtStream { type: number, pid: number }

/** Elementary streams listed by a PMT packet. */
export function parsePmt (p: Uint8Array, at = 0): PmtStream[] {
  const s = section(p, at)
  if (s === null || p[s.start] !== 0x02 || s.start + 12 > s.end) return []
  const infoLength = ((p[s.start + 10]! & 0x0f) << 8) | p[s.start + 11]!
  const out: PmtStream[] = []
  for (let i = s.start + 12 + infoLength; i + 5 <= s.end;) {
    const type = p[i]!
    const pid = ((p[i + 1]! & 0x1f) << 8) | p[i + 2]!
    const esInfo = ((p[i + 3]! & 0x0f) << 8) | p[i + 4]!
    out.push({ type, pid })
    i += 5 + esInfo
  }
  return out
}

/** stream_type values of video codecs (H.222 table 2-34 and registered extensions). */
const VIDEO_TYPES = new Set([0x01, 0x02, 0x10, 0x1b, 0x20, 0x24, 0x33, 0x42, 0xd1, 0xea])
const AUDIO_TYPES = new Set([0x03, 0x04, 0x0f, 0x11, 0x1c, 0x81, 0x87])
export const isVideoType = (t: number): boolean => VIDEO_TYPES.has(t)
export const isAudioType = (t: number): boolean => AUDIO_TYPES.has(t)

/**
 * Does this PES-start packet open a keyframe? Encoders mark it with the
 * random_access_indicator (ffmpeg does); without it, look at the first
 * start codes in the packet: H.264 IDR/SPS (nal 5, 7), H.265 IRAP/VPS/SPS
 * (nal 16-21, 32, 33), MPEG-1/2 sequence header (00 00 01 B3).
 */
export function opensKeyframe (p: Uint8Array, at: number, streamType: number): boolean {
  if (!pusiOf(p, at)) return false
  if (randomAccessOf(p, at)) return true
  const ps = payloadStart(p, at)
  if (ps < 0 || ps + 9 > TS_PACKET_BYTES) return false
  const pes = at + ps
  if (p[pes] !== 0 || p[pes + 1] !== 0 || p[pes + 2] !== 1) return false
  const es = pes + 9 + p[pes + 8]!
  const end = at + TS_PACKET_BYTES
  for (let i = es; i + 3 < end; i++) {
    if (p[i] !== 0 || p[i + 1] !== 0 || p[i + 2] !== 1) continue
    const b = p[i + 3]!
    if (streamType === 0x1b) {
      const nal = b & 0x1f
      if (nal === 5 || nal === 7) return true
    } else if (streamType === 0x24) {
      const nal = (b >> 1) & 0x3f
      if ((nal >= 16 && nal <= 21) || nal === 32 || nal === 33) return true
    } else if (streamType === 0x01 || streamType === 0x02) {
      if (b === 0xb3) return true
    }
  }
  return false
}

/**
 * Counts missing packets per PID from continuity counters (§2.4.3.3): a
 * packet with payload advances the counter by one mod 16; one duplicate is
 * allowed; a discontinuity_indicator resets. A gap of k means at least k
 * packets were lost (exactly k when fewer than 16 went missing).
 */
export class ContinuityChecker {
  readonly last = new Map<number, number>()
  missing = 0
  errors = 0
  packets = 0

  check (p: Uint8Array, at = 0): void {
    this.packets++
    const pid = pidOf(p, at)
    if (pid === PID_NULL) return
    const cc = ccOf(p, at)
    const prev = this.last.get(pid)
    if (!hasPayload(p, at)) {
      if (prev !== undefined && cc !== prev && !discontinuityOf(p, at)) { this.errors++; this.last.set(pid, cc) }
      return
    }
    this.last.set(pid, cc)
    if (prev === undefined || discontinuityOf(p, at) || cc === prev) return
    const gap = (cc - prev - 1 + 16) & 0x0f
    if (gap !== 0) { this.errors++; this.missing += gap }
  }
}
