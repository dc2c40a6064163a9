// Every bound in Canopy, in one place. Names end in their unit
// (_BYTES_MAX, _MS, _COUNT_MAX). Relations between them are asserted at the
// bottom, at load, so an inconsistent edit fails at start rather than in the field.

import { assert } from './errors'

// ---- HTTP surface -----------------------------------------------------------
/** Request line plus headers (Node's maxHeaderSize). */
export const HTTP_HEADER_BYTES_MAX = 8 * 1024
/** A client must finish its headers within this. */
export const HTTP_HEADERS_TIMEOUT_MS_MAX = 10_000
/** A whole request (headers and body) must arrive within this. */
export const HTTP_REQUEST_TIMEOUT_MS_MAX = 30_000
/** How often Node checks the two timeouts above. */
export const HTTP_TIMEOUT_CHECK_MS = 500
/** Idle keep-alive connections are closed after this. */
export const HTTP_KEEPALIVE_MS = 5_000
/** Open connections at once; more are refused by the kernel backlog / closed. */
export const HTTP_CONNECTIONS_MAX = 256
/** JSON bodies accepted by the API. */
export const HTTP_JSON_BODY_BYTES_MAX = 64 * 1024
/** Requests served on one keep-alive connection before it is closed. */
export const HTTP_REQUESTS_PER_SOCKET_MAX = 1_000
/** Status page and /api/status: entries shown per list. */
export const STATUS_LIST_COUNT_MAX = 256
/** Series per metric (label combinations). */
export const METRIC_SERIES_COUNT_MAX = 1_024
/** Metrics registered in all. */
export const METRIC_COUNT_MAX = 512

// ---- process and lifecycle --------------------------------------------------
/** From the first SIGTERM/SIGINT to exit. */
export const SHUTDOWN_MS_MAX = 2_000
/** What a CLI client waits for the local agent. */
export const CLI_AGENT_TIMEOUT_MS = 5_000
/** A CLI client reads at most this much from the agent. */
export const CLI_RESPONSE_BYTES_MAX = 4 * 1024 * 1024
/** Arguments on one command line. */
export const CLI_ARGS_COUNT_MAX = 256

// ---- files, config, identity ------------------------------------------------
export const CONFIG_FILE_BYTES_MAX = 64 * 1024
export const IDENTITY_FILE_BYTES_MAX = 4 * 1024
/** Strings in the config (paths, names, hosts). */
export const CONFIG_STRING_BYTES_MAX = 4_096
/** Entries in any config list (interfaces, keys, ...). */
export const CONFIG_LIST_COUNT_MAX = 64

// ---- logs ---------------------------------------------------------------------
export const LOG_LINE_BYTES_MAX = 4 * 1024
/** Token bucket for log lines: a flood from the network cannot flood the log. */
export const LOG_LINES_PER_SECOND_MAX = 200
export const LOG_LINES_BURST_MAX = 400

// ---- network interfaces -----------------------------------------------------
export const NIC_POLL_MS = 5_000
export const NIC_POLL_MS_MIN = 250
export const NIC_COUNT_MAX = 64
export const NIC_ADDRESS_COUNT_MAX = 32

// ---- flash (HAL) ----------------------------------------------------------------
export const FLASH_BLOCK_BYTES_MAX = 16 * 1024 * 1024
export const FLASH_BLOCK_COUNT_MAX = 1 << 20
/** Block files held open at once by the Linux flash twin. */
export const FLASH_OPEN_FILES_MAX = 16
/** Operations the simulated flash remembers between syncs. */
export const SIM_FLASH_PENDING_OPS_MAX = 1 << 20

// ---- simulation -----------------------------------------------------------------
/** Timers the simulated clock holds at once. */
export const SIM_TIMERS_COUNT_MAX = 1 << 20

// ---- discovery: SSDP, self-description, peer list ----------------------------------
/** A datagram larger than this is dropped unparsed (UDA messages are a few hundred bytes). */
export const SSDP_DATAGRAM_BYTES_MAX = 1_400
/** Header lines per datagram. */
export const SSDP_HEADER_COUNT_MAX = 24
/** One line (start line or header), without its CRLF. */
export const SSDP_LINE_BYTES_MAX = 512
/** A header name. */
export const SSDP_HEADER_NAME_BYTES_MAX = 64
/** A search reply: one datagram of at most this many bytes... */
export const SSDP_REPLY_BYTES_MAX = 512
/** ...and at most this many times the search's size (QUIC's anti-amplification bound, RFC 9000 §8.1). */
export const SSDP_REPLY_AMPLIFICATION_MAX = 3
/** MX above this is treated as this (UDA 1.1: 1 to 5 seconds). */
export const SSDP_MX_SECONDS_MAX = 5
/** Replies to one source: a token bucket of this rate and burst. */
export const SSDP_SOURCE_REPLIES_PER_SECOND = 1
export const SSDP_SOURCE_REPLIES_BURST = 3
/** Replies in all, over every interface. */
export const SSDP_REPLIES_PER_SECOND_MAX = 20
/** Sources whose buckets are remembered (least recently seen forgotten first). */
export const SSDP_RATE_SOURCES_COUNT_MAX = 1_024
/** Replies waiting for their random delay. */
export const SSDP_PENDING_REPLIES_COUNT_MAX = 64
/** Multicast hops: the LAN and one router at most. */
export const SSDP_MULTICAST_TTL = 2
/** LAN interfaces served at once. */
export const SSDP_INTERFACES_COUNT_MAX = 16
/** An interface whose sockets cannot be opened is retried after NIC_POLL_MS, doubling up to this. */
export const SSDP_INTERFACE_RETRY_MS_MAX = 5 * 60_000
/** max-age we accept from peers and may be configured. */
export const SSDP_MAX_AGE_SECONDS_MIN = 30
export const SSDP_MAX_AGE_SECONDS_MAX = 86_400
/** Announcements and searches repeated after start (multicast is lossy), then only the periodic NOTIFY. */
export const SSDP_START_REPEAT_COUNT = 2
export const SSDP_START_REPEAT_MS = 1_000
/** The MX of our own searches: peers answer within this many seconds. */
export const SSDP_SEARCH_MX_SECONDS = 1
/** A LOCATION body (the signed self-description). */
export const DESCRIBE_BYTES_MAX = 16 * 1024
/** A LOCATION response's status line and headers. */
export const DESCRIBE_HEAD_BYTES_MAX = 4 * 1024
/** The whole LOCATION fetch, connect to last byte. */
export const DESCRIBE_TIMEOUT_MS = 2_000
/** Fetches in flight at once, and waiting. */
export const DESCRIBE_FETCHES_CONCURRENT_MAX = 4
export const DESCRIBE_QUEUE_COUNT_MAX = 64
/** One LOCATION is fetched at most once per this (a forged NOTIFY flood cannot make us fetch in a loop). */
export const DESCRIBE_REFETCH_MS = 10_000
/** LOCATIONs whose last fetch is remembered for the rule above. */
export const DESCRIBE_RECENT_COUNT_MAX = 512
/** Fields of a self-description. */
export const DESCRIBE_CAPABILITIES_COUNT_MAX = 16
export const DESCRIBE_ADDRESSES_COUNT_MAX = 16
/** The peer list: entries, and how often expired ones are swept. */
export const PEERS_COUNT_MAX = 256
/** Node ids listed at one address: one host minting keys cannot crowd out the LAN (a box runs one agent, a few at most). */
export const PEERS_PER_ADDRESS_COUNT_MAX = 4
export const PEER_SWEEP_MS = 1_000
/** Static peers from config. */
export const STATIC_PEERS_COUNT_MAX = 32

// ---- bundle -------------------------------------------------------------------------
/** design.md: one file, at most 250 KB minified. */
export const BUNDLE_BYTES_MAX = 250_000

// ---- relations, asserted at load ------------------------------------------------
assert(HTTP_HEADERS_TIMEOUT_MS_MAX <= HTTP_REQUEST_TIMEOUT_MS_MAX, 'headers must time out no later than the request')
assert(HTTP_TIMEOUT_CHECK_MS * 4 <= HTTP_HEADERS_TIMEOUT_MS_MAX, 'timeouts are checked often enough to matter')
assert(HTTP_KEEPALIVE_MS < HTTP_HEADERS_TIMEOUT_MS_MAX, 'Node requires keepAliveTimeout below headersTimeout')
assert(LOG_LINES_BURST_MAX >= LOG_LINES_PER_SECOND_MAX, 'the log burst covers one second')
assert(NIC_POLL_MS >= NIC_POLL_MS_MIN, 'interface poll interval within bounds')
assert(SSDP_REPLY_BYTES_MAX <= SSDP_DATAGRAM_BYTES_MAX, 'a reply is a datagram we would accept ourselves')
assert(SSDP_LINE_BYTES_MAX <= SSDP_DATAGRAM_BYTES_MAX && SSDP_HEADER_NAME_BYTES_MAX < SSDP_LINE_BYTES_MAX, 'line bounds fit a datagram')
assert(SSDP_SOURCE_REPLIES_BURST >= SSDP_SOURCE_REPLIES_PER_SECOND && SSDP_SOURCE_REPLIES_BURST <= SSDP_REPLIES_PER_SECOND_MAX, 'per-source burst within the global rate')
assert(SSDP_PENDING_REPLIES_COUNT_MAX >= SSDP_REPLIES_PER_SECOND_MAX * 2, 'pending replies cover the rate over a short MX')
assert(SSDP_SEARCH_MX_SECONDS <= SSDP_MX_SECONDS_MAX, 'our own MX obeys the cap')
assert(DESCRIBE_TIMEOUT_MS <= 2_000, 'issue 3: LOCATION fetched with a 2 s timeout')
assert(DESCRIBE_BYTES_MAX <= 16 * 1024, 'issue 3: LOCATION body at most 16 KiB')
assert(PEERS_PER_ADDRESS_COUNT_MAX >= 1 && PEERS_PER_ADDRESS_COUNT_MAX < PEERS_COUNT_MAX, 'one address holds a small share of the list')
assert(PEERS_COUNT_MAX <= STATUS_LIST_COUNT_MAX, 'the whole peer list fits the status page')
assert(SHUTDOWN_MS_MAX <= 2_000, 'design: a clean stop takes at most 2 s')
