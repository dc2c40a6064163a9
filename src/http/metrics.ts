// Prometheus text exposition (format 0.0.4): counters and gauges with labels,
// a bounded number of series, and collect hooks that refresh gauges from
// subsystem stats just before a scrape.

import { CanopyError } from '../errors'
import { METRIC_COUNT_MAX, METRIC_SERIES_COUNT_MAX } from '../limits'

type Labels = Record<string, string | number>
type Kind = 'counter' | 'gauge'

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/

const escapeHelp = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
const escapeLabel = (v: string): string => escapeHelp(v).replace(/"/g, '\\"')
const formatValue = (v: number): string =>
  Number.isNaN(v) ? 'NaN' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : String(v)

interface Family {
  readonly name: string
  readonly help: string
  readonly kind: Kind
  readonly labelNames: readonly string[]
  readonly series: Map<string, number>
}

export interface Counter {
  inc (labels?: Labels, by?: number): void
  /** Copy a monotonic count kept elsewhere (a subsystem's stats) at collect time. */
  set (labels: Labels, value: number): void
  set (value: number): void
}
export interface Gauge { set (labels: Labels, value: number): void, set (value: number): void, reset (): void }


export class Metrics {
  droppedSeries = 0
  readonly #families = new Map<string, Family>()
  readonly #collectors: Array<() => void> = []

  constructor () {
    this.stats(() => this, [['canopy_metric_series_dropped_total', 'Series refused.', (m) => m.droppedSeries]])
  }

  counter (name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.#family(name, help, 'counter', labelNames)
  }

  gauge (name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.#family(name, help, 'gauge', labelNames)
  }

  /**
   * Metrics copied from stats at every scrape: [name, help, value]; a counter
   * when the name ends in _total, else a gauge. `get` runs first and gives
   * the stats the values are read from (none: the metrics are left as they were).
   */
  stats<S> (get: () => S | undefined, rows: Array<[string, string, (s: S) => number]>): void {
    const all = rows.map(([name, help, value]) => [this[name.endsWith('_total') ? 'counter' : 'gauge'](name, help), value] as const)
    this.onCollect(() => {
      const s = get()
      if (s !== undefined) for (const [m, value] of all) m.set(value(s))
    })
  }

  /** Run fn before every render (to copy stats into gauges). */
  onCollect (fn: () => void): void { this.#collectors.push(fn) }

  render (): string {
    for (const c of this.#collectors) {
      try { c() } catch { /* a broken collector must not break the scrape */ }
    }
    const out: string[] = []
    for (const f of this.#families.values()) {
      out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.kind}`)
      if (f.series.size === 0 && f.labelNames.length === 0) out.push(`${f.name} 0`)
      for (const [k, v] of f.series) out.push(`${f.name}${k === '' ? '' : `{${k}}`} ${formatValue(v)}`)
    }
    return out.join('\n') + '\n'
  }

  /** A family's handle: inc and set a series by labels (none past the series bound), reset them all. */
  #family (name: string, help: string, kind: Kind, labelNames: readonly string[]): Counter & Gauge {
    if (!NAME.test(name) || !labelNames.every((l) => LABEL.test(l))) throw new CanopyError('ASSERTION', `bad metric name ${name}`)
    let f = this.#families.get(name)
    if (f !== undefined && f.kind !== kind) throw new CanopyError('ASSERTION', `metric ${name}: two kinds`)
    if (f === undefined) {
      if (this.#families.size >= METRIC_COUNT_MAX) throw new CanopyError('LIMIT_REACHED', 'too many metrics')
      f = { name, help, kind, labelNames, series: new Map() }
      this.#families.set(name, f)
    }
    const { series, labelNames: names } = f
    const key = (labels: Labels): string | null => {
      const parts: string[] = []
      for (const n of names) {
        const v = labels[n]
        if (v === undefined) throw new CanopyError('ASSERTION', `metric ${name}: label ${n} missing`)
        parts.push(`${n}="${escapeLabel(String(v))}"`)
      }
      const k = parts.join(',')
      if (!series.has(k) && series.size >= METRIC_SERIES_COUNT_MAX) {
        this.droppedSeries++
        return null
      }
      return k
    }
    return {
      inc: (labels = {}, by = 1) => {
        const k = key(labels)
        if (k !== null) series.set(k, (series.get(k) ?? 0) + by)
      },
      set: (a: Labels | number, b?: number): void => {
        const [labels, value] = typeof a === 'number' ? [{}, a] : [a, b ?? 0]
        const k = key(labels)
        if (k !== null) series.set(k, value)
      },
      reset: () => { series.clear() }
    }
  }
}
