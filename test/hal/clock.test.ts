import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SimClock, TimerGroup, createRealClock, type Clock } from '../../src/hal'

// One contract, both twins: order of timers, cancel, intervals, sleep.
async function contract (clock: Clock, wait: (ms: number) => Promise<void>): Promise<void> {
  const seen: string[] = []
  const t0 = clock.nowMs()
  clock.setTimeout(() => seen.push('b'), 20)
  clock.setTimeout(() => seen.push('a'), 10)
  const c = clock.setTimeout(() => seen.push('cancelled'), 15)
  c.cancel()
  let ticks = 0
  const iv = clock.setInterval(() => { ticks++ }, 10)
  await wait(35)
  iv.cancel()
  const after = ticks
  await wait(25)
  assert.equal(seen, ['a', 'b'])
  assert.ok(ticks >= 2 && ticks === after, `interval fired ${ticks} times and stopped when cancelled`)
  assert.ok(clock.nowMs() - t0 >= 35, 'monotonic time advanced')
  assert.ok(clock.wallMs() > Date.UTC(2000, 0, 1), 'wall time is a date')
}

test('real clock keeps the timer contract', async () => {
  const clock = createRealClock()
  await contract(clock, (ms) => clock.sleep(ms))
})

test('simulated clock keeps the timer contract', async () => {
  const clock = new SimClock()
  await contract(clock, (ms) => clock.advance(ms))
})

test('simulated clock fires in due order, ties by creation, only when advanced', async () => {
  const clock = new SimClock()
  const seen: number[] = []
  for (let i = 0; i < 5; i++) clock.setTimeout(() => seen.push(i), 100)
  clock.setTimeout(() => seen.push(-1), 50)
  await clock.advance(49)
  assert.equal(seen, [])
  await clock.advance(1)
  assert.equal(seen, [-1])
  await clock.advance(50)
  assert.equal(seen, [-1, 0, 1, 2, 3, 4])
  assert.is(clock.nowMs(), 100)
  assert.is(clock.pending, 0)
})

test('simulated clock: a timer set by a timer fires in the same advance when due', async () => {
  const clock = new SimClock()
  const seen: number[] = []
  clock.setTimeout(() => { seen.push(clock.nowMs()); clock.setTimeout(() => seen.push(clock.nowMs()), 10) }, 10)
  await clock.advance(25)
  assert.equal(seen, [10, 20])
})

test('simulated clock: sleep resolves and promise chains settle between timers', async () => {
  const clock = new SimClock()
  const seen: string[] = []
  void (async () => { await clock.sleep(10); seen.push('slept'); await Promise.resolve(); seen.push('chained') })()
  clock.setTimeout(() => seen.push('timer'), 11)
  await clock.advance(20)
  assert.equal(seen, ['slept', 'chained', 'timer'])
})

test('simulated clock: pending counts live timers through cancel and fire', async () => {
  const clock = new SimClock()
  const a = clock.setTimeout(() => {}, 5)
  const b = clock.setInterval(() => {}, 5)
  assert.is(clock.pending, 2)
  a.cancel(); a.cancel()
  assert.is(clock.pending, 1)
  await clock.advance(20)
  assert.is(clock.pending, 1)
  b.cancel()
  assert.is(clock.pending, 0)
  await clock.runUntilIdle(1000)
})

test('TimerGroup cancels everything on clearAll and refuses new timers after', async () => {
  const clock = new SimClock()
  const group = new TimerGroup(clock)
  let fired = 0
  group.setTimeout(() => fired++, 10)
  group.setInterval(() => fired++, 5)
  assert.is(group.size, 2)
  group.clearAll()
  group.setTimeout(() => fired++, 1)
  await clock.advance(100)
  assert.is(fired, 0)
  assert.is(clock.pending, 0)
})

test.run()
