// Prometheus text exposition (format 0.0.4): counters and gauges with labels,
// a bounded number of series, and collect hooks that refresh gauges from
// subsystem stats just before a scrape.

import { CanopyError } from '../errors'
import { METRIC_COUNT_MAX, METRIC_SERIES_COUNT_MAX } from '../limits'

type Labels = Record<string, string | number>
type Kind = 'counter' | 'gauge'

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/

const escapeLabel = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')
const escapeHelp = (v: string): string => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
const formatValue = (v: number): string =>
  Number.isNaN(v) ? 'NaN' : v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : String(v)

class Family {
  readonly series = new Map<string, number>()
  constructor (readonly name: string, readonly help: string, readonly kind: Kind, readonly labelNames: readonly string[], private readonly registry: Metrics) {}

  key (labels: Labels): string | null {
    const parts: string[] = []
    for (const n of this.labelNames) {
      const v = labels[n]
      if (v === undefined) throw new CanopyError('ASSERTION', `metric ${this.name}: label ${n} missing`)
      parts.push(`${n}="${escapeLabel(String(v))}"`)
    }
    const key = parts.join(',')
    if (!this.series.has(key) && this.series.size >= METRIC_SERIES_COUNT_MAX) {
      this.registry.droppedSeries++
      return null
    }
    return key
  }
}

export interface Counter {
  inc (labels?: Labels, by?: number): void
  /** Copy a monotonic count kept elsewhere (a subsystem's stats) at collect time. */
  set (labels: Labels, value: number): void
  set (value: number): void
}
export interface Gauge { set (labels: Labels, value: number): void, set (value: number): void, reset (): void }

const setter = (f: Family) => (a: Labels | number, b?: number): void => {
  const [labels, value] = typeof a === 'number' ? [{}, a] : [a, b ?? 0]
  const k = f.key(labels)
  if (k !== null) f.series.set(k, value)
}

export class Metrics {
  droppedSeries = 0
  readonly #families = new Map<string, Family>()
  readonly #collectors: Array<() => void> = []

  counter (name: string, help: string, labelNames: readonly string[] = []): Counter {
    const f = this.#family(name, help, 'counter', labelNames)
    return {
      inc: (labels = {}, by = 1) => {
        const k = f.key(labels)
        if (k !== null) f.series.set(k, (f.series.get(k) ?? 0) + by)
      },
      set: setter(f)
    }
  }

  gauge (name: string, help: string, labelNames: readonly string[] = []): Gauge {
    const f = this.#family(name, help, 'gauge', labelNames)
    return { set: setter(f), reset: () => { f.series.clear() } }
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
    out.push('# HELP canopy_metric_series_dropped_total Series refused because a metric reached its series bound.',
      '# TYPE canopy_metric_series_dropped_total counter', `canopy_metric_series_dropped_total ${this.droppedSeries}`)
    return out.join('\n') + '\n'
  }

  #family (name: string, help: string, kind: Kind, labelNames: readonly string[]): Family {
    if (!NAME.test(name) || !labelNames.every((l) => LABEL.test(l))) throw new CanopyError('ASSERTION', `bad metric name ${name}`)
    const existing = this.#families.get(name)
    if (existing !== undefined) {
      if (existing.kind !== kind) throw new CanopyError('ASSERTION', `metric ${name} registered twice with different kinds`)
      return existing
    }
    if (this.#families.size >= METRIC_COUNT_MAX) throw new CanopyError('LIMIT_REACHED', 'too many metrics')
    const f = new Family(name, help, kind, labelNames, this)
    this.#families.set(name, f)
    return f
  }
}
