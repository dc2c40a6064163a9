// MPEG-TS parsing: PSI tables, keyframe detection, continuity counting.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { ts } from '../../src/stream'
import { AUDIO_PID, TsGen, VIDEO_PID } from '../helpers/ts'

const packets = (b: Buffer): Buffer[] => Array.from({ length: b.length / 188 }, (_, i) => b.subarray(i * 188, (i + 1) * 188))

test('PAT lists the PMT, the PMT lists video and audio', () => {
  const g = new TsGen()
  const [pat, pmt, video] = packets(g.frame(3))
  assert.equal(ts.parsePat(pat!), [0x1000])
  assert.equal(ts.parsePmt(pmt!), [{ type: 0x1b, pid: VIDEO_PID }, { type: 0x0f, pid: AUDIO_PID }])
  assert.ok(ts.isVideoType(0x1b) && ts.isAudioType(0x0f) && !ts.isVideoType(0x0f))
  assert.is(ts.pidOf(video!), VIDEO_PID)
  assert.ok(ts.randomAccessOf(video!))
  assert.ok(ts.opensKeyframe(video!, 0, 0x1b))
  const next = packets(g.frame(3))[0]!
  assert.not.ok(ts.opensKeyframe(next, 0, 0x1b), 'a P frame is not a start point')
})

test('without the random access indicator a keyframe is found by its NAL type (H.264 IDR, H.265 IRAP, MPEG-2 sequence header)', () => {
  const mk = (es: number[]): Buffer => {
    const p = Buffer.alloc(188, 0xff)
    p[0] = 0x47; p[1] = 0x41; p[2] = 0x00; p[3] = 0x10
    Buffer.from([0, 0, 1, 0xe0, 0, 0, 0x80, 0, 0, ...es]).copy(p, 4)
    return p
  }
  assert.ok(ts.opensKeyframe(mk([0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x65]), 0, 0x1b), 'AUD then IDR')
  assert.not.ok(ts.opensKeyframe(mk([0, 0, 0, 1, 0x41]), 0, 0x1b))
  assert.ok(ts.opensKeyframe(mk([0, 0, 1, 0x26, 0x01]), 0, 0x24), 'H.265 IDR_W_RADL')
  assert.not.ok(ts.opensKeyframe(mk([0, 0, 1, 0x02, 0x01]), 0, 0x24))
  assert.ok(ts.opensKeyframe(mk([0, 0, 1, 0xb3]), 0, 0x02))
})

test('malformed adaptation fields and sections never read out of bounds', () => {
  const p = Buffer.alloc(188, 0xff)
  p[0] = 0x47; p[1] = 0x40; p[2] = 0; p[3] = 0x30; p[4] = 250
  assert.is(ts.payloadStart(p), -1)
  assert.equal(ts.parsePat(p), [])
  p[3] = 0x10; p[4] = 200
  assert.equal(ts.parsePat(p), [])
  assert.equal(ts.parsePmt(p), [])
})

test('continuity: counts missing packets per PID, allows one duplicate, ignores null packets', () => {
  const g = new TsGen()
  const all = packets(Buffer.concat([g.frame(5), g.frame(5), g.frame(5)]))
  const ok = new ts.ContinuityChecker()
  for (const p of all) ok.check(p)
  assert.is(ok.errors, 0)
  const dup = new ts.ContinuityChecker()
  for (const p of [...all.slice(0, 4), all[3]!, ...all.slice(4)]) dup.check(p)
  assert.is(dup.errors, 0, 'one duplicate is allowed')
  const lossy = new ts.ContinuityChecker()
  const videoIdx = all.map((p, i) => (ts.pidOf(p) === VIDEO_PID ? i : -1)).filter((i) => i >= 0)
  const dropped = new Set([videoIdx[3]!, videoIdx[4]!, videoIdx[9]!])
  for (const [i, p] of all.entries()) if (!dropped.has(i)) lossy.check(p)
  assert.is(lossy.missing, 3)
  assert.is(lossy.errors, 2)
})

test.run()
