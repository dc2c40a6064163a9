// Small helpers every handler uses: JSON out, bounded JSON in, coded errors
// mapped to HTTP statuses.

import type { IncomingMessage, ServerResponse } from 'node:http'
import { CanopyError, type ErrorCode } from '../errors'
import { HTTP_JSON_BODY_BYTES_MAX } from '../limits'

/** Statuses by code; besides these, every *_NOT_FOUND is 404 and every GROUP_INVITATION_* 400. */
const STATUS: Partial<Record<ErrorCode, number>> = {
  USAGE: 400,
  INPUT_INVALID: 400,
  HTTP_BAD_REQUEST: 400,
  KEY_INVALID: 400,
  UNAUTHORIZED: 401,
  HTTP_FORBIDDEN: 403,
  PUBLISHER_UNTRUSTED: 403,
  CONTENT_VETOED: 403,
  HTTP_METHOD_NOT_ALLOWED: 405,
  HTTP_BODY_TOO_LARGE: 413,
  STREAM_BUSY: 409,
  LIMIT_REACHED: 429,
  GROUP_REVOKED: 403,
  GROUP_FORBIDDEN: 403,
  GROUP_STORE_FULL: 507,
  RECORD_INVALID: 400,
  NET_UNREACHABLE: 502,
  NET_REFUSED: 502,
  MANIFEST_INVALID: 502,
  UPSTREAM_FAILED: 502,
  CONTENT_UNAVAILABLE: 502,
  HTTP_UNAVAILABLE: 503,
  TIMEOUT: 504
}

export const statusForError = ({ code }: CanopyError): number =>
  STATUS[code] ?? (code.endsWith('_NOT_FOUND') ? 404 : code.startsWith('GROUP_INVITATION_') ? 400 : 500)

export function sendJson (res: ServerResponse, status: number, body: unknown): void {
  sendText(res, status, JSON.stringify(body), 'application/json; charset=utf-8')
}

export function sendText (res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' })
  res.end(body)
}

export function sendError (res: ServerResponse, err: CanopyError): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  sendJson(res, statusForError(err), { error: { code: err.code, message: err.message } })
}

/** Read a JSON body of at most maxBytes, refusing on the declared length before buffering. */
export async function readJson (req: IncomingMessage, maxBytes = HTTP_JSON_BODY_BYTES_MAX): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? NaN)
  if (Number.isFinite(declared) && declared > maxBytes) {
    throw new CanopyError('HTTP_BODY_TOO_LARGE', `body over ${maxBytes} bytes`)
  }
  const parts: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > maxBytes) throw new CanopyError('HTTP_BODY_TOO_LARGE', `body over ${maxBytes} bytes`)
    parts.push(chunk as Buffer)
  }
  try {
    return JSON.parse(Buffer.concat(parts).toString('utf8'))
  } catch {
    throw new CanopyError('INPUT_INVALID', 'body is not JSON')
  }
}
