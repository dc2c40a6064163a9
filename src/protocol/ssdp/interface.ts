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

export class SsdpInterface {
  private listener: UdpSocket | null = null
  private searcher: UdpSocket | null = null
  private closed = false

  private constructor (readonly info: InterfaceInfo, private readonly group: string) {}

  /** Bind and join; on any failure nothing stays open and the error is thrown (coded, from the HAL). */
  static async open (net: Net, info: InterfaceInfo, group: string, port: number,
    onDatagram: (d: Datagram, socket: 'listener' | 'searcher', iface: SsdpInterface) => void): Promise<SsdpInterface> {
    const iface = new SsdpInterface(info, group)
    try {
      const listener = await net.udp({ port, reuseAddr: true })
      iface.listener = listener
      listener.joinGroup(group, info.address)
      listener.setMulticastInterface(info.address)
      listener.setMulticastTtl(SSDP_MULTICAST_TTL)
      listener.onMessage((d) => { if (!iface.closed) onDatagram(d, 'listener', iface) })
      const searcher = await net.udp({ port: 0, address: info.address })
      iface.searcher = searcher
      searcher.setMulticastInterface(info.address)
      searcher.setMulticastTtl(SSDP_MULTICAST_TTL)
      searcher.onMessage((d) => { if (!iface.closed) onDatagram(d, 'searcher', iface) })
    } catch (err) {
      iface.close()
      throw err
    }
    return iface
  }

  get isOpen (): boolean { return !this.closed }
  /** The port our searches leave from (replies come back to it). */
  get searchPort (): number { return this.searcher?.port ?? 0 }
  get sendErrors (): number { return (this.listener?.sendErrors ?? 0) + (this.searcher?.sendErrors ?? 0) }

  /** From port 1900: NOTIFY to the group, replies to a searcher. */
  sendFromListener (data: Uint8Array, port: number, address: string): boolean {
    if (this.closed || this.listener === null) return false
    this.listener.send(data, port, address)
    return true
  }

  /** From the searcher: M-SEARCH to the group. */
  sendFromSearcher (data: Uint8Array, port: number, address: string): boolean {
    if (this.closed || this.searcher === null) return false
    this.searcher.send(data, port, address)
    return true
  }

  /** Wait until what was sent has left (the byebye before close). */
  async flush (): Promise<void> {
    await Promise.all([this.listener?.flush?.(), this.searcher?.flush?.()])
  }

  close (log?: Logger): void {
    if (this.closed) return
    this.closed = true
    try {
      this.listener?.leaveGroup(this.group, this.info.address)
    } catch (err) {
      log?.debug('leaving the SSDP group failed (interface gone?)', { nic: this.info.nic, err })
    }
    this.listener?.close()
    this.searcher?.close()
  }
}
