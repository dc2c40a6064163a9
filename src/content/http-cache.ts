// The HTTP caching rules the proxy follows (RFC 9111, a shared cache),
// as pure functions of the headers. Freshness comes from the origin's own
// headers (max-age, or Expires against its Date, or 10 % of the time since
// Last-Modified) and age is counted on this node's monotonic clock from
// receipt: the wall clock of a router may read 1970.

import type { IncomingHttpHeaders } from 'node:http'
import { PROXY_HEURISTIC_SECONDS_MAX } from '../limits'

export type Headers = Record<string, string | string[]>

/** Cache-Control directives, names lowercased, values unquoted ('' when none). */
export function directives (h: string | string[] | undefined): Map<string, string> {
  const out = new Map<string, string>()
  for (const part of String(h ?? '').split(',')) {
    const m = /^\s*([A-Za-z-]+)\s*(?:=\s*"?([^",]*)"?)?\s*$/.exec(part)
    if (m !== null) out.set(m[1]!.toLowerCase(), m[2] ?? '')
  }
  return out
}

const seconds = (v: string | undefined): number | null => (v !== undefined && /^\d{1,10}$/.test(v) ? Number(v) : null)
const date = (v: string | string[] | undefined): number => (typeof v === 'string' ? Date.parse(v) : NaN)

/** Freshness lifetime in seconds (§4.2.1), or null when the response gives none. */
export function lifetime (h: IncomingHttpHeaders | Headers): number | null {
  const cc = directives(h['cache-control'])
  const s = seconds(cc.get('s-maxage')) ?? seconds(cc.get('max-age'))
  if (s !== null) return s
  const d = date(h.date)
  if (h.expires !== undefined) {
    const e = date(h.expires)
    return Number.isFinite(e) && Number.isFinite(d) ? Math.max(0, (e - d) / 1000) : 0 // an invalid Expires means already expired (§5.3)
  }
  const lm = date(h['last-modified'])
  return Number.isFinite(lm) && Number.isFinite(d) && d > lm ? Math.min(PROXY_HEURISTIC_SECONDS_MAX, (d - lm) / 10_000) : null
}

/** Why a response may not be stored by a shared cache; null when it may (§3, §3.5). */
export function unstorable (status: number, res: IncomingHttpHeaders, bytesMax: number): string | null {
  if (status !== 200) return `status ${status}`
  const cc = directives(res['cache-control'])
  if (cc.has('no-store') || cc.has('private')) return 'no-store or private'
  if (String(res.vary ?? '').includes('*')) return 'Vary: *'
  if (res['set-cookie'] !== undefined) return 'Set-Cookie'
  const n = Number(res['content-length'])
  if (res['content-length'] === undefined || !Number.isSafeInteger(n) || n > bytesMax) return 'no Content-Length, or too large'
  if (lifetime(res) === null && res.etag === undefined && res['last-modified'] === undefined) return 'neither freshness nor a validator'
  return null
}

/** The request's values of the headers a response varies on (§4.1); null when it does not vary. */
export function varyValues (vary: string | string[] | undefined, req: IncomingHttpHeaders): Record<string, string> | null {
  const names = String(vary ?? '').toLowerCase().split(',').map((s) => s.trim()).filter((s) => s.length > 0)
  return names.length === 0 ? null : Object.fromEntries(names.map((n) => [n, String(req[n] ?? '')]))
}

export const varyMatches = (stored: Record<string, string> | null, req: IncomingHttpHeaders): boolean =>
  stored === null || Object.entries(stored).every(([n, v]) => String(req[n] ?? '') === v)

const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade'])

/** End-to-end headers only (§7.6.1 of RFC 9110: hop-by-hop ones and those named in Connection go), less `drop`. */
export function endToEnd (h: IncomingHttpHeaders, drop: readonly string[] = []): Headers {
  const named = String(h.connection ?? '').toLowerCase().split(',').map((s) => s.trim())
  const out: Headers = {}
  for (const [k, v] of Object.entries(h)) if (v !== undefined && !HOP.has(k) && !named.includes(k) && !drop.includes(k)) out[k] = v
  return out
}
