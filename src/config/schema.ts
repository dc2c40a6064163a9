// The agent's configuration: every field, its bound and its default. The
// embedded defaults serve with no file at all; README's config reference is
// written from this.

import { CACHE_BLOCK_BYTES_MIN, CACHE_PIECE_COUNT_MAX, FLASH_BLOCK_BYTES_MAX, FLASH_BLOCK_COUNT_MAX, CONFIG_LIST_COUNT_MAX, CONFIG_STRING_BYTES_MAX, HTTP_CONNECTIONS_MAX, HTTP_HEADERS_TIMEOUT_MS_MAX, HTTP_REQUEST_TIMEOUT_MS_MAX, NIC_POLL_MS, NIC_POLL_MS_MIN } from '../limits'
import { DESCRIBE_REFETCH_MS, SSDP_MAX_AGE_SECONDS_MAX, SSDP_MAX_AGE_SECONDS_MIN, STATIC_PEERS_COUNT_MAX } from '../limits'
import { SOURCE_SLOTS_MAX } from '../limits'
import { parseStaticPeer } from '../protocol/discovery/static-peers'
import { parsePublicKey } from '../crypto/key-text'
import { arrayOf, bool, int, map, obj, oneOf, optional, str, type Infer } from '../validate'
import { STREAM_CHILDREN_MAX, STREAM_RING_BYTES_MAX, STREAM_RING_BYTES_MIN } from '../limits'
import { GROUP_NEIGHBOURS_MAX, RECORDS_COUNT_MAX } from '../limits'

const IFNAME = str({ min: 1, max: 15, pattern: /^[A-Za-z0-9_.:@-]+$/, hint: 'an interface name' })
const STATIC_PEER = map(str({ min: 1, max: 64 }), 'an agent URL like "http://192.168.1.5:8787" (IP and port)',
  (url) => (parseStaticPeer(url) === null ? undefined : url))
const POW2 = (min: number, max: number, def: number) =>
  map(int(min, max), `a power of two from ${min} to ${max}`, (n) => ((n & (n - 1)) === 0 ? n : undefined), def)
const PUBLISHER = map(str({ min: 1, max: 64 }), 'a publisher key like "ed25519:<43 base64url characters>"', (k) => (parsePublicKey(k) === null ? undefined : k))
const SLOTS = (def: number) => int(1, SOURCE_SLOTS_MAX, def)
const HOST = str({ min: 1, max: 255, pattern: /^[A-Za-z0-9.:_%-]+$/, hint: 'an IP address or host name' })

export const configSpec = obj({
  /** Where identity, flash areas and state live. */
  dataDir: str({ min: 1, max: CONFIG_STRING_BYTES_MAX, def: './canopy-data' }),
  /** A friendly name shown on the status page and to peers. */
  name: str({ max: 64, def: '' }),
  /** Publisher keys whose manifests this node accepts; canopy agent --trust adds to them. */
  trustedPublishers: arrayOf(PUBLISHER, { max: CONFIG_LIST_COUNT_MAX, def: [] }),
  http: obj({
    host: { ...HOST, fallback: () => '0.0.0.0' },
    port: int(0, 65535, 8787),
    /** Who may use the HTTP port: loopback and LAN prefixes only, or anyone. */
    allowFrom: oneOf(['lan', 'any'] as const, 'lan'),
    connectionsMax: int(1, HTTP_CONNECTIONS_MAX, HTTP_CONNECTIONS_MAX),
    headersTimeoutMs: int(100, HTTP_HEADERS_TIMEOUT_MS_MAX, HTTP_HEADERS_TIMEOUT_MS_MAX),
    requestTimeoutMs: int(100, HTTP_REQUEST_TIMEOUT_MS_MAX, HTTP_REQUEST_TIMEOUT_MS_MAX)
  }),
  interfaces: obj({
    /** LAN interfaces by name; when given, no other interface is LAN. */
    lan: arrayOf(IFNAME, { max: CONFIG_LIST_COUNT_MAX, def: [] }),
    /** WAN interfaces by name (the gateway's uplink). */
    wan: arrayOf(IFNAME, { max: CONFIG_LIST_COUNT_MAX, def: [] }),
    pollMs: int(NIC_POLL_MS_MIN, 60_000, NIC_POLL_MS)
  }),
  log: obj({
    level: oneOf(['debug', 'info', 'warn', 'error'] as const, 'info')
  }),
  protocol: obj({
    /** UDP port for signed LAN datagrams (need/have/found, election); peers learn it from /api/describe. */
    udpPort: int(0, 65535, 8787),
    /** Address the UDP socket binds (all interfaces by default; datagrams from outside the LAN prefixes are dropped). */
    udpHost: { ...HOST, fallback: () => '0.0.0.0' },
    election: obj({
      /** May this node become the designated provider (fetch from the internet for the LAN)? */
      candidate: bool(true),
      /** WAN bandwidth to claim in elections, Mbit/s; 0: the WAN interface's link speed. */
      wanMbps: int(0, 1_000_000, 0)
    })
  }),
  discovery: obj({
    /** SSDP on the LAN interfaces (false: no SSDP socket at all; static peers are still checked). */
    enabled: bool(true),
    /** NOTIFY alive this often, jittered by ±10 % (at most a third of maxAgeSeconds is used). */
    notifyIntervalMs: int(5_000, 3_600_000, 60_000),
    /** The max-age we announce: peers drop us this long after our last NOTIFY. */
    maxAgeSeconds: int(SSDP_MAX_AGE_SECONDS_MIN, SSDP_MAX_AGE_SECONDS_MAX, 300),
    /** Agents checked by URL where multicast does not work, e.g. "http://192.168.1.5:8787". */
    staticPeers: arrayOf(STATIC_PEER, { max: STATIC_PEERS_COUNT_MAX, def: [] }),
    /** How often static peers' self-descriptions are fetched again (they expire after 3 misses). */
    staticRecheckMs: int(DESCRIBE_REFETCH_MS, 3_600_000, 60_000)
  }),
  /** The flash cache of verified pieces (src/flash-cache), in <dataDir>/cache. */
  cache: obj({
    enabled: bool(true),
    /** Bound on stored piece bytes; at most 7/8 of what the flash area holds. */
    bytesMax: int(1, 2 ** 50, 64 * 1024 * 1024),
    /** Bound on stored pieces. */
    piecesMax: int(1, CACHE_PIECE_COUNT_MAX, 8_192),
    /** Bytes programmed per 24 h that the flash part can sustain: tracked and reported. */
    writeBudgetBytesPerDay: int(1, 2 ** 50, 2 * 1024 * 1024 * 1024),
    /** How a read checks a stored piece: its records' CRC-32 (the bytes written, SHA-256-checked before) or SHA-256 again. */
    verifyReads: oneOf(['crc32', 'sha256'] as const, 'crc32'),
    /** Flash area geometry: erase block (also the largest piece, less 100 bytes of headers) and block count. */
    blockBytes: POW2(CACHE_BLOCK_BYTES_MIN, FLASH_BLOCK_BYTES_MAX, 2 * 1024 * 1024),
    blockCount: int(8, FLASH_BLOCK_COUNT_MAX, 44)
  }),
  /** Transfers of signed content (src/content): piece serving, sources, the scanner hook. */
  content: obj({
    enabled: bool(true),
    /** Pieces sent to peers at once (GET /p2p/piece); more are told 503 and retry. */
    uploadSlots: int(1, 64, 8),
    /** Piece requests in flight to one peer, to the designated provider, to the origin. */
    peerSlots: SLOTS(4),
    providerSlots: SLOTS(8),
    originSlots: SLOTS(4),
    /** A command run on every completed file (argv; the file's path is appended); a non-zero exit vetoes it. Empty: none. */
    scanner: arrayOf(str({ min: 1, max: CONFIG_STRING_BYTES_MAX }), { max: 16, def: [] })
  }),
  /** The HTTP forward proxy on the same port, for LAN clients (http_proxy=http://gateway:8787). */
  proxy: obj({
    enabled: bool(true),
    /** CONNECT (HTTPS, tunnelled, never cached) to these ports only; empty: CONNECT refused. */
    connectPorts: arrayOf(int(1, 65535), { max: CONFIG_LIST_COUNT_MAX, def: [443] }),
    /** Largest object stored; larger ones pass through. 0: a quarter of cache.bytesMax. */
    objectBytesMax: int(0, 2 ** 50, 0)
  }),
  /** WAN manners, for origin fetches of transfers only (LAN transfers and the proxy are never held back). */
  wan: obj({
    /** Bytes per second; 0: no cap. */
    rateBytesPerSecond: int(0, 2 ** 40, 0),
    /** Daily window of local time when origin fetches may run, "HH:MM-HH:MM" (may wrap midnight); empty: any time. */
    offPeak: str({ max: 11, pattern: /^$|^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$/, hint: 'empty or a window like "01:00-06:00"', def: '' })
  }),
  /** The authenticated peer-to-peer link (src/protocol/link): persistent TCP connections between agents. */
  link: obj({
    /** Listen address; null = the same as http.host. */
    host: optional(HOST),
    /** TCP port for peer links, null = http.port + 1 (0 when http.port is 0); peers learn it from /api/describe (PeerInfo.linkPort). */
    port: optional(int(0, 65535))
  }),
  /** Live streams (src/stream). */
  stream: obj({
    /** Bearer token that POST /stream/NAME must present; empty = ingest disabled (--push-token). */
    pushToken: str({ max: 256, def: '' }),
    /** Upload this node may spend relaying streams, kbit/s; children per stream = budget / bitrate. */
    uploadKbps: int(0, 10_000_000, 40_000),
    /** Children per stream at most, whatever the budget allows (0: never relay). */
    childrenMax: int(0, STREAM_CHILDREN_MAX, STREAM_CHILDREN_MAX),
    /** Bytes of recent chunks each stream keeps for players, gap repair and children. */
    ringBytes: int(STREAM_RING_BYTES_MIN, STREAM_RING_BYTES_MAX, 4 * 1024 * 1024),
    /** A parent that sent nothing for this long is dead; it heartbeats at a quarter of it. */
    deadAfterMs: int(100, 30_000, 400),
    /** Chunks older than this (from the source) are dropped, not queued. */
    playoutDelayMs: int(500, 60_000, 3_000),
    /** A member with no players and no children leaves the tree after this. */
    lingerMs: int(0, 600_000, 10_000)
  }),
  /** Groups, records and collaboration (src/groups): memberships in <dataDir>/groups.json, records in the <dataDir>/records flash area. */
  groups: obj({
    enabled: bool(true),
    /** The LAN's default group, formed by the LAN's agents (content-location records live there). */
    lan: bool(true),
    /** Members each node keeps links to, per group. */
    neighbours: int(1, GROUP_NEIGHBOURS_MAX, 4),
    /** Anti-entropy: a summary goes to one neighbour per group this often. */
    syncIntervalMs: int(200, 600_000, 5_000),
    /** Records stored, all groups together; beyond it new records are refused (never evicted). */
    recordsMax: int(1, RECORDS_COUNT_MAX, 10_000),
    /** Records one author may create per minute (by their creation time), per group. */
    recordsPerAuthorPerMinute: int(1, 1_000_000, 600),
    /** A deleted record's tombstone lives this long: longer than any partition should last. */
    tombstoneMs: int(1_000, 30 * 86_400_000, 86_400_000),
    /** The records flash area: erase block (a power of two, at least 32 KiB: one whole record) and block count. */
    blockBytes: POW2(32 * 1024, FLASH_BLOCK_BYTES_MAX, 64 * 1024),
    blockCount: int(8, FLASH_BLOCK_COUNT_MAX, 192)
  })
})

export type Config = Infer<typeof configSpec>