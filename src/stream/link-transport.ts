// The stream transport on the peer link: one authenticated link per peer,
// the "stream" channel, addresses from the peer directory (or from a hint a
// message carried, verified by the handshake's expected node id).

import type { Logger } from '../log'
import type { PeerDirectory } from '../protocol'
import { LINK_PORT_DEFAULT, type LinkHost } from '../protocol/link'
import type { PeerRef, StreamTransport, TransportHandler, TransportSendOptions } from './transport'

export function createLinkTransport (host: LinkHost, directory: PeerDirectory, log: Logger): StreamTransport {
  let handler: TransportHandler | null = null
  const dialing = new Set<string>()
  host.on('stream', (link, frame) => { handler?.frame(link.nodeId, frame) })
  host.onOpen((link) => { handler?.up(link.nodeId) })
  host.onClosed((link) => { handler?.down(link.nodeId) })

  /** The open link to nodeId, if it carries streams. */
  const link = (nodeId: string) => {
    const l = host.get(nodeId)
    return l !== undefined && l.open && l.serves('stream') ? l : undefined
  }

  return {
    get selfId (): string { return host.nodeId },
    setHandler (h: TransportHandler): void { handler = h },
    isUp: (nodeId: string): boolean => link(nodeId) !== undefined,
    send: (nodeId: string, frame: Buffer, options: TransportSendOptions = {}): boolean => link(nodeId)?.sendFrame(frame, options) ?? false,
    queuedBytes: (nodeId: string): number => host.get(nodeId)?.queuedBytes ?? 0,
    rttMs: (nodeId: string): number | null => host.get(nodeId)?.rttMs ?? null,

    connect (peer: PeerRef): void {
      const id = peer.nodeId
      if (link(id) !== undefined || dialing.has(id)) return
      const listed = directory.get(id)
      const address = listed?.address ?? peer.address
      const port = listed !== undefined ? (listed.linkPort ?? LINK_PORT_DEFAULT) : peer.port
      if (address === undefined || address === '' || port === undefined || port === 0) {
        queueMicrotask(() => { handler?.down(id) })
        return
      }
      dialing.add(id)
      host.connect(address, port, id).then((l) => {
        dialing.delete(id)
        // connect() may hand back a link that was already open: say so again for whoever waits.
        if (l.open) handler?.up(l.nodeId)
      }, (err: unknown) => {
        dialing.delete(id)
        log.debug('stream peer unreachable', { node: id, address, port, err })
        handler?.down(id)
      })
    },

    hint (nodeId: string): { address: string, port: number } | null {
      const l = link(nodeId)
      return l === undefined || l.peerListenPort === 0 ? null : { address: l.remoteAddress, port: l.peerListenPort }
    },

    peers (): PeerRef[] {
      const out = new Map<string, PeerRef>()
      for (const l of host.list()) if (l.open && l.serves('stream')) out.set(l.nodeId, { nodeId: l.nodeId })
      for (const p of directory.list()) {
        if (!out.has(p.nodeId)) out.set(p.nodeId, { nodeId: p.nodeId, address: p.address, port: p.linkPort ?? LINK_PORT_DEFAULT })
      }
      return [...out.values()]
    }
  }
}
