// The replay window (a bitmap below the top) against a plain reference model, restored
// windows after a restart, and the bounded table of senders.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createSeededRandom } from '../../../src/hal'
import { REPLAY_WINDOW_COUNT } from '../../../src/limits'
import { replayTable, replayWindow, type ReplayWindow } from '../../../src/protocol'
import { testSeed } from '../../helpers/seed'

const offer = (w: ReplayWindow, c: number): boolean => {
  if (!w.check(c)) return false
  w.commit(c)
  return true
}

test('in order, duplicates, reordering inside the window, too old', () => {
  const w = replayWindow()
  assert.ok(!offer(w, 0), 'counter 0 is never valid')
  for (let c = 1; c <= 10; c++) assert.ok(offer(w, c))
  assert.ok(!offer(w, 10) && !offer(w, 3), 'replays')
  assert.ok(offer(w, 20))
  assert.ok(offer(w, 15) && offer(w, 12), 'late but inside the window')
  assert.ok(!offer(w, 15), 'late and already seen')
  assert.ok(offer(w, 20 + REPLAY_WINDOW_COUNT + 5))
  assert.ok(!offer(w, 21), 'fell out of the window')
  assert.ok(offer(w, 20 + REPLAY_WINDOW_COUNT + 4), 'just inside')
  assert.ok(offer(w, 2 ** 52), 'a huge jump')
  assert.ok(!offer(w, 2 ** 52) && offer(w, 2 ** 52 - 1))
})

test('property: the window agrees with a plain model (seen set + floor)', () => {
  const rnd = createSeededRandom(testSeed('replay model'))
  for (let run = 0; run < 40; run++) {
    const w = replayWindow()
    const seen = new Set<number>()
    let top = 0
    let next = 1 + rnd.int(1000) * 64
    for (let i = 0; i < 3000; i++) {
      const k = rnd.int(10)
      let c: number
      if (k < 5) c = next++
      else if (k < 7) c = Math.max(1, top - rnd.int(REPLAY_WINDOW_COUNT + 40))
      else if (k < 8) { next += rnd.int(3 * REPLAY_WINDOW_COUNT); c = next++ }
      else if (k < 9) c = Math.max(1, top - rnd.int(8))
      else c = top
      const expected = c > 0 && !seen.has(c) && c + REPLAY_WINDOW_COUNT > top
      assert.is(offer(w, c), expected, `run ${run} step ${i}: counter ${c}, top ${top}`)
      if (expected) { seen.add(c); top = Math.max(top, c) }
    }
  }
})

test('a restored window refuses everything up to its floor and accepts reordering above it', () => {
  const w = replayWindow(1000)
  assert.ok(!offer(w, 1000) && !offer(w, 999) && !offer(w, 980))
  assert.ok(offer(w, 1003) && offer(w, 1001) && offer(w, 1002), 'above the floor, in any order')
  const edge = replayWindow(1023) // the floor is the last bit of its word
  assert.ok(!offer(edge, 1023) && offer(edge, 1025) && offer(edge, 1024))
})

test('the table is bounded; peers outlive strangers; marks restore', () => {
  const peers = new Set(['p1', 'p2'])
  const t = replayTable(4, (k) => peers.has(k))
  t.commit('p1', 5); t.commit('p2', 5); t.commit('s1', 5); t.commit('s2', 5)
  t.commit('s3', 5)
  assert.is(t.size, 4)
  assert.is(t.evictions, 1)
  assert.ok(!t.check('p1', 5) && !t.check('p2', 5), 'peers kept')
  assert.ok(t.check('s1', 5), 'the least recent stranger was forgotten')
  const marks = t.marks(10)
  assert.equal(marks.map((m) => m.key), ['s3', 's2', 'p2', 'p1'], 'newest first')
  const fresh = replayTable(4)
  fresh.restore(marks)
  assert.ok(!fresh.check('p1', 5) && fresh.check('p1', 6))
})

test.run()
