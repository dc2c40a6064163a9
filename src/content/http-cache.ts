// The HTTP caching rules the proxy follows (RFC 9111, a shared cache), as
// pure functions of the headers. Freshness comes from the origin's own
// headers (s-maxage / max-age, or Expires against its Date, or 10 % of the
// time since Last-Modified) and age is counted on this node's monotonic clock
// from receipt: the wall clock of a router may read 1970.

import type { IncomingHttpHeaders } from 'node:http'
import { PROXY_HEURISTIC_SECONDS_MAX } from '../limits'

export type Headers = Record<string, string | string[]>

/** The value of one Cache-Control directive ('' when it has none), or undefined when absent. */
export function directive (h: string | string[] | undefined, name: string): string | undefined {
  const m = new RegExp(`(?:^|,)\\s*${name}\\s*(?:=\\s*"?([^",]*)"?)?\\s*(?:,|$)`, 'i').exec(String(h ?? ''))
  return m === null ? undefined : m[1] ?? ''
}

const date = (v: string | string[] | undefined): number => (typeof v === 'string' ? Date.parse(v) : NaN)

/** Freshness lifetime in seconds (§4.2.1), or null when the response gives none. */
export function lifetime (h: IncomingHttpHeaders | Headers): number | null {
  const cc = h['cache-control']
  const s = [directive(cc, 's-maxage'), directive(cc, 'max-age')].find((v) => /^\d{1,10}$/.test(v ?? ''))
  if (s !== undefined) return Number(s)
  const d = date(h.date)
  if (h.expires !== undefined) {
    const e = date(h.expires)
    return e >= 0 && d >= 0 ? Math.max(0, (e - d) / 1000) : 0 // an invalid Expires means already expired (§5.3)
  }
  const lm = date(h['last-modified'])
  return d > lm ? Math.min(PROXY_HEURISTIC_SECONDS_MAX, (d - lm) / 10_000) : null
}

/** May a shared cache store this response (§3, §3.5)? */
export function storable (status: number, res: IncomingHttpHeaders, bytesMax: number): boolean {
  const cc = res['cache-control']
  const n = Number(res['content-length'] ?? NaN)
  return status === 200 && directive(cc, 'no-store') === undefined && directive(cc, 'private') === undefined && !String(res.vary).includes('*') &&
    res['set-cookie'] === undefined && n <= bytesMax && (lifetime(res) !== null || res.etag !== undefined || res['last-modified'] !== undefined)
}

/** The request's values of the headers a response varies on (§4.1); null when it does not vary. */
export function varyValues (vary: string | string[] | undefined, req: IncomingHttpHeaders): Record<string, string> | null {
  const names = String(vary ?? '').toLowerCase().split(',').map((s) => s.trim()).filter((s) => s !== '')
  return names.length === 0 ? null : Object.fromEntries(names.map((n) => [n, String(req[n] ?? '')]))
}

export const varyMatches = (stored: Record<string, string> | null, req: IncomingHttpHeaders): boolean =>
  stored === null || Object.entries(stored).every(([n, v]) => String(req[n] ?? '') === v)

const HOP = ['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']

/** End-to-end headers only (RFC 9110 §7.6.1: hop-by-hop ones and those named in Connection go), less `drop`. */
export function endToEnd (h: IncomingHttpHeaders, drop: readonly string[] = []): Headers {
  const gone = [...HOP, ...drop, ...String(h.connection ?? '').toLowerCase().split(',').map((s) => s.trim())]
  const out: Headers = {}
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !gone.includes(k)) out[k] = v
  return out
}
