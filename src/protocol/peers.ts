// The peer list's contract: the address book every LAN protocol uses. SSDP
// (src/protocol/ssdp, src/protocol/peer-list) fills it with peers whose
// signed self-description verified; resolution, election, streams and groups
// only read it and listen for changes.

export interface PeerInfo {
  /** 32 hex characters, derived from publicKey (identity.nodeIdOf). */
  nodeId: string
  /** Raw 32-byte ed25519 public key. */
  publicKey: Buffer
  /** The LAN address the peer was seen at. */
  address: string
  /** The peer's HTTP port (describe, data plane, streams, proxy). */
  httpPort: number
  /** The peer's UDP port for signed datagrams (need/have/found, election). */
  udpPort: number
  /** The peer's TCP port for authenticated links (src/protocol/link); absent: LINK_PORT_DEFAULT (8788). */
  linkPort?: number
  /** What the peer offers, e.g. "resolve", "provider", "relay". */
  capabilities: readonly string[]
  name: string
  version: string
  /** Monotonic ms of the last sign of life (NOTIFY, search reply, message). */
  lastSeenMs: number
  /** Monotonic ms after which the entry is dropped unless refreshed (SSDP max-age). */
  expiresMs: number
}

export type PeerEvent = { type: 'added' | 'updated' | 'removed', peer: PeerInfo }

export interface PeerDirectory {
  list (): readonly PeerInfo[]
  get (nodeId: string): PeerInfo | undefined
  /** Subscribe; returns the unsubscribe function. */
  on (listener: (event: PeerEvent) => void): () => void
}

/** A directory filled by hand: for tests and simulations of protocols above discovery. */
export class StaticPeerDirectory implements PeerDirectory {
  private readonly peers = new Map<string, PeerInfo>()
  private readonly listeners = new Set<(e: PeerEvent) => void>()

  list (): readonly PeerInfo[] { return [...this.peers.values()] }
  get (nodeId: string): PeerInfo | undefined { return this.peers.get(nodeId) }
  on (listener: (e: PeerEvent) => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  set (peer: PeerInfo): void {
    const type = this.peers.has(peer.nodeId) ? 'updated' : 'added'
    this.peers.set(peer.nodeId, peer)
    for (const l of [...this.listeners]) l({ type, peer })
  }

  remove (nodeId: string): void {
    const peer = this.peers.get(nodeId)
    if (peer === undefined) return
    this.peers.delete(nodeId)
    for (const l of [...this.listeners]) l({ type: 'removed', peer })
  }
}
