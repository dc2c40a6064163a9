// The SSDP parser and formatter: real-world datagrams, every rule of the
// grammar and every bound at its edge, and properties over random messages.

import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { CanopyError } from '../../../src/errors'
import { createSeededRandom, type Random } from '../../../src/hal'
import { SSDP_DATAGRAM_BYTES_MAX, SSDP_HEADER_COUNT_MAX, SSDP_HEADER_NAME_BYTES_MAX, SSDP_LINE_BYTES_MAX } from '../../../src/limits'
import { formatSsdp, parseSsdp, type SsdpKind } from '../../../src/protocol/ssdp/message'
import { testSeed } from '../../helpers/seed'

const crlf = (lines: string[]): Buffer => Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1')
const code = (fn: () => unknown): string => {
  try { fn(); return 'ok' } catch (err) { return CanopyError.is(err) ? err.code : `THREW ${String(err)}` }
}

test('parses what real stacks send: node-ssdp search, gssdp search, a router NOTIFY, a reply with an empty EXT', () => {
  const search = parseSsdp(crlf(['M-SEARCH * HTTP/1.1', 'HOST: 239.255.255.250:1900', 'ST: urn:canopy:device:agent:1', 'MAN: "ssdp:discover"', 'MX: 3']))
  assert.is(search.kind, 'search')
  assert.is(search.headers.get('man'), '"ssdp:discover"')
  assert.is(search.headers.get('mx'), '3')
  const gssdp = parseSsdp(crlf(['M-SEARCH * HTTP/1.1', 'Host: 239.255.255.250:1900', 'Man: "ssdp:discover"', 'ST: ssdp:all', 'MX: 3', 'User-Agent: Linux/6.1 UPnP/1.0 GSSDP/1.6.2']))
  assert.is(gssdp.headers.get('user-agent'), 'Linux/6.1 UPnP/1.0 GSSDP/1.6.2')
  const notify = parseSsdp(crlf(['NOTIFY * HTTP/1.1', 'HOST: 239.255.255.250:1900', 'CACHE-CONTROL: max-age=120', 'LOCATION: http://192.168.1.1:5000/rootDesc.xml',
    'SERVER: OpenWRT/21.02 UPnP/1.1 MiniUPnPd/2.2.1', 'NT: upnp:rootdevice', 'USN: uuid:c1c1c1c1-0000-1111-2222-333333333333::upnp:rootdevice',
    'NTS: ssdp:alive', 'OPT: "http://schemas.upnp.org/upnp/1/0/"; ns=01', '01-NLS: 1', 'BOOTID.UPNP.ORG: 1', 'CONFIGID.UPNP.ORG: 1337']))
  assert.is(notify.kind, 'notify')
  assert.is(notify.headers.get('01-nls'), '1')
  const reply = parseSsdp(crlf(['HTTP/1.1 200 OK', 'ST: urn:canopy:device:agent:1', 'USN: uuid:x::urn:canopy:device:agent:1', 'CACHE-CONTROL: max-age=1800',
    'DATE: Thu, 01 Jan 2026 00:00:00 GMT', 'SERVER: node.js/20.0.0 UPnP/1.1 node-ssdp/4.0.1', 'EXT: ', 'LOCATION: http://10.0.0.2:80/d']))
  assert.is(reply.kind, 'response')
  assert.is(reply.status, 200)
  assert.is(reply.headers.get('ext'), '')
  assert.is(parseSsdp(crlf(['HTTP/1.0 404 Not Found', 'X: y'])).status, 404)
})

test('header names are case-insensitive, values are trimmed of spaces and tabs', () => {
  const m = parseSsdp(crlf(['NOTIFY * HTTP/1.1', 'cAcHe-CoNtRoL:\t max-age=60 \t', 'Nt:x']))
  assert.is(m.headers.get('cache-control'), 'max-age=60')
  assert.is(m.headers.get('nt'), 'x')
})

test('refuses what the grammar does not allow, always with SSDP_MALFORMED', () => {
  const bad: Array<[string, Buffer]> = [
    ['empty', Buffer.alloc(0)],
    ['no CRLF at all', Buffer.from('M-SEARCH * HTTP/1.1')],
    ['no empty line', Buffer.from('M-SEARCH * HTTP/1.1\r\nHOST: x\r\n')],
    ['LF only', Buffer.from('M-SEARCH * HTTP/1.1\nHOST: x\n\n')],
    ['unknown method', crlf(['GET * HTTP/1.1', 'HOST: x'])],
    ['lower-case method', crlf(['m-search * HTTP/1.1', 'HOST: x'])],
    ['HTTP/2 start', crlf(['M-SEARCH * HTTP/2.0', 'HOST: x'])],
    ['status not 3 digits', crlf(['HTTP/1.1 20 OK', 'HOST: x'])],
    ['line without colon', crlf(['NOTIFY * HTTP/1.1', 'HOST x'])],
    ['empty name', crlf(['NOTIFY * HTTP/1.1', ': x'])],
    ['space in name', crlf(['NOTIFY * HTTP/1.1', 'HO ST: x'])],
    ['folded line', crlf(['NOTIFY * HTTP/1.1', 'HOST: x', ' continued'])],
    ['duplicate header', crlf(['NOTIFY * HTTP/1.1', 'NT: a', 'nt: b'])],
    ['NUL in value', crlf(['NOTIFY * HTTP/1.1', 'NT: a\u0000b'])],
    ['bare CR in value', crlf(['NOTIFY * HTTP/1.1', 'NT: a\rb'])],
    ['bare LF in value', crlf(['NOTIFY * HTTP/1.1', 'NT: a\nb'])],
    ['DEL in value', crlf(['NOTIFY * HTTP/1.1', 'NT: a\u007fb'])],
    ['trailing bytes', Buffer.concat([crlf(['NOTIFY * HTTP/1.1', 'NT: a']), Buffer.from('body')])]
  ]
  for (const [what, data] of bad) assert.is(code(() => parseSsdp(data)), 'SSDP_MALFORMED', what)
})

test('bounds at their edges: datagram size, line length, header count, name length', () => {
  const start = 'NOTIFY * HTTP/1.1'
  // Line length: exactly the bound passes, one more fails.
  const longValue = (n: number): string => `X: ${'v'.repeat(n - 3)}`
  assert.is(code(() => parseSsdp(crlf([start, longValue(SSDP_LINE_BYTES_MAX)]))), 'ok')
  assert.is(code(() => parseSsdp(crlf([start, longValue(SSDP_LINE_BYTES_MAX + 1)]))), 'SSDP_MALFORMED')
  // Header count.
  const many = (n: number): string[] => [start, ...Array.from({ length: n }, (_, i) => `H${i}: v`)]
  assert.is(code(() => parseSsdp(crlf(many(SSDP_HEADER_COUNT_MAX)))), 'ok')
  assert.is(code(() => parseSsdp(crlf(many(SSDP_HEADER_COUNT_MAX + 1)))), 'SSDP_MALFORMED')
  // Name length.
  assert.is(code(() => parseSsdp(crlf([start, `${'N'.repeat(SSDP_HEADER_NAME_BYTES_MAX)}: v`]))), 'ok')
  assert.is(code(() => parseSsdp(crlf([start, `${'N'.repeat(SSDP_HEADER_NAME_BYTES_MAX + 1)}: v`]))), 'SSDP_MALFORMED')
  // Datagram size: a well-formed message just over the bound is refused before it is read.
  const fill = (total: number): Buffer => {
    const lines = [start]
    let size = start.length + 4
    for (let i = 0; size < total; i++) {
      const room = Math.min(SSDP_LINE_BYTES_MAX, total - size - 2)
      if (room < 6) break
      const line = `F${String(i).padStart(2, '0')}: ${'x'.repeat(room - 5)}`
      lines.push(line)
      size += line.length + 2
    }
    return crlf(lines)
  }
  const atMax = fill(SSDP_DATAGRAM_BYTES_MAX)
  assert.ok(atMax.length <= SSDP_DATAGRAM_BYTES_MAX && atMax.length > SSDP_DATAGRAM_BYTES_MAX - 8)
  assert.is(code(() => parseSsdp(atMax)), 'ok')
  assert.is(code(() => parseSsdp(Buffer.concat([Buffer.alloc(SSDP_DATAGRAM_BYTES_MAX + 1 - atMax.length, 0x41), atMax]))), 'SSDP_MALFORMED')
})

test('parses a view into a larger buffer (dgram hands out slices)', () => {
  const inner = crlf(['NOTIFY * HTTP/1.1', 'NT: a'])
  const big = Buffer.concat([Buffer.from('garbage'), inner, Buffer.from('more garbage')])
  const view = big.subarray(7, 7 + inner.length)
  assert.is(parseSsdp(view).headers.get('nt'), 'a')
})

test('the formatter refuses what would not read back', () => {
  for (const [name, value] of [['BAD NAME', 'v'], ['X', 'a\r\nINJECTED: 1'], ['X', ' lead'], ['X', 'trail '], ['', 'v'], ['X', 'v'.repeat(SSDP_LINE_BYTES_MAX)]]) {
    assert.is(code(() => formatSsdp('notify', [[name!, value!]])), 'SSDP_MALFORMED', `${name}: ${value}`)
  }
  assert.is(code(() => formatSsdp('notify', [['X', 'a'], ['x', 'b']])), 'SSDP_MALFORMED', 'duplicate')
  assert.is(code(() => formatSsdp('notify', Array.from({ length: SSDP_HEADER_COUNT_MAX + 1 }, (_, i) => [`H${i}`, 'v'] as const))), 'SSDP_MALFORMED')
})

// ---- properties ---------------------------------------------------------------------

const TCHAR = "!#$%&'*+.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-"
const pick = (r: Random, s: string): string => s[r.int(s.length)]!

function randomName (r: Random, used: Set<string>): string {
  for (;;) {
    let n = ''
    const len = 1 + r.int(20)
    for (let i = 0; i < len; i++) n += pick(r, TCHAR)
    if (!used.has(n.toLowerCase())) { used.add(n.toLowerCase()); return n }
  }
}

function randomValue (r: Random): string {
  const len = r.int(60)
  let v = ''
  for (let i = 0; i < len; i++) {
    const c = r.int(10) === 0 ? 0x80 + r.int(128) : r.int(12) === 0 ? 0x09 : 0x20 + r.int(95)
    v += String.fromCharCode(c)
  }
  return v.replace(/^[ \t]+|[ \t]+$/g, '')
}

function randomHeaders (r: Random): Array<[string, string]> {
  const used = new Set<string>()
  return Array.from({ length: r.int(SSDP_HEADER_COUNT_MAX + 1) }, () => [randomName(r, used), randomValue(r)] as [string, string])
}

test('property: parse(format(m)) gives m back, for random kinds, names and values', () => {
  const r = createSeededRandom(testSeed('ssdp round trip'))
  const kinds: SsdpKind[] = ['search', 'notify', 'response']
  for (let i = 0; i < 3000; i++) {
    const kind = kinds[r.int(3)]!
    const headers = randomHeaders(r)
    let bytes: Buffer
    try {
      bytes = formatSsdp(kind, headers)
    } catch (err) {
      // Only the datagram bound may refuse a random message made of legal parts.
      assert.ok(CanopyError.is(err, 'SSDP_MALFORMED') && /exceeds/.test(err.message), String(err))
      continue
    }
    const m = parseSsdp(bytes)
    assert.is(m.kind, kind)
    assert.equal([...m.headers], headers.map(([n, v]) => [n.toLowerCase(), v]))
    const lower = headers.map(([n, v]) => [n.toLowerCase(), v] as const)
    assert.ok(formatSsdp(kind, [...m.headers]).equals(formatSsdp(kind, lower)), 'format(parse(x)) = x up to the case of names')
  }
})

test('property: any single-byte change to a valid message parses or fails with the coded error only', () => {
  const r = createSeededRandom(testSeed('ssdp single byte'))
  const base = formatSsdp('notify', [['HOST', '239.255.255.250:1900'], ['NT', 'urn:canopy:device:agent:1'], ['NTS', 'ssdp:alive'], ['USN', 'uuid:1::x']])
  for (let i = 0; i < base.length; i++) {
    for (let k = 0; k < 8; k++) {
      const copy = Buffer.from(base)
      copy[i] = r.int(256)
      const c = code(() => parseSsdp(copy))
      assert.ok(c === 'ok' || c === 'SSDP_MALFORMED', c)
    }
  }
})

test.run()
