// Who may talk to an interface's SSDP sockets: decided from the datagram's
// source address alone. Linux hands a multicast datagram to every socket
// bound to port 1900 (IP_MULTICAST_ALL), whatever interface it came in on,
// and Node cannot tell the interface (no IP_PKTINFO); the source address can.

import { inPrefix, lanNicFor, parseIp, type Datagram, type Nic } from '../../hal'
import type { InterfaceInfo } from './interface'
import type { DropReason } from './interpret'

/** null when the source belongs to this LAN interface; otherwise why not. */
export function checkSource (nics: readonly Nic[], d: Datagram, iface: InterfaceInfo): DropReason | null {
  const nic = lanNicFor(nics, d.address)
  if (!nic) return 'not-lan' // public, loopback, multicast, broadcast, another subnet, the WAN side
  if (nic.name !== iface.nic) return 'other-interface' // that interface's socket has (or will get) its own copy
  if (isSubnetEdge(d.address, iface.address, iface.prefixLength)) return 'broadcast'
  if (d.port === 0) return 'bad-port'
  return null
}

/** The network or broadcast address of an IPv4 prefix (none for /31 and /32). */
export function isSubnetEdge (address: string, ifaceAddress: string, prefixLength: number): boolean {
  const a = parseIp(address)
  const p = parseIp(ifaceAddress)
  if (!a || !p || a.family !== 4 || p.family !== 4 || prefixLength >= 31) return false
  if (!inPrefix(a, p, prefixLength)) return false
  const host = 32 - prefixLength
  const value = ((a.bytes[0]! << 24) | (a.bytes[1]! << 16) | (a.bytes[2]! << 8) | a.bytes[3]!) >>> 0
  const mask = host === 32 ? 0xffffffff : ((1 << host) >>> 0) - 1
  const bits = (value & mask) >>> 0
  return bits === 0 || bits === mask
}
