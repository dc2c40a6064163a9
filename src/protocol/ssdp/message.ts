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

/** The start lines of what we send (a response: our search replies). */
const START = { search: 'M-SEARCH * HTTP/1.1', notify: 'NOTIFY * HTTP/1.1', response: 'HTTP/1.1 200 OK' }
/** HTTP/1.0 is accepted in replies: some old stacks answer with it. */
const START_RESPONSE = /^HTTP\/1\.[01] ([1-5]\d\d) [\x20-\x7e]{0,64}$/

// RFC 9110 §5.6.2 token characters.
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/
/** Field values: visible ASCII, space, tab, and obs-text (kept as latin1). No CR, LF or other control bytes. */
const VALUE_CHARS = /^[\t\x20-\x7e\x80-\xff]*$/

/** Strip optional whitespace (SP, HTAB) at both ends, in linear time. */
function trimOws (s: string): string {
  let a = 0
  let b = s.length
  while (a < b && (s[a] === ' ' || s[a] === '\t')) a++
  while (b > a && (s[b - 1] === ' ' || s[b - 1] === '\t')) b--
  return s.slice(a, b)
}

const malformed = (why: string): CanopyError => new CanopyError('SSDP_MALFORMED', `SSDP: ${why}`)

/** A header's lower-case name, once its name is a token, its value legal and the name new. */
function headerKey (name: string, value: string, seen: { has (k: string): boolean }): string {
  const key = name.toLowerCase()
  if (name.length > SSDP_HEADER_NAME_BYTES_MAX || !TOKEN.test(name) || !VALUE_CHARS.test(value) || seen.has(key)) throw malformed(`header ${key}`)
  return key
}

/** Parse one datagram; throws only CanopyError SSDP_MALFORMED. */
export function parseSsdp (data: Uint8Array): SsdpMessage {
  if (data.length > SSDP_DATAGRAM_BYTES_MAX) throw malformed('size')
  // latin1 maps every byte to one character, so lengths are byte lengths.
  const lines = Buffer.from(data).toString('latin1').split('\r\n') // a copy, bounded just above
  // A start line and headers, then one empty line and nothing after it: the split ends in two empty strings.
  const n = lines.indexOf('')
  if (n < 1 || n !== lines.length - 2 || lines[n + 1] !== '' || n > SSDP_HEADER_COUNT_MAX + 1 ||
    lines.some((l) => l.length > SSDP_LINE_BYTES_MAX)) throw malformed('framing, line length or header count')
  const start = lines[0]!
  const response = START_RESPONSE.exec(start)
  const kind = start === START.search ? 'search' : start === START.notify ? 'notify' : response ? 'response' : null
  if (!kind) throw malformed('start line')
  const headers = new Map<string, string>()
  for (const line of lines.slice(1, n)) {
    const colon = line.indexOf(':')
    if (colon <= 0) throw malformed('header line') // also refuses obs-fold (leading space)
    const value = trimOws(line.slice(colon + 1))
    headers.set(headerKey(line.slice(0, colon), value, headers), value)
  }
  return { kind, status: Number(response?.[1] ?? 0), headers }
}

/** Header lines in the order and spelling we send (SSDP peers expect upper case). */
export type SsdpHeaders = ReadonlyArray<readonly [string, string]>

/** Format a message; throws SSDP_MALFORMED when a header would break the grammar or a bound. */
export function formatSsdp (kind: SsdpKind, headers: SsdpHeaders): Buffer {
  const seen = new Set<string>()
  let out = START[kind] + '\r\n'
  for (const [name, value] of headers) {
    seen.add(headerKey(name, value, seen))
    const line = value === '' ? `${name}:` : `${name}: ${value}`
    // Spaces at an end would not read back; nor a line over the bound.
    if (value !== trimOws(value) || line.length > SSDP_LINE_BYTES_MAX) throw malformed(`header ${name}`)
    out += line + '\r\n'
  }
  const bytes = Buffer.from(out + '\r\n', 'latin1')
  if (seen.size > SSDP_HEADER_COUNT_MAX || bytes.length > SSDP_DATAGRAM_BYTES_MAX) throw malformed(`${bytes.length} bytes, ${seen.size} headers: exceeds a bound`)
  return bytes
}
