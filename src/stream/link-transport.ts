// The stream transport on the peer link: one authenticated link per peer,
// the "stream" channel, addresses from the peer directory (or from a hint a
// message carried, verified by the handshake's expected node id).

import type { Logger } from '../log'
import type { PeerDirectory } from '../protocol'
import { LINK_PORT_DEFAULT, type Link, type LinkHost } from '../protocol/link'
import type { PeerRef, StreamTransport, TransportHandler, TransportSendOptions } from './transport'

export class LinkTransport implements StreamTransport {
  private handler: TransportHandler | null = null
  private readonly dialing = new Set<string>()

  constructor (private readonly host: LinkHost, private readonly directory: PeerDirectory, private readonly log: Logger) {
    host.on('stream', (link, frame) => { this.handler?.frame(link.nodeId, frame) })
    host.onOpen((link) => { this.handler?.up(link.nodeId) })
    host.onClosed((link) => { this.handler?.down(link.nodeId) })
  }

  get selfId (): string { return this.host.nodeId }

  setHandler (handler: TransportHandler): void { this.handler = handler }

  private link (nodeId: string): Link | undefined {
    const l = this.host.get(nodeId)
    return l !== undefined && l.open && l.serves('stream') ? l : undefined
  }

  connect (peer: PeerRef): void {
    if (this.link(peer.nodeId) !== undefined || this.dialing.has(peer.nodeId)) return
    const listed = this.directory.get(peer.nodeId)
    const address = listed?.address ?? peer.address
    const port = listed !== undefined ? (listed.linkPort ?? LINK_PORT_DEFAULT) : peer.port
    if (address === undefined || address === '' || port === undefined || port === 0) {
      queueMicrotask(() => { this.handler?.down(peer.nodeId) })
      return
    }
    this.dialing.add(peer.nodeId)
    this.host.connect(address, port, peer.nodeId).then((l) => {
      this.dialing.delete(peer.nodeId)
      // connect() may hand back a link that was already open: say so again for whoever waits.
      if (l.open) this.handler?.up(l.nodeId)
    }, (err: unknown) => {
      this.dialing.delete(peer.nodeId)
      this.log.debug('stream peer unreachable', { node: peer.nodeId, address, port, err })
      this.handler?.down(peer.nodeId)
    })
  }

  isUp (nodeId: string): boolean { return this.link(nodeId) !== undefined }

  send (nodeId: string, frame: Buffer, options: TransportSendOptions = {}): boolean {
    return this.link(nodeId)?.sendFrame(frame, options) ?? false
  }

  queuedBytes (nodeId: string): number { return this.host.get(nodeId)?.queuedBytes ?? 0 }
  rttMs (nodeId: string): number | null { return this.host.get(nodeId)?.rttMs ?? null }

  hint (nodeId: string): { address: string, port: number } | null {
    const l = this.link(nodeId)
    return l === undefined || l.peerListenPort === 0 ? null : { address: l.remoteAddress, port: l.peerListenPort }
  }

  peers (): PeerRef[] {
    const out = new Map<string, PeerRef>()
    for (const l of this.host.list()) if (l.open && l.serves('stream')) out.set(l.nodeId, { nodeId: l.nodeId })
    for (const p of this.directory.list()) {
      if (!out.has(p.nodeId)) out.set(p.nodeId, { nodeId: p.nodeId, address: p.address, port: p.linkPort ?? LINK_PORT_DEFAULT })
    }
    return [...out.values()]
  }
}
