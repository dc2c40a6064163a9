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
