// A synthetic MPEG-TS source for tests and benchmarks: PAT and PMT before
// every keyframe, a video PES per frame (random_access_indicator on
// keyframes), an audio packet per frame, correct continuity counters and
// CRCs. Every packet carries its own index and a timestamp in its last 12
// bytes, so a reader can check order and measure latency exactly.

const PMT_PID = 0x1000
export const VIDEO_PID = 0x100
export const AUDIO_PID = 0x101

function crc32mpeg (b: Uint8Array, from: number, to: number): number {
  let crc = 0xffffffff
  for (let i = from; i < to; i++) {
    crc ^= b[i]! << 24
    for (let k = 0; k < 8; k++) crc = (crc & 0x80000000) !== 0 ? ((crc << 1) ^ 0x04c11db7) : (crc << 1)
  }
  return crc >>> 0
}

export class TsGen {
  index = 0
  frames = 0
  private readonly cc = new Map<number, number>()

  constructor (readonly keyEvery = 25, readonly now: () => number = () => performance.now()) {}

  private header (p: Buffer, pid: number, pusi: boolean, af: boolean): void {
    const cc = this.cc.get(pid) ?? 0
    this.cc.set(pid, (cc + 1) & 0x0f)
    p[0] = 0x47
    p[1] = (pusi ? 0x40 : 0) | (pid >> 8)
    p[2] = pid & 0xff
    p[3] = (af ? 0x30 : 0x10) | cc
  }

  private stamp (p: Buffer): Buffer {
    p.writeUInt32BE(this.index++ >>> 0, 176)
    p.writeDoubleBE(this.now(), 180)
    return p
  }

  private psi (pid: number, tableId: number, body: number[]): Buffer {
    const p = Buffer.alloc(188, 0xff)
    this.header(p, pid, true, false)
    p[4] = 0 // pointer_field
    const sec = [tableId, 0xb0, 0, ...body]
    sec[2] = body.length + 4 // section_length covers body + CRC
    Buffer.from(sec).copy(p, 5)
    const crc = crc32mpeg(p, 5, 5 + sec.length)
    p.writeUInt32BE(crc, 5 + sec.length)
    return this.stamp(p)
  }

  pat (): Buffer { return this.psi(0, 0x00, [0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xe0 | (PMT_PID >> 8), PMT_PID & 0xff]) }

  pmt (): Buffer {
    return this.psi(PMT_PID, 0x02, [0x00, 0x01, 0xc1, 0x00, 0x00, 0xe0 | (VIDEO_PID >> 8), VIDEO_PID & 0xff, 0xf0, 0x00,
      0x1b, 0xe0 | (VIDEO_PID >> 8), VIDEO_PID & 0xff, 0xf0, 0x00,
      0x0f, 0xe0 | (AUDIO_PID >> 8), AUDIO_PID & 0xff, 0xf0, 0x00])
  }

  /** One video frame of `packets` packets (keyframes get PAT/PMT first) and one audio packet. */
  frame (packets: number): Buffer {
    const key = this.frames % this.keyEvery === 0
    this.frames++
    const out: Buffer[] = []
    if (key) out.push(this.pat(), this.pmt())
    for (let i = 0; i < packets; i++) {
      const p = Buffer.alloc(188, 0xaa)
      const start = i === 0
      this.header(p, VIDEO_PID, start, start)
      if (start) {
        p[4] = 1 // adaptation_field_length
        p[5] = key ? 0x40 : 0x00 // random_access_indicator
        Buffer.from([0, 0, 1, 0xe0, 0, 0, 0x80, 0, 0, 0, 0, 0, 1, key ? 0x65 : 0x41]).copy(p, 6)
      }
      out.push(this.stamp(p))
    }
    const a = Buffer.alloc(188, 0xbb)
    this.header(a, AUDIO_PID, true, false)
    Buffer.from([0, 0, 1, 0xc0, 0, 0, 0x80, 0, 0]).copy(a, 4)
    out.push(this.stamp(a))
    return Buffer.concat(out)
  }
}

/** Index and timestamp a TsGen packet carries. */
export const packetIndex = (p: Uint8Array, at = 0): number => Buffer.from(p.buffer, p.byteOffset + at + 176, 4).readUInt32BE(0)
export const packetTime = (p: Uint8Array, at = 0): number => Buffer.from(p.buffer, p.byteOffset + at + 180, 8).readDoubleBE(0)
