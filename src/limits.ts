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

// ---- flash cache (src/flash-cache) ---------------------------------------------
/** Pieces one cache may index; config cache.piecesMax is at most this. */
export const CACHE_PIECE_COUNT_MAX = 1 << 20
/** Puts and deletes queued for the single writer at once (each holds its bytes in memory). */
export const CACHE_PENDING_WRITES_MAX = 64
/** Distinct hashes pinned at once. */
export const CACHE_PIN_COUNT_MAX = 65_536
/** Erased blocks held back so compaction always has somewhere to copy to. */
export const CACHE_RESERVE_BLOCKS = 1
/** Blocks reserved for the two anchor slots (blocks 0 and 1). */
export const CACHE_SLOT_BLOCKS = 2
/** Checkpoint parts one anchor can list. */
export const CACHE_CHECKPOINT_PARTS_MAX = 256
/** A checkpoint is written once this many records were appended since the last (bounds recovery reads). */
export const CACHE_CHECKPOINT_RECORDS_MAX = 4_096
/** ... or once the bytes written since the last exceed this many times its size (bounds its write amplification to 1/8). */
export const CACHE_CHECKPOINT_INTERVAL_FACTOR = 8
/** Chunk of a streaming read: memory per open stream. */
export const CACHE_READ_CHUNK_BYTES = 64 * 1024
/** A read that raced a compaction is retried at the piece's new place at most this often. */
export const CACHE_READ_RETRIES_MAX = 4
/** Blocks tried for one allocation before giving up (bad blocks in a row). */
export const CACHE_ALLOCATE_ATTEMPTS_MAX = 16
/** Compaction rounds one write may run before it gives up making room. */
export const CACHE_COMPACTION_ROUNDS_MAX = 64
/** Segment numbers reserved by one anchor: none is used before an anchor durably reserves it. */
export const CACHE_SEQ_RESERVE_COUNT = 1024
/** Last resort when neither the blocks nor the anchor slots could all be read at open: skip this many numbers. */
export const CACHE_SEQ_SKIP_UNREADABLE = 1 << 20
/** A read that fails during recovery is tried this many times before its block counts as unreadable. */
export const CACHE_OPEN_READ_ATTEMPTS = 3
/** Width of the write-budget window, and its buckets. */
export const CACHE_WRITE_BUDGET_WINDOW_MS = 24 * 3600 * 1000
export const CACHE_WRITE_BUDGET_BUCKETS = 24
/**
 * Stored bytes at most this share of the flash's usable bytes: the rest is
 * dead space waiting for compaction, so a victim with little to copy always
 * exists (greedy compaction's copying per block freed stays bounded).
 */
export const CACHE_FILL_RATIO_MAX = 0.875
/** Smallest erase block the cache accepts (an anchor listing many parts must fit twice). */
export const CACHE_BLOCK_BYTES_MIN = 1024

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
assert(CACHE_READ_CHUNK_BYTES <= FLASH_BLOCK_BYTES_MAX, 'a read chunk fits one block')
assert(CACHE_BLOCK_BYTES_MIN <= FLASH_BLOCK_BYTES_MAX, 'the smallest cache block is a valid block')
assert(CACHE_WRITE_BUDGET_WINDOW_MS % CACHE_WRITE_BUDGET_BUCKETS === 0, 'write budget buckets tile the window')
assert(CACHE_PENDING_WRITES_MAX >= 1 && CACHE_RESERVE_BLOCKS >= 1, 'the cache can write and compact')
assert(SHUTDOWN_MS_MAX <= 2_000, 'design: a clean stop takes at most 2 s')
