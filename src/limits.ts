// Every bound in Canopy, in one place. Names end in their unit
// (_BYTES_MAX, _MS, _COUNT_MAX). Relations between them are checked by
// test/limits.test.ts, so an inconsistent edit fails `npm test`.

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

// ---- LAN wire protocol (src/protocol/wire, src/protocol/transport) ---------------
/** design.md: a datagram fits any LAN MTU, IPv6's 1 280-byte minimum included, with headers to spare. */
export const WIRE_DATAGRAM_BYTES_MAX = 1_200
/** Fixed envelope header: magic 2, version 1, type 1, sender key 32, counter 8 (wire/FORMAT.md). */
export const WIRE_HEADER_BYTES = 44
export const WIRE_SIGNATURE_BYTES = 64
export const WIRE_BODY_BYTES_MAX = WIRE_DATAGRAM_BYTES_MAX - WIRE_HEADER_BYTES - WIRE_SIGNATURE_BYTES
/** Counters stay exact in a JS number and in the 8-byte field. */
export const WIRE_COUNTER_MAX = Number.MAX_SAFE_INTEGER
/** Send counter values reserved per write of the counter file (one flash write per block). */
export const WIRE_COUNTER_BLOCK_COUNT = 4_096
export const WIRE_COUNTER_FILE_BYTES_MAX = 256
/** Replay bitmap per sender, in counter values (RFC 6479 ring: one word of it is slack). */
export const REPLAY_RING_BITS = 256
export const REPLAY_WINDOW_COUNT = REPLAY_RING_BITS - 32
/** Senders whose replay state is kept; the least recently heard non-peer goes first. */
export const REPLAY_SENDERS_COUNT_MAX = 1_024
/** Replay high-water marks written to the data dir this often (when changed), and at stop. */
export const REPLAY_PERSIST_MS = 60_000
export const REPLAY_PERSIST_COUNT_MAX = 256
export const REPLAY_FILE_BYTES_MAX = 64 * 1024
/** Parsed public keys kept (a KeyObject costs a DER parse). */
export const WIRE_KEY_CACHE_COUNT_MAX = 1_024
/** Datagrams waiting to be sent, and how many leave per tick. */
export const WIRE_SEND_QUEUE_COUNT_MAX = 1_024
export const WIRE_SEND_BURST_COUNT_MAX = 64
/** The next burst leaves this much later (64 datagrams per ms: far above a LAN's needs, kind to Wi-Fi queues). */
export const WIRE_SEND_TICK_MS = 1
/** Signature checks per second for all sources together, and per source address. */
export const WIRE_VERIFY_PER_SECOND_MAX = 4_000
export const WIRE_VERIFY_BURST_MAX = 1_000
export const WIRE_SOURCE_PER_SECOND_MAX = 500
export const WIRE_SOURCE_BURST_MAX = 250
/** Source addresses with a rate bucket. */
export const WIRE_SOURCES_COUNT_MAX = 256

// ---- CBOR decoder door (src/protocol/wire/cbor.ts) ----------------------------------
/** Bytes any one decode accepts at all; callers pass smaller bounds. */
export const CBOR_BYTES_MAX = 64 * 1024
/** Absolute ceilings set into cbor-x (setSizeLimits) for every decoder in the process. */
export const CBOR_CONTAINER_COUNT_MAX = 4_096
export const CBOR_DEPTH_MAX = 16
export const CBOR_ITEMS_COUNT_MAX = 8_192
/** Wire bodies: much tighter. */
export const WIRE_CBOR_DEPTH_MAX = 4
export const WIRE_CBOR_ITEMS_COUNT_MAX = 320
export const WIRE_CBOR_CONTAINER_COUNT_MAX = 160

// ---- resolution: need / have / found / downloading (src/protocol/resolve) -----------
/** A content id is a SHA-256. */
export const CONTENT_ID_BYTES = 32
/** URLs longer than this are named by content id instead (a NEED with 64 ranges must fit a datagram). */
export const CONTENT_URL_BYTES_MAX = 384
/** Piece ranges in one message ([first, end) pairs). */
export const PIECE_RANGES_COUNT_MAX = 64
/** A holder with no load answers within this (uniform random), so answers from many holders spread. */
export const RESOLVE_ANSWER_JITTER_MS = 8
/** Extra answer delay at full load, scaled by load in [0, 1]: busy holders answer last. */
export const RESOLVE_ANSWER_LOAD_MS = 32
/** Third parties answer for the designated provider later than holders would (uniform in [min, max]). */
export const RESOLVE_THIRD_PARTY_MS_MIN = 20
export const RESOLVE_THIRD_PARTY_MS_MAX = 60
/** A NEED without a covering answer is sent again to the peers that have not answered. */
export const RESOLVE_RETRY_MS = 80
/** From the first NEED: partial holders or downloads are reported from here on. */
export const RESOLVE_SETTLE_MS = 60
/** design.md: a miss is decided within a few hundred ms (target 250). */
export const RESOLVE_MISS_MS = 240
/** Lookups in progress at once on one node. */
export const RESOLVE_LOOKUPS_COUNT_MAX = 64
/** Holders and downloads remembered per lookup. */
export const RESOLVE_HOLDERS_COUNT_MAX = 64
/** Answers scheduled at once by the responder. */
export const RESOLVE_PENDING_ANSWERS_COUNT_MAX = 512
/** (requester, request) pairs remembered so that a retried NEED is answered at most once more. */
export const RESOLVE_ANSWERED_COUNT_MAX = 2_048
/** Answering the same request again is allowed after this (the first answer may have been lost). */
export const RESOLVE_REANSWER_MS = 40
/** Followers of this node's downloads, in all. */
export const RESOLVE_FOLLOWERS_COUNT_MAX = 64
/** A follower re-subscribes this often; a subscription not renewed ends after FOLLOW_EXPIRE. */
export const RESOLVE_FOLLOW_REFRESH_MS = 2_000
export const RESOLVE_FOLLOW_EXPIRE_MS = 6_000
/** Progress pushes to followers, at most this often per download. */
export const RESOLVE_PROGRESS_MS = 250
/** /api/resolve: query string bytes. */
export const RESOLVE_QUERY_BYTES_MAX = 2_048

// ---- designated provider election (src/protocol/election) -------------------------
/** The provider says it is alive this often (to every peer). */
export const ELECTION_HEARTBEAT_MS = 1_000
/** A provider not heard for this long is gone (three heartbeats). */
export const ELECTION_PROVIDER_TIMEOUT_MS = 3_000
/** How often liveness is checked. */
export const ELECTION_WATCH_MS = 100
/** A provider silent for this many heartbeats is dropped as soon as another node elects or announces. */
export const ELECTION_SUSPECT_BEATS = 1.5
/** A new provider repeats itself this soon after ELECTED (ms after it), before the regular heartbeats. */
export const ELECTION_EARLY_BEATS_MS: readonly number[] = [100, 300]
/** Before a candidate speaks: uniform jitter, plus a handicap for nodes without WAN access. */
export const ELECTION_ELECT_JITTER_MS = 40
export const ELECTION_NO_WAN_DELAY_MS = 60
/** A node that believes it wins waits this long (uniform) for a better claim before it announces. */
export const ELECTION_SETTLE_MS_MIN = 150
export const ELECTION_SETTLE_MS_MAX = 300
/** A node that heard a better claim waits this long for its ELECTED, then starts again. */
export const ELECTION_AWAIT_MS = 1_000
/** At most one direct ELECTED reply per node per this interval. */
export const ELECTION_REPLY_MS_MIN = 250
export const ELECTION_REPLIES_COUNT_MAX = 256
/** The target: the next best takes over within this after the provider vanishes. */
export const ELECTION_TAKEOVER_MS_MAX = 5_000

// ---- groups, records, collaboration (src/groups) -----------------------------------
/** A record's payload (issue 6). */
export const RECORD_PAYLOAD_BYTES_MAX = 16 * 1024
/** A whole signed record: payload, the other fields, the signature. */
export const RECORD_BYTES_MAX = RECORD_PAYLOAD_BYTES_MAX + 2 * 1024
/** A record type: [a-z0-9._-], this long at most. */
export const RECORD_TYPE_BYTES_MAX = 32
/** Attributes per record (names: [A-Za-z0-9._-], 1-32), and the bytes of one value. */
export const RECORD_ATTRIBUTES_COUNT_MAX = 16
export const RECORD_ATTRIBUTE_VALUE_BYTES_MAX = 256
/** Records one node stores, all groups together (config groups.recordsMax is at most this). */
export const RECORDS_COUNT_MAX = 1 << 20
/** Groups one node belongs to (the LAN's default group included). */
export const GROUPS_COUNT_MAX = 16
export const GROUP_NAME_BYTES_MAX = 64
/** Certificates in a membership chain: the root's, an admin's, the member's (and one spare). */
export const GROUP_CHAIN_COUNT_MAX = 4
/** An invitation as text (compact: one or two certificates, base64url). */
export const GROUP_INVITATION_CHARS_MAX = 2_048
/** A join waits this long for the inviter's welcome. */
export const GROUP_JOIN_MS = 5_000
/** Neighbours per group at most (config groups.neighbours). */
export const GROUP_NEIGHBOURS_MAX = 16
/** New links dialled per group per maintenance round. */
export const GROUP_DIALS_PER_ROUND_MAX = 2
/** Anti-entropy buckets per record type (by the record id's first byte). */
export const GROUP_BUCKETS = 64
/** Entries (id 16 + hash prefix 8 bytes) in one KEYS message, ids in one WANT. */
export const GROUP_KEYS_PER_MESSAGE_MAX = 2_000
/** Records batched into one REC message. */
export const GROUP_BATCH_BYTES_MAX = 48 * 1024
/** Record types listed in one summary. */
export const GROUP_TYPES_COUNT_MAX = 64
/** Frames one direction of a link may encrypt before the link is closed and dialled again with fresh keys. */
export const GROUP_LINK_FRAMES_MAX = 2 ** 32
/** X25519 secrets kept for links still in their handshake. */
export const GROUP_SHARES_PENDING_MAX = 2 * LINK_HANDSHAKES_MAX
/** Received records waiting for the store (beyond: dropped, fetched again by anti-entropy). */
export const GROUP_PENDING_RECORDS_MAX = 4_096
/** Expired records and tombstones are purged this often. */
export const GROUP_PURGE_MS = 10_000
/** Records in one API answer. */
export const GROUP_LIST_COUNT_MAX = 10_000
/** Event streams (SSE) open at once, bytes one may have unsent before it is cut, and its keep-alive. */
export const GROUP_SSE_CLIENTS_MAX = 32
export const GROUP_SSE_BUFFER_BYTES_MAX = 1024 * 1024
export const GROUP_SSE_HEARTBEAT_MS = 15_000
/** groups.json (memberships, owned root keys). */
export const GROUP_FILE_BYTES_MAX = 64 * 1024

// ---- content distribution: manifests, transfers, serving, proxy (src/content) ------
/** A signed manifest file (a 31 GB file at 1 MiB pieces lists ~31 000 hashes, ~2 MB). */
export const MANIFEST_BYTES_MAX = 2 * 1024 * 1024
export const MANIFEST_URLS_COUNT_MAX = 8
export const MANIFEST_NAME_BYTES_MAX = 255
/** Piece sizes a manifest may use: powers of two in [MIN, MAX]; MAX fits the flash cache's default 2 MiB block. */
export const PIECE_BYTES_MIN = 16 * 1024
export const PIECE_BYTES_MAX = 1024 * 1024
/** Pieces in one manifest (so a file is at most this × PIECE_BYTES_MAX). */
export const PIECES_COUNT_MAX = 30_000
/** Small files get smaller pieces: at least this many, down to PIECE_BYTES_MIN. */
export const PIECES_PER_FILE_MIN = 16
/** Transfers running at once on one node, and finished contents remembered (to answer NEEDs). */
export const TRANSFERS_COUNT_MAX = 16
export const KNOWN_CONTENT_COUNT_MAX = 256
/** Sources one transfer uses at once (peers, provider, origin). */
export const TRANSFER_SOURCES_COUNT_MAX = 32
/** Requests in flight to one source: bounds per kind (config picks within them). */
export const SOURCE_SLOTS_MAX = 16
/** Requests in flight for one transfer in all: its memory is at most this many pieces. */
export const TRANSFER_REQUESTS_COUNT_MAX = 12
/** A source that fails this many requests in a row is dropped from the transfer. */
export const SOURCE_FAILURES_MAX = 3
/** One piece request: deadline from a peer; from the provider (which may fetch it from the origin first); from the origin. */
export const PIECE_PEER_TIMEOUT_MS = 20_000
export const PIECE_PROVIDER_TIMEOUT_MS = 60_000
export const PIECE_ORIGIN_TIMEOUT_MS = 120_000
/** No bytes on a response for this long: the source is stalled. */
export const HTTP_IDLE_TIMEOUT_MS = 15_000
/** A busy source (503) is not asked again for this long. */
export const SOURCE_BUSY_BACKOFF_MS = 1_000
/** Copies of one piece requested at once in the endgame (never two from the origin). */
export const ENDGAME_REQUESTS_PER_PIECE_MAX = 2
/** A transfer looks again at the provider this often, and asks the LAN who holds pieces this often. */
export const SOURCE_REFRESH_MS = 500
export const TRANSFER_RESOLVE_MS = 2_000
/** With no provider known for this long (an election in progress), a node fetches from the origin itself. */
export const PROVIDER_WAIT_MS = 6_000
/** A transfer that stores no piece for this long, with nothing in flight, fails (no source could help). */
export const TRANSFER_STALL_MS = 120_000
/** The provider waits this long for a piece a peer asked for before answering 503 (the peer retries). */
export const ON_DEMAND_WAIT_MS = 40_000
export const ON_DEMAND_WAITERS_COUNT_MAX = 128
/** Piece bytes stored or served between two forced GCs (hal/memory.ts): bounds the garbage Buffers pile up to. */
export const PIECE_GC_BYTES = 16 * 1024 * 1024
/** Recently stored or served pieces kept in memory: a household asks for the same piece several times in a row. */
export const HOT_PIECES_BYTES_MAX = 8 * 1024 * 1024
/** Peers with a credit record; bans last this long (counted in uptime, so a restart cannot shorten them). */
export const CREDIT_PEERS_COUNT_MAX = 256
export const BAN_MS = 24 * 3600 * 1000
/** Transfer state and bans on disk. */
export const CONTENT_STATE_BYTES_MAX = 256 * 1024
export const CONTENT_STATE_WRITE_MS = 5_000
/** The scanner hook: its whole run, and the bytes of its output kept for the log. */
export const SCAN_TIMEOUT_MS = 10 * 60_000
export const SCAN_OUTPUT_BYTES_MAX = 4 * 1024
/** /api/content and /p2p/piece query strings. */
export const CONTENT_QUERY_BYTES_MAX = 4_096
/** The WAN rate cap's token bucket holds at most this many seconds of tokens. */
export const WAN_BURST_SECONDS = 1
/** Proxy: cached objects indexed, fills (collapsed origin fetches) at once, CONNECT tunnels at once and their idle limit. */
export const PROXY_ENTRIES_COUNT_MAX = 1_024
export const PROXY_FILLS_COUNT_MAX = 64
export const PROXY_TUNNELS_COUNT_MAX = 64
export const PROXY_TUNNEL_IDLE_MS = 5 * 60_000
/** Heuristic freshness (RFC 9111 §4.2.2: 10 % of the time since Last-Modified) is capped at this. */
export const PROXY_HEURISTIC_SECONDS_MAX = 24 * 3600

// ---- relations, asserted at load ------------------------------------------------

// ---- relations --------------------------------------------------------------------
// Relations between these bounds (e.g. headers time out before the request) are
// checked by test/limits.test.ts: they compare constants, so a violation fails
// `npm test` instead of costing bytes and time at every start.
