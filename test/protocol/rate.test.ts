import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { SSDP_REPLIES_PER_SECOND_MAX, SSDP_SOURCE_REPLIES_BURST } from '../../src/limits'
import { rateGate, tokenBucket } from '../../src/protocol/rate'
import { SSDP_REPLY_LIMITS } from '../../src/protocol/ssdp/ssdp'

test('a token bucket gives its burst, then its rate, and never more than its burst after a pause', () => {
  const b = tokenBucket(1, 3, 0)
  assert.equal([b.take(0), b.take(0), b.take(0), b.take(0)], [true, true, true, false])
  assert.is(b.take(999), false)
  assert.is(b.take(1000), true)
  assert.equal([b.take(100_000), b.take(100_000), b.take(100_000), b.take(100_000)], [true, true, true, false])
  assert.is(b.take(50), false, 'time going backwards adds nothing')
})

test('one source: a burst of 3 then 1 per second', () => {
  const l = rateGate(0, SSDP_REPLY_LIMITS)
  let allowed = 0
  for (let t = 0; t < 10_000; t += 10) if (l.allow('192.168.1.9', t)) allowed++
  assert.is(allowed, SSDP_SOURCE_REPLIES_BURST + 9, `${allowed} replies in 10 s`)
})

test('many sources: at most 20 per second in all', () => {
  const l = rateGate(0, SSDP_REPLY_LIMITS)
  let allowed = 0
  for (let t = 0; t < 10_000; t += 1) if (l.allow(`192.168.1.${t % 250}`, t)) allowed++
  assert.ok(allowed <= SSDP_REPLIES_PER_SECOND_MAX * 11, `${allowed} replies in 10 s`)
  assert.ok(allowed >= SSDP_REPLIES_PER_SECOND_MAX * 9, 'the limit rations, it does not starve')
})

test('the source table is bounded; the least recently seen source is forgotten first', () => {
  const l = rateGate(0, { sourcePerSecond: 1, sourceBurst: 1, totalPerSecond: 1e9, sourcesMax: 4 })
  for (const s of ['a', 'b', 'c', 'd']) assert.ok(l.allow(s, 0))
  assert.not.ok(l.allow('a', 0), 'a has used its token')
  assert.ok(l.allow('e', 0), 'e pushes out b, the least recent')
  assert.is(l.sourceCount, 4)
  assert.not.ok(l.allow('a', 0), 'a was kept (seen recently), still without a token')
  assert.ok(l.allow('b', 0), 'b was forgotten and starts afresh')
})

test('a separate total burst; a refused source spends no token of either bucket', () => {
  const l = rateGate(0, { sourcePerSecond: 0.001, sourceBurst: 2, totalPerSecond: 1, totalBurst: 3, sourcesMax: 8 })
  assert.equal([l.allow('a', 0), l.allow('a', 0), l.allow('a', 0)], [true, true, false], 'a: its burst of 2')
  assert.ok(l.allow('b', 0), 'the total burst of 3 has one left')
  assert.not.ok(l.allow('c', 0), 'the total bucket is empty')
  assert.is(l.limited, 2)
  assert.ok(l.allow('c', 1000), 'c was refused without spending its own tokens: both of them are still there')
  assert.ok(l.allow('c', 2000))
  assert.not.ok(l.allow('c', 3000), 'and now they are spent')
})

test.run()
