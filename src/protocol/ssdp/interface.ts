// The sockets of one LAN interface. Two, each with one job:
//
// * the listener, bound to 0.0.0.0:1900 with SO_REUSEADDR and joined to the
//   SSDP group on this interface only: hears NOTIFY and M-SEARCH, sends our
//   NOTIFYs and search replies (from port 1900, as peers expect);
// * the searcher, bound to this interface's address on an ephemeral port:
//   sends our M-SEARCH, so the unicast replies come back to a socket that
//   belongs to this interface and no other.
//
// Linux hands a multicast datagram to every socket bound to the port
// (IP_MULTICAST_ALL), whatever interface it came in on, and a unicast one to
// just one of them; so the engine decides the interface from the source
// address, never from the socket that happened to receive it.

import type { Datagram, Net, UdpSocket } from '../../hal'
import { SSDP_MULTICAST_TTL } from '../../limits'
import type { Logger } from '../../log'

export interface InterfaceInfo {
  /** Interface name (hal.nics). */
  nic: string
  /** Its IPv4 address: multicast membership, LOCATION host, source of what we send. */
  address: string
  prefixLength: number
}

/** Which socket: the listener (port 1900) or the searcher. */
export const LISTENER = 0
export const SEARCHER = 1

export interface SsdpInterface {
  /** The interface this serves (name, address, prefix). */
  readonly at: InterfaceInfo
  readonly isOpen: boolean
  /** The port our searches leave from (replies come back to it). */
  readonly searchPort: number
  /** From the listener (port 1900: NOTIFY to the group, replies to a searcher) or the searcher (M-SEARCH); to the group by default. */
  send (which: number, data: Uint8Array, port?: number, address?: string): boolean
  /** Wait until what was sent has left (the byebye before close). */
  flush (): Promise<void>
  close (log?: Logger): void
}

/** Bind and join; on any failure nothing stays open and the error is thrown (coded, from the HAL). */
export async function openInterface (net: Net, info: InterfaceInfo, group: string, port: number,
  onDatagram: (d: Datagram, socket: number, iface: SsdpInterface) => void): Promise<SsdpInterface> {
  /** [listener, searcher] */
  const sockets: UdpSocket[] = []
  let closed = false
  const iface: SsdpInterface = {
    at: info,
    get isOpen () { return !closed },
    get searchPort () { return sockets[SEARCHER]?.port ?? 0 },
    send (which, data, toPort = port, address = group) {
      const s = sockets[which]
      if (closed || !s) return false
      s.send(data, toPort, address)
      return true
    },
    async flush () { await Promise.all(sockets.map((s) => s.flush?.())) },
    close (log) {
      if (closed) return
      closed = true
      try {
        sockets[LISTENER]?.leaveGroup(group, info.address)
      } catch (err) {
        log?.debug('SSDP leave failed', { nic: info.nic, err })
      }
      for (const s of sockets) s.close()
    }
  }
  try {
    for (const which of [LISTENER, SEARCHER]) {
      const s = await net.udp(which === LISTENER ? { port, reuseAddr: true } : { port: 0, address: info.address })
      sockets.push(s)
      if (which === LISTENER) s.joinGroup(group, info.address)
      s.setMulticastInterface(info.address)
      s.setMulticastTtl(SSDP_MULTICAST_TTL)
      s.onMessage((d) => { if (!closed) onDatagram(d, which, iface) })
    }
  } catch (err) {
    iface.close()
    throw err
  }
  return iface
}
