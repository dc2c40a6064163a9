// Routes: exact segments, ":name" for one segment, "*name" for the rest.
// First match wins; a path that matches with another method gets 405.

import type { IncomingMessage, ServerResponse } from 'node:http'

export interface RequestContext {
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly url: URL
  /** The client's address, IPv4-mapped addresses unwrapped. */
  readonly remote: string
  readonly params: Readonly<Record<string, string>>
}

export type Handler = (ctx: RequestContext) => void | Promise<void>

export interface RouteOptions {
  /** Who may call: the server's policy (default), or anyone (health checks, peer data plane). */
  access?: 'policy' | 'any'
  /** The request body may take as long as it likes (a live ingest): no request deadline. */
  longBody?: boolean
}

export interface Route { method: string, segments: string[], handler: Handler, options: RouteOptions }

export type RouteMatch = { route: Route, params: Record<string, string> } | 'method' | null

export const splitPath = (path: string): string[] => path.split('/').filter((s) => s.length > 0)

/** The first route for method and path; 'method' when only routes of other methods match the path. */
export function matchRoute (routes: readonly Route[], method: string, pathname: string): RouteMatch {
  const parts = splitPath(pathname)
  let wrongMethod = false
  for (const route of routes) {
    const params = matchSegments(route.segments, parts)
    if (params === null) continue
    if (route.method === method || (method === 'HEAD' && route.method === 'GET')) return { route, params }
    wrongMethod = true
  }
  return wrongMethod ? 'method' : null
}

function matchSegments (pattern: string[], parts: string[]): Record<string, string> | null {
  const params: Record<string, string> = {}
  for (let i = 0; i < pattern.length; i++) {
    const p = pattern[i]!
    if (p.startsWith('*')) {
      params[p.slice(1)] = parts.slice(i).map(safeDecode).join('/')
      return params
    }
    const part = parts[i]
    if (part === undefined) return null
    if (p.startsWith(':')) {
      const v = safeDecode(part)
      if (v === '') return null
      params[p.slice(1)] = v
    } else if (p !== part) {
      return null
    }
  }
  return parts.length === pattern.length ? params : null
}

function safeDecode (s: string): string {
  try { return decodeURIComponent(s) } catch { return '' }
}
