// The agent's configuration: every field, its bound and its default. The
// embedded defaults serve with no file at all; README's config reference is
// written from this.

import { CONFIG_LIST_COUNT_MAX, CONFIG_STRING_BYTES_MAX, HTTP_CONNECTIONS_MAX, HTTP_HEADERS_TIMEOUT_MS_MAX, HTTP_REQUEST_TIMEOUT_MS_MAX, NIC_POLL_MS, NIC_POLL_MS_MIN } from '../limits'
import { STREAM_CHILDREN_MAX, STREAM_RING_BYTES_MAX, STREAM_RING_BYTES_MIN } from '../limits'
import { arrayOf, int, obj, oneOf, optional, str, type Infer } from '../validate'

const IFNAME = str({ min: 1, max: 15, pattern: /^[A-Za-z0-9_.:@-]+$/, hint: 'an interface name (1-15 of A-Z a-z 0-9 _ . : @ -)' })
const HOST = str({ min: 1, max: 255, pattern: /^[A-Za-z0-9.:_%-]+$/, hint: 'an IP address or host name' })
const HOST_PORT = str({ min: 3, max: 262, pattern: /^(\[[0-9A-Fa-f:.%]+\]|[A-Za-z0-9._-]+):\d{1,5}$/, hint: 'HOST:PORT (an IPv6 host in brackets)' })

export const configSpec = obj({
  /** Where identity, flash areas and state live. */
  dataDir: str({ min: 1, max: CONFIG_STRING_BYTES_MAX, def: './canopy-data' }),
  /** A friendly name shown on the status page and to peers. */
  name: str({ max: 64, def: '' }),
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
    udpPort: int(0, 65535, 8787)
  }),
  /** The authenticated peer-to-peer link (src/protocol/link): persistent TCP connections between agents. */
  link: obj({
    /** Listen address; null = the same as http.host. */
    host: optional(HOST),
    /** TCP port for peer links, null = http.port + 1 (0 when http.port is 0); peers learn it from /api/describe (PeerInfo.linkPort). */
    port: optional(int(0, 65535)),
    /** Link addresses dialled at start and kept open; each becomes a peer once its handshake proves its key. */
    peers: arrayOf(HOST_PORT, { max: CONFIG_LIST_COUNT_MAX, def: [] })
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
  })
})

export type Config = Infer<typeof configSpec>
