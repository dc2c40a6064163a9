// Pure pieces: the HTTP caching rules (RFC 9111) the proxy follows, byte
// ranges (RFC 9110 §14), the WAN gate (rate cap, off-peak window, the 1970
// clock) and peer credit (bans outlive a restart).

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { createCredit, createWanGate, directive, endToEnd, lifetime, parseRange, sourcing, storable, varyMatches, varyValues } from '../../src/content'
import { SimClock } from '../../src/hal'
import { BAN_MS, PROVIDER_WAIT_MS, PROXY_HEURISTIC_SECONDS_MAX } from '../../src/limits'

const DATE = 'Mon, 01 Jan 2024 12:00:00 GMT'

test('freshness: s-maxage over max-age over Expires-Date over 10 % since Last-Modified (capped); none without them', () => {
  assert.is(lifetime({ 'cache-control': 'public, max-age=60, s-maxage=120' }), 120)
  assert.is(lifetime({ 'cache-control': 'max-age=60', expires: 'Mon, 01 Jan 2024 13:00:00 GMT', date: DATE }), 60)
  assert.is(lifetime({ expires: 'Mon, 01 Jan 2024 13:00:00 GMT', date: DATE }), 3600)
  assert.is(lifetime({ expires: '0', date: DATE }), 0, 'an invalid Expires is already expired')
  assert.is(lifetime({ date: DATE, 'last-modified': 'Mon, 01 Jan 2024 11:00:00 GMT' }), 360)
  assert.is(lifetime({ date: DATE, 'last-modified': 'Mon, 01 Jan 2000 00:00:00 GMT' }), PROXY_HEURISTIC_SECONDS_MAX)
  assert.is(lifetime({ 'last-modified': 'Mon, 01 Jan 2024 11:00:00 GMT' }), null, 'no Date: no heuristic (our own clock is not trusted)')
  assert.is(lifetime({}), null)
  const cc = 'no-cache, max-age="5" , Private, s-maxage=x'
  assert.equal([directive(cc, 'no-cache'), directive(cc, 'max-age'), directive(cc, 'private'), directive(cc, 'no-store'), directive('max-age-ish=1', 'max-age')], ['', '5', '', undefined, undefined])
  assert.is(lifetime({ 'cache-control': cc }), 5, 'a malformed s-maxage is ignored')
})

test('storable: 200 with a length within bounds, not no-store/private/Vary:*/Set-Cookie, with freshness or a validator', () => {
  const ok = { 'content-length': '10', etag: '"x"' }
  assert.ok(storable(200, ok, 100))
  assert.not.ok(storable(206, ok, 100))
  assert.not.ok(storable(200, { ...ok, 'cache-control': 'no-store' }, 100))
  assert.not.ok(storable(200, { ...ok, 'cache-control': 'private' }, 100))
  assert.not.ok(storable(200, { ...ok, vary: '*' }, 100))
  assert.not.ok(storable(200, { ...ok, 'set-cookie': ['a=b'] }, 100))
  assert.not.ok(storable(200, { etag: '"x"' }, 100), 'no length')
  assert.not.ok(storable(200, { ...ok, 'content-length': '101' }, 100), 'too large')
  assert.not.ok(storable(200, { ...ok, 'content-length': 'x' }, 100), 'a bad length')
  assert.not.ok(storable(200, { 'content-length': '10' }, 100), 'nothing to revalidate with')
  assert.ok(storable(200, { 'content-length': '10', 'cache-control': 'max-age=5' }, 100))
})

test('Vary and hop-by-hop headers', () => {
  const v = varyValues('Accept-Language, accept-encoding', { 'accept-language': 'en', 'accept-encoding': 'gzip' })
  assert.equal(v, { 'accept-language': 'en', 'accept-encoding': 'gzip' })
  assert.ok(varyMatches(v, { 'accept-language': 'en', 'accept-encoding': 'gzip' }))
  assert.not.ok(varyMatches(v, { 'accept-language': 'fr', 'accept-encoding': 'gzip' }))
  assert.is(varyValues(undefined, {}), null)
  assert.equal(endToEnd({ connection: 'close, x-secret', 'x-secret': '1', 'keep-alive': 'x', 'proxy-authorization': 'y', host: 'h', accept: '*/*' }, ['host']), { accept: '*/*' })
})

test('ranges: one range, suffix, open end, clipped; several or malformed ones mean the whole body; past the end is 416', () => {
  assert.equal(parseRange('bytes=0-9', 100), { start: 0, end: 10 })
  assert.equal(parseRange('bytes=90-', 100), { start: 90, end: 100 })
  assert.equal(parseRange('bytes=-10', 100), { start: 90, end: 100 })
  assert.equal(parseRange('bytes=50-1000', 100), { start: 50, end: 100 })
  assert.is(parseRange('bytes=100-', 100), 'unsatisfiable')
  assert.is(parseRange('bytes=-0', 100), 'unsatisfiable')
  assert.is(parseRange('bytes=0-1,5-6', 100), null)
  assert.is(parseRange('bytes=9-1', 100), null)
  assert.is(parseRange('items=0-1', 100), null)
  assert.is(parseRange(undefined, 100), null)
})

test('WAN cap: origin bytes paced to the rate over simulated time, one second of burst', async () => {
  const clock = new SimClock()
  const t0 = Date.now()
  const g2 = createWanGate(clock, 100_000, '')
  const start = clock.nowMs()
  let n = 0
  let done = false
  const p = (async () => { while (n < 600_000) { const w = g2.pace(50_000); if (w !== null) await w; n += 50_000 } done = true })()
  while (!done) await clock.advance(100)
  await p
  const secs = (clock.nowMs() - start) / 1000
  assert.ok(secs >= 4.4 && secs <= 5.2, `600 kB at 100 kB/s with 100 kB of burst took ${secs} s`)
  assert.ok(Date.now() - t0 < 2_000, 'simulated, not real, time')
  assert.is(createWanGate(clock, 0, '').pace(1e9), null, 'no cap: never held back')
})

test('off-peak window in local time, across midnight; a clock still in 1970 is not trusted (fetches allowed)', () => {
  const at = (h: number, m = 0): SimClock => new SimClock(new Date(2026, 5, 1, h, m).getTime())
  assert.ok(createWanGate(at(2), 0, '01:00-06:00').open())
  assert.not.ok(createWanGate(at(7), 0, '01:00-06:00').open())
  assert.not.ok(createWanGate(at(6), 0, '01:00-06:00').open(), 'the end is exclusive')
  assert.ok(createWanGate(at(23, 30), 0, '22:00-05:00').open())
  assert.ok(createWanGate(at(4), 0, '22:00-05:00').open())
  assert.not.ok(createWanGate(at(12), 0, '22:00-05:00').open())
  assert.ok(createWanGate(new SimClock(0), 0, '01:00-06:00').open(), '1970: allowed')
  assert.ok(createWanGate(at(12), 0, '').open(), 'no window: always')
})

test('credit: speed and failures rank peers; a ban lasts a day of uptime and survives a restart with its time left', async () => {
  const clock = new SimClock()
  const c = createCredit(clock)
  c.good('a'.repeat(32), 1_000_000, 100)
  c.good('b'.repeat(32), 1_000_000, 200)
  assert.ok(c.score('a'.repeat(32)) > c.score('b'.repeat(32)))
  c.fail('a'.repeat(32))
  c.fail('a'.repeat(32))
  c.fail('a'.repeat(32))
  assert.ok(c.score('a'.repeat(32)) < c.score('b'.repeat(32)), 'failures cost credit')
  const bad = 'c'.repeat(32)
  c.ban(bad)
  assert.ok(c.banned(bad))
  await clock.advance(BAN_MS / 2)
  const saved = JSON.parse(JSON.stringify(c.saveBans()))
  const after = createCredit(new SimClock())
  after.loadBans(saved)
  assert.ok(after.banned(bad), 'still banned after a restart')
  after.loadBans([['zz', 5], ['d'.repeat(32), -1], 'junk', null])
  assert.is(after.saveBans().length, 1, 'junk in the saved list is ignored')
  await clock.advance(BAN_MS / 2 + 1)
  assert.not.ok(c.banned(bad), 'the ban ends')
})

test('sourcing: only the provider goes to the origin; others ask it, and fetch themselves only after PROVIDER_WAIT_MS without a usable one', () => {
  const ref = (nodeId: string, self: boolean) => ({ nodeId, self, address: '192.168.1.1', httpPort: 8787, udpPort: 8787, baseUrl: 'http://192.168.1.1:8787' })
  const all = (): boolean => true
  assert.equal(sourcing(ref('me', true), all, null, 0), { provider: null, origin: true, sinceMs: null })
  const gw = ref('gw', false)
  assert.equal(sourcing(gw, all, null, 0), { provider: gw, origin: false, sinceMs: null })
  // The provider dies: its requests fail (not usable), then the election forgets it, then a new one is elected.
  let s = sourcing(gw, (id) => id !== 'gw', null, 1_000)
  assert.equal(s, { provider: null, origin: false, sinceMs: 1_000 })
  s = sourcing(null, all, s.sinceMs, 4_000)
  assert.equal(s, { provider: null, origin: false, sinceMs: 1_000 }, 'an election in progress: wait')
  const next = ref('d3', false)
  assert.equal(sourcing(next, all, s.sinceMs, 5_000), { provider: next, origin: false, sinceMs: null }, 'a new provider in time: ask it')
  assert.equal(sourcing(null, all, s.sinceMs, 1_000 + PROVIDER_WAIT_MS), { provider: null, origin: true, sinceMs: 1_000 }, 'nobody for PROVIDER_WAIT_MS: fetch yourself')
  assert.equal(sourcing(gw, () => false, 0, PROVIDER_WAIT_MS).origin, true, 'a banned provider is no provider')
})

test.run()
