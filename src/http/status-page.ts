// The status page for people: the same data as /api/status, drawn as HTML
// (objects as definition lists, lists of records as tables). No script; it
// refreshes itself. Subsystems may add sections of their own HTML.

import { STATUS_LIST_COUNT_MAX } from '../limits'
import { isRecord } from '../validate'

export interface PageSection {
  title: string
  /** Trusted HTML built by our own code with escapeHtml() around every value. */
  html: string
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }
export const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => ENTITIES[c]!)

const scalar = (v: unknown): string => {
  if (v === null || v === undefined) return '<span class="dim">–</span>'
  if (typeof v === 'number') return escapeHtml(Number.isInteger(v) ? v.toLocaleString('en-US') : v.toFixed(2))
  return escapeHtml(String(v))
}

export function renderValue (v: unknown, depth = 0): string {
  if (depth > 6) return '…'
  if (Array.isArray(v)) {
    if (v.length === 0) return '<span class="dim">none</span>'
    const rows = v.slice(0, STATUS_LIST_COUNT_MAX)
    if (rows.every(isRecord)) {
      const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))]
      const head = cols.map((c) => `<th>${escapeHtml(c)}</th>`).join('')
      const body = rows.map((r) => `<tr>${cols.map((c) => `<td>${renderValue(r[c], depth + 1)}</td>`).join('')}</tr>`).join('')
      return `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`
    }
    return rows.map((x) => renderValue(x, depth + 1)).join(', ')
  }
  if (isRecord(v)) {
    const items = Object.entries(v).map(([k, x]) => `<dt>${escapeHtml(k)}</dt><dd>${renderValue(x, depth + 1)}</dd>`).join('')
    return `<dl>${items}</dl>`
  }
  return scalar(v)
}

export function renderStatusPage (title: string, status: Record<string, unknown>, sections: PageSection[] = []): string {
  // The subsystems' own sections first, then every field of the status.
  const blocks = [...sections, ...Object.entries(status).map(([title, v]) => ({ title, html: renderValue(v) }))]
    .map((s) => `<section><h2>${escapeHtml(s.title)}</h2>${s.html}</section>`)
    .join('\n')
  // head, body and their end tags are optional in HTML5.
  return `<!doctype html><html lang="en"><meta charset="utf-8"><meta http-equiv="refresh" content="5">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(title)}</title>
<style>body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;max-width:70em}h1{font-size:1.4em}h2{font-size:1.1em;text-transform:capitalize}
dl{display:grid;grid-template-columns:max-content auto;gap:.15em 1em}dt,.dim{color:#888}dd{margin:0}
table{border-collapse:collapse}th,td{border:1px solid #ddd;padding:.2em .5em;text-align:left;vertical-align:top}</style>
<h1>${escapeHtml(title)}</h1>
<p class="dim"><a href="/api/status">/api/status</a> · <a href="/metrics">/metrics</a> · refreshes every 5 s</p>
${blocks}
`
}
