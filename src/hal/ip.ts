// IP addresses as bytes: parse, match prefixes, classify (RFC 1918, RFC 6598
// CGNAT, RFC 4193 ULA, link-local, loopback, multicast). Pure code; lives in
// the HAL because interface roles are decided from it.

import { isIP } from 'node:net'

export interface IpAddress { family: 4 | 6, bytes: Uint8Array }

export type AddressScope =
  'unspecified' | 'loopback' | 'link-local' | 'private' | 'ula' | 'cgnat' | 'multicast' | 'broadcast' | 'public'

/** An IPv4-mapped IPv6 address as text (::ffff:1.2.3.4) unwrapped to its IPv4 form; anything else as it is. */
export const unmapIp = (addr: string | undefined): string => (addr ?? '').replace(/^::ffff:(\d+\.\d+\.\d+\.\d+)$/, '$1')

/** IPv6 text as the WHATWG URL parser writes it: hex groups only, RFC 5952 compression (throws if invalid). */
const urlV6 = (text: string): string => new URL(`http://[${text}]`).hostname.slice(1, -1)

/**
 * Parse an address (node:net's isIP decides what is valid: no leading zeros
 * in IPv4, a zone after % ignored); IPv4-mapped IPv6 (::ffff:a.b.c.d) becomes IPv4.
 */
export function parseIp (text: string): IpAddress | null {
  if (typeof text !== 'string' || text.length > 64) return null
  const s = text.split('%')[0]!
  const family = isIP(s)
  if (family === 4) return { family: 4, bytes: Uint8Array.from(s.split('.'), Number) }
  if (family !== 6) return null
  const [head, tail] = urlV6(s).split('::') // embedded IPv4 is hex groups now
  const part = (h: string | undefined): string[] => (h ? h.split(':') : [])
  const groups = [...part(head), ...part(tail)]
  if (tail !== undefined) groups.splice(part(head).length, 0, ...Array<string>(8 - groups.length).fill('0'))
  const bytes = Buffer.alloc(16)
  groups.forEach((g, i) => { bytes.writeUInt16BE(parseInt(g, 16), 2 * i) })
  if (bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
    return { family: 4, bytes: bytes.subarray(12) }
  }
  return { family: 6, bytes }
}

export function formatIp (ip: IpAddress): string {
  if (ip.family === 4) return ip.bytes.join('.')
  const groups: string[] = []
  for (let i = 0; i < 16; i += 2) groups.push(((ip.bytes[i]! << 8) | ip.bytes[i + 1]!).toString(16))
  return urlV6(groups.join(':'))
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

/** Special ranges, "scope prefix/length", IPv4 then IPv6; the first match wins, else public. */
const RANGES = ('unspecified 0.0.0.0/8,loopback 127.0.0.0/8,private 10.0.0.0/8,private 172.16.0.0/12,private 192.168.0.0/16,' +
  'cgnat 100.64.0.0/10,link-local 169.254.0.0/16,multicast 224.0.0.0/4,broadcast 255.255.255.255/32,' +
  'unspecified ::/128,loopback ::1/128,ula fc00::/7,link-local fe80::/10,multicast ff00::/8').split(',').map((r) => {
  const [scope, prefix, len] = r.split(/[ /]/) as [AddressScope, string, string]
  return [scope, parseIp(prefix)!, Number(len)] as const
})

export function addressScope (addr: IpAddress): AddressScope {
  for (const [scope, prefix, len] of RANGES) {
    if (inPrefix(addr, prefix, len)) return scope
  }
  return 'public'
}

/** Private to a home: RFC 1918, ULA, link-local. */
export function isHomeScope (scope: AddressScope): boolean {
  return scope === 'private' || scope === 'ula' || scope === 'link-local'
}
