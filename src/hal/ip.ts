// IP addresses as bytes: parse, match prefixes, classify (RFC 1918, RFC 6598
// CGNAT, RFC 4193 ULA, link-local, loopback, multicast). Pure code; lives in
// the HAL because interface roles are decided from it.

export interface IpAddress { family: 4 | 6, bytes: Uint8Array }

export type AddressScope =
  'unspecified' | 'loopback' | 'link-local' | 'private' | 'ula' | 'cgnat' | 'multicast' | 'broadcast' | 'public'

const V4_PART = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/

function parseV4 (s: string): Uint8Array | null {
  const parts = s.split('.')
  if (parts.length !== 4) return null
  const out = new Uint8Array(4)
  for (let i = 0; i < 4; i++) {
    if (!V4_PART.test(parts[i]!)) return null
    out[i] = Number(parts[i])
  }
  return out
}

function parseV6 (s: string): Uint8Array | null {
  const zone = s.indexOf('%')
  if (zone !== -1) s = s.slice(0, zone)
  if (s.length === 0 || s.length > 45) return null
  let tail: Uint8Array | null = null
  const lastColon = s.lastIndexOf(':')
  if (s.includes('.')) { // embedded IPv4 (::ffff:1.2.3.4)
    tail = parseV4(s.slice(lastColon + 1))
    if (tail === null) return null
    s = s.slice(0, lastColon + 1) + '0:0'
  }
  const halves = s.split('::')
  if (halves.length > 2) return null
  const group = (g: string): number | null => (/^[0-9a-fA-F]{1,4}$/.test(g) ? parseInt(g, 16) : null)
  const head = halves[0] === '' ? [] : halves[0]!.split(':')
  const rest = halves.length === 2 ? (halves[1] === '' ? [] : halves[1]!.split(':')) : []
  const groups = head.length + rest.length
  if (halves.length === 1 ? groups !== 8 : groups > 7) return null
  const out = new Uint8Array(16)
  const put = (list: string[], start: number): boolean => {
    for (let i = 0; i < list.length; i++) {
      const v = group(list[i]!)
      if (v === null) return false
      out[2 * (start + i)] = v >> 8
      out[2 * (start + i) + 1] = v & 0xff
    }
    return true
  }
  if (!put(head, 0) || !put(rest, 8 - rest.length)) return null
  if (tail !== null) out.set(tail, 12)
  return out
}

/** An IPv4-mapped IPv6 address as text (::ffff:1.2.3.4) unwrapped to its IPv4 form; anything else as it is. */
export const unmapIp = (addr: string | undefined): string => (addr ?? '').replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1')

/** Parse an address; IPv4-mapped IPv6 (::ffff:a.b.c.d) becomes IPv4. */
export function parseIp (text: string): IpAddress | null {
  if (typeof text !== 'string' || text.length > 64) return null
  const v4 = parseV4(text)
  if (v4 !== null) return { family: 4, bytes: v4 }
  const v6 = parseV6(text)
  if (v6 === null) return null
  if (v6.subarray(0, 10).every((b) => b === 0) && v6[10] === 0xff && v6[11] === 0xff) {
    return { family: 4, bytes: v6.slice(12) }
  }
  return { family: 6, bytes: v6 }
}

export function formatIp (ip: IpAddress): string {
  if (ip.family === 4) return Array.from(ip.bytes).join('.')
  const groups: number[] = []
  for (let i = 0; i < 16; i += 2) groups.push((ip.bytes[i]! << 8) | ip.bytes[i + 1]!)
  // RFC 5952: compress the longest run (length >= 2) of zero groups, the first on ties.
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8;) {
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLen) { best = i; bestLen = j - i }
    i = j === i ? i + 1 : j
  }
  const hex = (list: number[]): string => list.map((g) => g.toString(16)).join(':')
  if (best === -1) return hex(groups)
  return `${hex(groups.slice(0, best))}::${hex(groups.slice(best + bestLen))}`
}

/** Does addr lie in prefix/len? Families must match. */
export function inPrefix (addr: IpAddress, prefix: IpAddress, len: number): boolean {
  if (addr.family !== prefix.family) return false
  const full = len >> 3
  for (let i = 0; i < full; i++) if (addr.bytes[i] !== prefix.bytes[i]) return false
  const bits = len & 7
  if (bits === 0) return true
  const mask = (0xff << (8 - bits)) & 0xff
  return (addr.bytes[full]! & mask) === (prefix.bytes[full]! & mask)
}

const net = (text: string, len: number): [IpAddress, number] => [parseIp(text)!, len]
const V4_RANGES: Array<[AddressScope, IpAddress, number]> = [
  ['unspecified', ...net('0.0.0.0', 8)],
  ['loopback', ...net('127.0.0.0', 8)],
  ['private', ...net('10.0.0.0', 8)],
  ['private', ...net('172.16.0.0', 12)],
  ['private', ...net('192.168.0.0', 16)],
  ['cgnat', ...net('100.64.0.0', 10)],
  ['link-local', ...net('169.254.0.0', 16)],
  ['multicast', ...net('224.0.0.0', 4)],
  ['broadcast', ...net('255.255.255.255', 32)]
]
const V6_RANGES: Array<[AddressScope, IpAddress, number]> = [
  ['unspecified', ...net('::', 128)],
  ['loopback', ...net('::1', 128)],
  ['ula', ...net('fc00::', 7)],
  ['link-local', ...net('fe80::', 10)],
  ['multicast', ...net('ff00::', 8)]
]

export function addressScope (addr: IpAddress): AddressScope {
  for (const [scope, prefix, len] of addr.family === 4 ? V4_RANGES : V6_RANGES) {
    if (inPrefix(addr, prefix, len)) return scope
  }
  return 'public'
}

/** Private to a home: RFC 1918, ULA, link-local. */
export function isHomeScope (scope: AddressScope): boolean {
  return scope === 'private' || scope === 'ula' || scope === 'link-local'
}
