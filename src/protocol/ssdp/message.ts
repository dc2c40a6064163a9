// SSDP datagrams (UPnP Device Architecture 1.1 §1): a start line and header
// lines, each ended by CRLF, then an empty line and nothing else. A strict
// parser: sizes are checked before anything is read, every line and the
// header count are bounded, duplicate headers and folded lines are refused,
// and every failure is one coded error (SSDP_MALFORMED). The formatter writes
// the same grammar and checks what it writes.

import { CanopyError } from '../../errors'
import { SSDP_DATAGRAM_BYTES_MAX, SSDP_HEADER_COUNT_MAX, SSDP_HEADER_NAME_BYTES_MAX, SSDP_LINE_BYTES_MAX } from '../../limits'

export type SsdpKind = 'search' | 'notify' | 'response'

export interface SsdpMessage {
  kind: SsdpKind
  /** The status code of a response (200 for a search reply); 0 for requests. */
  status: number
  /** Header values by lower-case name, in the order received. */
  headers: ReadonlyMap<string, string>
}

const START_SEARCH = 'M-SEARCH * HTTP/1.1'
const START_NOTIFY = 'NOTIFY * HTTP/1.1'
/** HTTP/1.0 is accepted in replies: some old stacks answer with it. */
const START_RESPONSE = /^HTTP\/1\.[01] ([1-5]\d\d) [\x20-\x7e]{0,64}$/

// RFC 9110 §5.6.2 token characters.
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
/** Field values: visible ASCII, space, tab, and obs-text (kept as latin1). */
const VALUE_CHARS = /^[\t\x20-\x7e\x80-\xff]*$/

/** Strip optional whitespace (SP, HTAB) at both ends, in linear time. */
function trimOws (s: string): string {
  let a = 0
  let b = s.length
  while (a < b && (s.charCodeAt(a) === 0x20 || s.charCodeAt(a) === 0x09)) a++
  while (b > a && (s.charCodeAt(b - 1) === 0x20 || s.charCodeAt(b - 1) === 0x09)) b--
  return s.slice(a, b)
}

const malformed = (why: string): CanopyError => new CanopyError('SSDP_MALFORMED', `SSDP datagram: ${why}`)

/** Parse one datagram; throws only CanopyError SSDP_MALFORMED. */
export function parseSsdp (data: Uint8Array): SsdpMessage {
  if (data.length > SSDP_DATAGRAM_BYTES_MAX) throw malformed(`${data.length} bytes, more than ${SSDP_DATAGRAM_BYTES_MAX}`)
  // latin1 maps every byte to one character, so offsets are byte offsets.
  const text = Buffer.from(data.buffer, data.byteOffset, data.length).toString('latin1')
  let at = 0
  const nextLine = (): string => {
    const end = text.indexOf('\r\n', at)
    if (end === -1) throw malformed('a line is not ended by CRLF')
    if (end - at > SSDP_LINE_BYTES_MAX) throw malformed(`a line is longer than ${SSDP_LINE_BYTES_MAX} bytes`)
    const line = text.slice(at, end)
    at = end + 2
    return line
  }

  const start = nextLine()
  let kind: SsdpKind
  let status = 0
  if (start === START_SEARCH) kind = 'search'
  else if (start === START_NOTIFY) kind = 'notify'
  else {
    const m = START_RESPONSE.exec(start)
    if (m === null) throw malformed('unknown start line')
    kind = 'response'
    status = Number(m[1])
  }

  const headers = new Map<string, string>()
  for (;;) {
    const line = nextLine()
    if (line === '') break
    if (headers.size >= SSDP_HEADER_COUNT_MAX) throw malformed(`more than ${SSDP_HEADER_COUNT_MAX} headers`)
    if (line.includes('\r') || line.includes('\n')) throw malformed('a bare CR or LF inside a line')
    const colon = line.indexOf(':')
    if (colon <= 0) throw malformed('a header line without a name') // also refuses obs-fold (leading space)
    const name = line.slice(0, colon)
    if (name.length > SSDP_HEADER_NAME_BYTES_MAX || !TOKEN.test(name)) throw malformed('a header name is not a token')
    const value = trimOws(line.slice(colon + 1))
    if (!VALUE_CHARS.test(value)) throw malformed('a control character in a header value')
    const key = name.toLowerCase()
    if (headers.has(key)) throw malformed(`header ${key} twice`)
    headers.set(key, value)
  }
  if (at !== text.length) throw malformed('bytes after the empty line')
  return { kind, status, headers }
}

/** Header lines in the order and spelling we send (SSDP peers expect upper case). */
export type SsdpHeaders = ReadonlyArray<readonly [string, string]>

/** The start line of a message we send. */
export function startLine (kind: SsdpKind): string {
  if (kind === 'search') return START_SEARCH
  if (kind === 'notify') return START_NOTIFY
  return 'HTTP/1.1 200 OK'
}

/** Format a message; throws SSDP_MALFORMED when a header would break the grammar or a bound. */
export function formatSsdp (kind: SsdpKind, headers: SsdpHeaders): Buffer {
  if (headers.length > SSDP_HEADER_COUNT_MAX) throw malformed(`more than ${SSDP_HEADER_COUNT_MAX} headers`)
  const seen = new Set<string>()
  let out = startLine(kind) + '\r\n'
  for (const [name, value] of headers) {
    if (name.length > SSDP_HEADER_NAME_BYTES_MAX || !TOKEN.test(name)) throw malformed(`header name ${JSON.stringify(name)} is not a token`)
    if (!VALUE_CHARS.test(value) || value !== trimOws(value)) throw malformed(`header ${name} has a value that would not read back`)
    const key = name.toLowerCase()
    if (seen.has(key)) throw malformed(`header ${key} twice`)
    seen.add(key)
    const line = value === '' ? `${name}:` : `${name}: ${value}`
    if (line.length > SSDP_LINE_BYTES_MAX) throw malformed(`header ${name} is longer than ${SSDP_LINE_BYTES_MAX} bytes`)
    out += line + '\r\n'
  }
  out += '\r\n'
  const bytes = Buffer.from(out, 'latin1')
  if (bytes.length > SSDP_DATAGRAM_BYTES_MAX) throw malformed(`message of ${bytes.length} bytes exceeds ${SSDP_DATAGRAM_BYTES_MAX}`)
  return bytes
}
