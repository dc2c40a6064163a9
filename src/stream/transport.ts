// What the tree logic needs from the network, and nothing more: links to
// peers by node id, frames in and out, liveness events. createLinkTransport
// (link-transport.ts) puts it on the authenticated peer link (real sockets or
// the simulated network); the 1 000-node simulation puts it on a
// message-level model. The tree logic (session.ts, streams.ts) is the same
// module in both.

export interface PeerRef {
  nodeId: string
  /** Where to dial, when known from a message (else the directory decides). */
  address?: string
  port?: number
}

export interface TransportHandler {
  /** A link to nodeId is open (after connect(), or the peer dialled us). */
  up (nodeId: string): void
  /** The link closed or a connect failed. */
  down (nodeId: string): void
  /** A stream-channel frame (whole link frame, header included). */
  frame (nodeId: string, frame: Buffer): void
}

/** Options of a control message: ahead of queued chunks. */
export const URGENT: TransportSendOptions = { urgent: true }

export interface TransportSendOptions {
  /** Drop instead of writing after this monotonic ms (0: never). */
  expiresAtMs?: number
  /** Ahead of queued chunks (control messages). */
  urgent?: boolean
}

export interface StreamTransport {
  readonly selfId: string
  setHandler (handler: TransportHandler): void
  /** Open a link if none is open; up() or down() follows (asynchronously). */
  connect (peer: PeerRef): void
  isUp (nodeId: string): boolean
  /** Queue a frame; false when there is no open link or its queue is full. */
  send (nodeId: string, frame: Buffer, options?: TransportSendOptions): boolean
  queuedBytes (nodeId: string): number
  rttMs (nodeId: string): number | null
  /** The address and link port others may dial this linked peer at. */
  hint (nodeId: string): { address: string, port: number } | null
  /** Peers worth asking about a stream: the directory, and linked peers. */
  peers (): PeerRef[]
}
