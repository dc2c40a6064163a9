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

// ---- peer link (src/protocol/link) -------------------------------------------------
/** One link frame: 4-byte length, channel byte, payload. Refused on its declared length, before a byte is buffered. */
export const LINK_FRAME_BYTES_MAX = 64 * 1024
/** Frames waiting in one link's send queue (ours, before the socket). */
export const LINK_QUEUE_FRAMES_MAX = 1_024
/** Bytes waiting in one link's send queue. */
export const LINK_QUEUE_BYTES_MAX = 2 * 1024 * 1024
/** Urgent (control) frames queued ahead of data. */
export const LINK_URGENT_FRAMES_MAX = 256
/** Connect plus hello/proof exchange. */
export const LINK_HANDSHAKE_MS = 3_000
export const LINK_CONNECT_MS = 2_000
/** Authenticated links open at once, in and out. */
export const LINK_COUNT_MAX = 128
/** Connections still in their handshake at once. */
export const LINK_HANDSHAKES_MAX = 32
/** A link that sent nothing for this long sends a ping. */
export const LINK_KEEPALIVE_MS = 5_000
/** A link that received nothing (not even a ping) for this long is closed. */
export const LINK_DEAD_MS = 15_000
/** A link carrying no channel traffic for this long is closed, unless pinned. */
export const LINK_IDLE_MS = 60_000
/** Channels one side may serve. */
export const LINK_CHANNELS_MAX = 16
/** Opaque hello extension bytes (issue 6 puts its key agreement here). */
export const LINK_HELLO_EXTENSION_BYTES_MAX = 512
/** Static link peers: redial backoff. */
export const LINK_REDIAL_MS_MIN = 500
export const LINK_REDIAL_MS_MAX = 10_000

// ---- live streams (src/stream) ----------------------------------------------------
/** MPEG-TS packet size (ISO/IEC 13818-1 §2.4.3.2). */
export const TS_PACKET_BYTES = 188
/** TS packets in one chunk (64 × 188 = 12 032 bytes: ~12 ms at 8 Mbit/s). */
export const STREAM_CHUNK_PACKETS_MAX = 64
/** Chunks covered by one signed batch. */
export const STREAM_SIG_BATCH_CHUNKS_MAX = 16
/** A batch is signed at most this long after its first chunk was cut. */
export const STREAM_SIG_BATCH_MS = 25
/** Batches are signed at the end of each ingest write, but not more often than this (≤ 100 signatures/s). */
export const STREAM_SIG_BATCH_MIN_INTERVAL_MS = 10
/** Stream names: [A-Za-z0-9._-], this long at most. */
export const STREAM_NAME_BYTES_MAX = 64
/** Streams a node takes part in at once (source, relay or player). */
export const STREAM_COUNT_MAX = 8
/** Streams a node remembers (meta + root) without taking part. */
export const STREAM_KNOWN_MAX = 64
/** Children one node serves, whatever its upload budget says. */
export const STREAM_CHILDREN_MAX = 16
/** Tree depth (the path root..node carried in ACCEPT/STATUS). */
export const STREAM_DEPTH_MAX = 32
/** Redirects followed by one join before starting over at the root. */
export const STREAM_REDIRECTS_MAX = 8
/** Join targets tried by one join attempt (candidates, backups, root). */
export const STREAM_JOIN_TARGETS_MAX = 16
/** One join target must accept, redirect or refuse within this. */
export const STREAM_JOIN_STEP_MS = 1_000
/** Peers asked at once when looking for a stream. */
export const STREAM_FIND_PEERS_MAX = 16
/** One lookup round waits this long for a FOUND. */
export const STREAM_FIND_MS = 1_000
/** Candidates carried by a REDIRECT, a FOUND, a REPORT or a STATUS. */
export const STREAM_CANDIDATES_MAX = 4
/** Chunks held while their signature batch has not arrived. */
export const STREAM_PENDING_CHUNKS_MAX = 256
/** Signature batches kept (for gap fills), per stream. */
export const STREAM_SIG_BATCHES_MAX = 1_024
/** Chunks in one ring buffer, whatever its byte budget. */
export const STREAM_RING_CHUNKS_MAX = 4_096
export const STREAM_RING_BYTES_MIN = 256 * 1024
export const STREAM_RING_BYTES_MAX = 64 * 1024 * 1024
/** Local HTTP players per node (all streams). */
export const STREAM_PLAYERS_MAX = 64
/** A player waits at most this long on a missing chunk (while its node still tries to repair it) before skipping it. */
export const STREAM_PLAYER_GAP_MS = 3_000
/** Re-attach events kept for status. */
export const STREAM_EVENTS_MAX = 32
/** A pusher that sends nothing for this long is cut off. */
export const STREAM_INGEST_IDLE_MS = 10_000
/** A relay that sent a bad chunk is not used again for this long. */
export const STREAM_BLACKLIST_MS = 60_000
/** Bitrate assumed before the source has measured one (bytes/s, 1 Mbit/s). */
export const STREAM_BITRATE_FLOOR_BYTES_PER_SEC = 125_000
/** A child whose queue stays full this long is moved lower. */
export const STREAM_LAG_MS = 1_000
/** A pool slot holds the largest chunk frame (5 + 22 + 64 × 188 = 12 059 bytes). */
export const STREAM_FRAME_SLOT_BYTES = 12 * 1024
/** Pooled frames besides the ring (link queues, players' writes in flight), bytes. */
export const STREAM_FRAME_POOL_SLACK_BYTES = 4 * 1024 * 1024
/** A player request waits this long for the stream to be found and joined. */
export const STREAM_JOIN_DEADLINE_MS = 5_000

// ---- simulation -----------------------------------------------------------------
/** Timers the simulated clock holds at once. */
export const SIM_TIMERS_COUNT_MAX = 1 << 20

// ---- bundle -------------------------------------------------------------------------
/** design.md: one file, at most 250 KB minified. */
export const BUNDLE_BYTES_MAX = 250_000

// ---- relations, asserted at load ------------------------------------------------
assert(HTTP_HEADERS_TIMEOUT_MS_MAX <= HTTP_REQUEST_TIMEOUT_MS_MAX, 'headers must time out no later than the request')
assert(HTTP_TIMEOUT_CHECK_MS * 4 <= HTTP_HEADERS_TIMEOUT_MS_MAX, 'timeouts are checked often enough to matter')
assert(HTTP_KEEPALIVE_MS < HTTP_HEADERS_TIMEOUT_MS_MAX, 'Node requires keepAliveTimeout below headersTimeout')
assert(LOG_LINES_BURST_MAX >= LOG_LINES_PER_SECOND_MAX, 'the log burst covers one second')
assert(NIC_POLL_MS >= NIC_POLL_MS_MIN, 'interface poll interval within bounds')
assert(SHUTDOWN_MS_MAX <= 2_000, 'design: a clean stop takes at most 2 s')
assert(LINK_KEEPALIVE_MS * 2 < LINK_DEAD_MS, 'a live link pings at least twice before it is declared dead')
assert(LINK_FRAME_BYTES_MAX * 4 <= LINK_QUEUE_BYTES_MAX, 'a link queue holds several of the largest frames')
assert(STREAM_CHUNK_PACKETS_MAX * TS_PACKET_BYTES + 256 <= LINK_FRAME_BYTES_MAX, 'a chunk with its headers fits one link frame')
assert(1 + 16 + 4 + 1 + 4 + STREAM_SIG_BATCH_CHUNKS_MAX * 32 + 64 + 64 <= LINK_FRAME_BYTES_MAX, 'a signature batch fits one link frame')
assert(STREAM_RING_BYTES_MAX / (STREAM_CHUNK_PACKETS_MAX * TS_PACKET_BYTES) >= 1, 'a ring holds at least one chunk')
assert(STREAM_SIG_BATCHES_MAX * STREAM_SIG_BATCH_CHUNKS_MAX >= STREAM_RING_CHUNKS_MAX, 'batches kept cover every chunk a ring holds')
assert(STREAM_PENDING_CHUNKS_MAX >= 2 * STREAM_SIG_BATCH_CHUNKS_MAX, 'a whole batch can wait for its signature')
assert(STREAM_SIG_BATCH_MIN_INTERVAL_MS < STREAM_SIG_BATCH_MS, 'a paused input signs sooner than the timer')
assert(STREAM_CHILDREN_MAX * 16 + 64 < LINK_FRAME_BYTES_MAX, 'control messages listing children fit a frame')
assert(STREAM_DEPTH_MAX <= 255, 'depth fits one byte')
assert(STREAM_FRAME_SLOT_BYTES >= 5 + 22 + STREAM_CHUNK_PACKETS_MAX * TS_PACKET_BYTES, 'a pool slot holds the largest chunk frame')
