// The LAN protocol subsystem's only door.
export { StaticPeerDirectory, type PeerDirectory, type PeerInfo, type PeerEvent } from './peers'
