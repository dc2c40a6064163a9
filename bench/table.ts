// Benchmark rows and the table they print. Every row says what was measured,
// the baseline measured in the same run, their ratio, and the target.

export interface Row {
  /** What was measured. */
  what: string
  /** The figure, already formatted with its unit. */
  value: string
  /** The baseline beside it (same run), if any. */
  baseline?: string
  /** value / baseline, or another comparison that makes sense for the row. */
  ratio?: string
  target?: string
  /** Whether the target is met; undefined when the row has no target. */
  ok?: boolean
}

export interface Bench {
  name: string
  run (): Promise<Row[]>
}

export function median (xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

export function percentile (xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  if (s.length === 0) return NaN
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!
}

export const ms = (x: number): string => `${x.toFixed(x < 10 ? 2 : 0)} ms`
export const mib = (x: number): string => `${(x / 1048576).toFixed(1)} MiB`
export const ratio = (a: number, b: number): string => `${(a / b).toFixed(2)}×`

export function formatTable (bench: string, rows: Row[]): string {
  const head = ['what', 'measured', 'baseline (same run)', 'ratio', 'target', '']
  const body = rows.map((r) => [r.what, r.value, r.baseline ?? '', r.ratio ?? '', r.target ?? '', r.ok === undefined ? '' : r.ok ? 'ok' : 'MISSED'])
  const all = [head, ...body]
  const widths = head.map((_, i) => Math.max(...all.map((row) => row[i]!.length)))
  const line = (row: string[]): string => `| ${row.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`
  return [`\n${bench}`, line(head), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...body.map(line)].join('\n')
}
