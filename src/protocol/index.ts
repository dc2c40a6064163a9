// The LAN protocol subsystem's only door.
export { StaticPeerDirectory, type PeerDirectory, type PeerInfo, type PeerEvent } from './peers'
// Discovery (issue 3): SSDP, the signed self-description, the peer list.
export { PeerList, type PeerOrigin, type RemoveReason } from './peer-list/peer-list'
export { Discovery, type DiscoveryConfig, type DiscoveryOptions } from './discovery/discovery'
export { signDescribe, verifyDescribe, DESCRIBE_DOMAIN, NONCE_PATTERN, type DescribeDocument, type DescribeFields, type VerifiedDescribe } from './discovery/describe'
export { netDescribeFetcher, type DescribeFetcher } from './discovery/fetcher'
export { httpGet, type GetTarget } from './discovery/http-get'
export { serveDescribe } from './discovery/describe-server'
export { parseStaticPeer } from './discovery/static-peers'
export { Ssdp, type Announcement, type SsdpOptions, type SsdpStats } from './ssdp/ssdp'
export { parseSsdp, formatSsdp, type SsdpMessage, type SsdpKind } from './ssdp/message'
export { interpretSsdp, DROP_REASONS, type DropReason, type SsdpEvent } from './ssdp/interpret'
export { CANOPY_DEVICE_TYPE, DESCRIBE_PATH, SSDP_GROUP, SSDP_PORT, deviceUuid, nodeIdOfCanopyUsn } from './ssdp/names'
