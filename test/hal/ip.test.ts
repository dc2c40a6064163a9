import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { addressScope, formatIp, inPrefix, parseIp, createSeededRandom } from '../../src/hal'
import { testSeed } from '../helpers/seed'

test('parse and format addresses', () => {
  const cases: Array<[string, string | null]> = [
    ['192.168.1.10', '192.168.1.10'],
    ['::1', '::1'],
    ['::', '::'],
    ['fe80::1%eth0', 'fe80::1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['::ffff:10.0.0.1', '10.0.0.1'],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8'],
    ['256.1.1.1', null],
    ['01.2.3.4', null],
    ['1.2.3', null],
    ['1::2::3', null],
    ['1:2:3:4:5:6:7:8:9', null],
    ['12345::', null],
    ['', null],
    ['x'.repeat(100), null]
  ]
  for (const [text, want] of cases) {
    const ip = parseIp(text)
    assert.is(ip === null ? null : formatIp(ip), want, text)
  }
})

test('scopes', () => {
  const cases: Array<[string, string]> = [
    ['10.1.2.3', 'private'], ['172.16.0.1', 'private'], ['172.31.255.255', 'private'], ['172.32.0.1', 'public'],
    ['192.168.0.1', 'private'], ['100.64.0.1', 'cgnat'], ['100.127.255.254', 'cgnat'], ['100.128.0.1', 'public'],
    ['169.254.1.1', 'link-local'], ['127.0.0.1', 'loopback'], ['8.8.8.8', 'public'], ['239.255.255.250', 'multicast'],
    ['255.255.255.255', 'broadcast'], ['0.0.0.0', 'unspecified'], ['::1', 'loopback'], ['fd00::1', 'ula'],
    ['fe80::1', 'link-local'], ['2001:db8::1', 'public'], ['ff02::c', 'multicast'], ['::ffff:192.168.1.1', 'private']
  ]
  for (const [text, scope] of cases) assert.is(addressScope(parseIp(text)!), scope, text)
})

test('prefix matching', () => {
  const p = parseIp('192.168.1.0')!
  assert.ok(inPrefix(parseIp('192.168.1.77')!, p, 24))
  assert.not.ok(inPrefix(parseIp('192.168.2.77')!, p, 24))
  assert.ok(inPrefix(parseIp('192.168.3.1')!, p, 22))
  assert.not.ok(inPrefix(parseIp('fd00::1')!, p, 24), 'families never match')
  assert.ok(inPrefix(parseIp('fd12:3456::9')!, parseIp('fd12:3456::')!, 32))
  assert.ok(inPrefix(parseIp('1.2.3.4')!, parseIp('0.0.0.0')!, 0))
})

test('property: random addresses survive format and parse', () => {
  const r = createSeededRandom(testSeed('ip roundtrip'))
  for (let i = 0; i < 5000; i++) {
    const v6 = r.int(2) === 1
    const bytes = r.bytes(v6 ? 16 : 4)
    if (v6) for (let j = 0; j < 16; j++) if (r.int(3) === 0) bytes[j] = 0 // runs of zeros
    if (v6 && bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) continue
    const ip = { family: v6 ? 6 as const : 4 as const, bytes }
    const back = parseIp(formatIp(ip))
    assert.ok(back !== null, formatIp(ip))
    assert.equal(Buffer.from(back.bytes), Buffer.from(bytes), formatIp(ip))
  }
})

test.run()
