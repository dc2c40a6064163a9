// The household lab: real processes in Linux network namespaces.
//
//   isp  ── nginx (Range on; access log with bytes sent = WAN bytes) on 198.51.100.1
//    │     the link is shaped by tc tbf in both directions (rate, default 20 Mbit/s)
//   gw   ── wan0 198.51.100.2 ── routes ── br0 192.168.77.1: the gateway's agent (designated provider, proxy)
//    │     (a bridge in the gw namespace is the home LAN)
//   d0…dN-1 ── eth0 192.168.77.10+i: one agent each (the built bundle), canopy fetch, curl
//
// Scenarios: (a) all devices fetch one manifest at once; (b) staggered starts;
// (c) unmodified curl clients through the gateway's proxy at once; (d) one
// device serves corrupt pieces; (e) the provider is killed mid-download; and
// the baseline: every device fetching straight from nginx. Every name is
// unique to the run, and everything is removed in cleanup() (call it in finally).

import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { formatPublicKey, keyPairFromSeed, privateKeyToPem } from '../../src/crypto'
import { pieceSizeFor, sha256, signManifest } from '../../src/content'
import { FIRMWARE_ENV, NODE_FLAGS, builtBundle } from '../helpers/bundle'
import { tempDir } from '../helpers/tmp'

export interface LabOptions {
  /** Honest devices; one more runs the corrupting agent when scenario (d) is wanted. */
  devices: number
  withEvil?: boolean
  sizeBytes: number
  wanMbit: number
  /** Print progress lines. */
  verbose?: boolean
}

export interface Outcome {
  scenario: string
  /** Bytes nginx sent (headers and bodies) during the scenario. */
  wanBytes: number
  /** From the first start to the last verified copy. */
  seconds: number
  /** Copies with the right SHA-256, of those expected. */
  good: number
  expected: number
  perDevice: Array<{ name: string, fromPeersBytes: number, fromOriginBytes: number, ok: boolean }>
  note: string
}

const LAN = '192.168.77'
const ISP = '198.51.100.1'
const GW_WAN = '198.51.100.2'
const PORT = 8787
const KEY = keyPairFromSeed(randomBytes(32))
const PUB = formatPublicKey(KEY.publicRaw)

const ip = (args: string[]): void => { execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] }) }
const sleep = (ms: number): Promise<void> => new Promise((resolve) => { setTimeout(resolve, ms) })
const fileSha = (path: string): string => existsSync(path) ? createHash('sha256').update(readFileSync(path)).digest('hex') : ''

export class HouseLab {
  readonly id = `hl${process.pid % 1000}${randomBytes(2).toString('hex')}`
  readonly dir = tempDir('canopy-house-')
  readonly ns: { isp: string, gw: string, devices: string[] }
  private readonly created: string[] = []
  private readonly procs: ChildProcess[] = []
  private gwAgent: ChildProcess | null = null
  private evil: number | null = null
  private bundle = ''
  private logLines = 0
  gwNodeId = ''

  constructor (readonly o: LabOptions) {
    this.ns = { isp: `${this.id}-isp`, gw: `${this.id}-gw`, devices: [...Array(o.devices + (o.withEvil === true ? 1 : 0)).keys()].map((i) => `${this.id}-d${i}`) }
    this.evil = o.withEvil === true ? o.devices : null
  }

  log (msg: string): void { if (this.o.verbose === true) console.log(`  [lab ${this.id}] ${msg}`) }

  /** Namespaces, links, shaping, nginx, agents; resolves once every device names the gateway as provider. */
  async setup (): Promise<void> {
    this.bundle = await builtBundle()
    const { isp, gw, devices } = this.ns
    for (const n of [isp, gw, ...devices]) { ip(['netns', 'add', n]); this.created.push(n); ip(['-n', n, 'link', 'set', 'lo', 'up']) }
    ip(['-n', gw, 'link', 'add', 'wan0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', isp])
    ip(['-n', isp, 'addr', 'add', `${ISP}/24`, 'dev', 'eth0'])
    ip(['-n', isp, 'link', 'set', 'eth0', 'up'])
    ip(['-n', isp, 'route', 'add', `${LAN}.0/24`, 'via', GW_WAN])
    ip(['-n', gw, 'addr', 'add', `${GW_WAN}/24`, 'dev', 'wan0'])
    ip(['-n', gw, 'link', 'set', 'wan0', 'up'])
    ip(['-n', gw, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0'])
    ip(['-n', gw, 'addr', 'add', `${LAN}.1/24`, 'dev', 'br0'])
    ip(['-n', gw, 'link', 'set', 'br0', 'up'])
    ip(['-n', gw, 'route', 'add', '224.0.0.0/4', 'dev', 'br0'])
    execFileSync('ip', ['netns', 'exec', gw, 'sysctl', '-qw', 'net.ipv4.ip_forward=1'])
    // The WAN link, both directions: tbf (this kernel has no netem).
    const rate = `${this.o.wanMbit}mbit`
    for (const [n, dev] of [[isp, 'eth0'], [gw, 'wan0']] as const) {
      execFileSync('ip', ['netns', 'exec', n, 'tc', 'qdisc', 'add', 'dev', dev, 'root', 'tbf', 'rate', rate, 'burst', '32kb', 'latency', '50ms'])
    }
    devices.forEach((d, i) => {
      ip(['-n', gw, 'link', 'add', `d${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', d])
      ip(['-n', gw, 'link', 'set', `d${i}`, 'master', 'br0', 'up'])
      ip(['-n', d, 'addr', 'add', `${LAN}.${10 + i}/24`, 'dev', 'eth0'])
      ip(['-n', d, 'link', 'set', 'eth0', 'up'])
      ip(['-n', d, 'route', 'add', 'default', 'via', `${LAN}.1`])
      ip(['-n', d, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0'])
    })
    await this.carrier(gw, 'wan0')
    for (const d of devices) await this.carrier(d, 'eth0')
    this.startNginx()
    writeFileSync(join(this.dir.path, 'pub.pem'), privateKeyToPem(KEY))
    this.gwAgent = this.startAgent(gw, 'gw', ['--lan', 'br0', '--wan', 'wan0'])
    devices.forEach((d, i) => { this.startAgent(d, `d${i}`, ['--lan', 'eth0'], i === this.evil) })
    await this.untilProvider()
  }

  /** A veth end sometimes keeps NO-CARRIER after both ends went up (seen on this shared kernel): bounce it until it has carrier. */
  private async carrier (ns: string, dev: string): Promise<void> {
    for (let tries = 0; tries < 10; tries++) {
      for (let i = 0; i < 10; i++) {
        if (execFileSync('ip', ['-n', ns, 'link', 'show', 'dev', dev]).toString().includes('state UP')) return
        await sleep(50)
      }
      ip(['-n', ns, 'link', 'set', dev, 'down'])
      ip(['-n', ns, 'link', 'set', dev, 'up'])
    }
    throw new Error(`${dev} in ${ns} has no carrier`)
  }

  private startNginx (): void {
    const d = join(this.dir.path, 'nginx')
    mkdirSync(join(d, 'www'), { recursive: true })
    mkdirSync(join(d, 'tmp'), { recursive: true })
    writeFileSync(join(d, 'nginx.conf'), `daemon off;
master_process off;
user root;
worker_processes 1;
pid ${d}/nginx.pid;
error_log ${d}/error.log;
events { worker_connections 512; }
http {
  log_format wan '$request_uri $status $bytes_sent $remote_addr $msec $request_time';
  access_log ${d}/access.log wan;
  client_body_temp_path ${d}/tmp; proxy_temp_path ${d}/tmp; fastcgi_temp_path ${d}/tmp; uwsgi_temp_path ${d}/tmp; scgi_temp_path ${d}/tmp;
  sendfile on;
  keepalive_requests 10000;
  server { listen ${ISP}:80; root ${d}/www; }
}
`)
    this.spawnIn(this.ns.isp, 'nginx', ['-c', join(d, 'nginx.conf'), '-p', d], {}, 'nginx')
  }

  /** A long-running process; its output goes to <lab dir>/<name>.log (read it when a run fails). */
  private spawnIn (ns: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}, name = 'proc'): ChildProcess {
    const fd = openSync(join(this.dir.path, `${name}.log`), 'a')
    const p = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', fd, fd], env: { PATH: process.env.PATH, ...env } })
    closeSync(fd)
    this.procs.push(p)
    return p
  }

  private startAgent (ns: string, name: string, flags: string[], evil = false): ChildProcess {
    const data = join(this.dir.path, name)
    mkdirSync(data, { recursive: true })
    const config = {
      name,
      trustedPublishers: [PUB],
      http: { port: PORT },
      discovery: { notifyIntervalMs: 10_000 },
      // 2 MiB blocks (1 MiB pieces fit), 144 MiB of flash: a 50 MB transfer stays pinned while it runs.
      cache: { blockBytes: 2 * 1024 * 1024, blockCount: 72, bytesMax: 112 * 1024 * 1024 },
      proxy: { objectBytesMax: 56 * 1024 * 1024 },
      // The corrupting device does not stand for election: scenario (e) is about a provider that dies. (A provider that
      // serves bad pieces is banned like any peer, and the devices fetch from the origin after PROVIDER_WAIT_MS.)
      protocol: { election: { candidate: !evil } }
    }
    writeFileSync(join(data, 'config.json'), JSON.stringify(config))
    const args = ['agent', '--config', join(data, 'config.json'), '--data', data, ...flags]
    // The corrupting device is our own agent with its piece reads patched (test code, not in the bundle).
    const p = evil
      ? this.spawnIn(ns, process.execPath, ['-r', 'esbuild-register', join(__dirname, 'fixtures', 'evil-agent.ts'), ...args], {}, name)
      : this.spawnIn(ns, process.execPath, [...NODE_FLAGS, this.bundle, ...args], FIRMWARE_ENV, name)
    return p
  }

  async exec (ns: string, cmd: string, args: string[], timeoutMs = 10_000): Promise<string> {
    return await new Promise((resolve, reject) => {
      execFile('ip', ['netns', 'exec', ns, cmd, ...args], { timeout: timeoutMs, maxBuffer: 8 * 1024 * 1024 }, (err, out, errOut) => {
        if (err !== null) reject(new Error(`${cmd} in ${ns}: ${err.message} ${errOut}`))
        else resolve(out)
      })
    })
  }

  async status (ns: string): Promise<any> {
    return JSON.parse(await this.exec(ns, 'curl', ['-s', '-m', '2', `http://127.0.0.1:${PORT}/api/status`], 4_000))
  }

  private async untilProvider (deadlineMs = 30_000): Promise<void> {
    const end = Date.now() + deadlineMs
    for (;;) {
      try {
        this.gwNodeId = (await this.status(this.ns.gw)).nodeId
        const names = await Promise.all(this.ns.devices.map(async (d) => (await this.status(d)).provider?.provider?.nodeId))
        if (names.every((n) => n === this.gwNodeId)) { this.log('every device names the gateway as provider'); return }
      } catch { /* not up yet */ }
      if (Date.now() > end) {
        const seen = await Promise.all(this.ns.devices.map(async (d) => { try { const st = await this.status(d); return `${st.provider?.provider?.nodeId?.slice(0, 8) ?? 'none'}/${st.peers?.count ?? '?'} peers` } catch (e) { return String(e).slice(0, 80) } }))
        throw new Error(`the devices did not agree on the gateway (${this.gwNodeId.slice(0, 8)}) as provider within ${deadlineMs} ms: ${seen.join(', ')}; logs in ${this.dir.path}`)
      }
      await sleep(250)
    }
  }

  /** A fresh random file on the origin, with its signed manifest. */
  publish (name: string): { sha: string, murl: string, url: string } {
    const www = join(this.dir.path, 'nginx', 'www')
    const file = randomBytes(this.o.sizeBytes)
    const pieceSize = pieceSizeFor(file.length)
    const pieces: string[] = []
    for (let at = 0; at < file.length; at += pieceSize) pieces.push(sha256(file.subarray(at, at + pieceSize)))
    const url = `http://${ISP}/${name}`
    writeFileSync(join(www, name), file)
    writeFileSync(join(www, `${name}.canopy.json`), signManifest({ name, size: file.length, pieceSize, pieces, urls: [url] }, KEY).bytes)
    return { sha: sha256(file), murl: `${url}.canopy.json`, url }
  }

  /** Bytes nginx sent since the last call. */
  private async wanBytes (): Promise<number> {
    await sleep(300) // nginx logs a request when it ends
    const lines = readFileSync(join(this.dir.path, 'nginx', 'access.log'), 'utf8').split('\n').filter((l) => l.length > 0)
    const fresh = lines.slice(this.logLines)
    this.logLines = lines.length
    return fresh.reduce((a, l) => a + Number(l.split(' ')[2] ?? 0), 0)
  }

  private run (ns: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null, out: string, err: string, endMs: number }> {
    return new Promise((resolve) => {
      const p = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH, ...env } })
      this.procs.push(p)
      let out = ''
      let err = ''
      p.stdout.on('data', (c: Buffer) => { out += c.toString() })
      p.stderr.on('data', (c: Buffer) => { err += c.toString() })
      p.on('exit', (code) => { resolve({ code, out, err, endMs: Date.now() }) })
    })
  }

  /**
   * Device i fetches the manifest's file through its agent: by default the way
   * an application does (curl on GET /api/content; the clock stops when curl
   * exits), or with `canopy fetch` (the bundle's CLI, which also starts a Node
   * process per device).
   */
  private async fetch (i: number, murl: string, how: 'app' | 'cli' = 'app'): Promise<Outcome['perDevice'][0] & { sha: string, endMs: number }> {
    const ns = this.ns.devices[i]!
    const out = join(this.dir.path, `d${i}-${randomBytes(3).toString('hex')}.bin`)
    const agent = `http://127.0.0.1:${PORT}`
    const r = how === 'cli'
      ? await this.run(ns, process.execPath, [this.bundle, 'fetch', murl, '--out', out, '--agent', agent])
      : await this.run(ns, 'curl', ['-sf', '-o', out, `${agent}/api/content?manifest=${encodeURIComponent(murl)}`])
    if (r.code !== 0) this.log(`d${i} fetch failed (${r.code ?? '?'}): ${r.err.trim().slice(0, 300)}`)
    const name = murl.split('/').pop()!.replace(/\.canopy\.json$/, '')
    const t = (await this.status(ns).catch(() => null))?.transfers?.list?.find((x: any) => x.name === name) ?? {}
    return { name: `d${i}`, fromPeersBytes: (t.fromPeersBytes ?? 0) + (t.fromProviderBytes ?? 0), fromOriginBytes: t.fromOriginBytes ?? 0, ok: r.code === 0, sha: fileSha(out), endMs: r.endMs }
  }

  private async outcome (scenario: string, sha: string, t0: number, results: Array<Outcome['perDevice'][0] & { sha?: string, endMs?: number }>, note: string): Promise<Outcome> {
    const seconds = (Math.max(...results.map((r) => r.endMs ?? Date.now())) - t0) / 1000
    const wanBytes = await this.wanBytes()
    const perDevice = results.map((r) => ({ name: r.name, fromPeersBytes: r.fromPeersBytes, fromOriginBytes: r.fromOriginBytes, ok: r.ok && r.sha === sha }))
    const o = { scenario, wanBytes, seconds, good: perDevice.filter((r) => r.ok).length, expected: perDevice.length, perDevice, note }
    this.log(`${scenario}: WAN ${(wanBytes / this.o.sizeBytes).toFixed(3)}× size, ${seconds.toFixed(1)} s, ${o.good}/${o.expected} copies right`)
    return o
  }

  private honest (): number[] { return this.ns.devices.map((_, i) => i).filter((i) => i !== this.evil) }

  /** Baseline: every device fetches straight from nginx (no Canopy). */
  async baseline (): Promise<Outcome> {
    const { sha, url } = this.publish('base.bin')
    await this.wanBytes()
    const t0 = Date.now()
    const results = await Promise.all(this.honest().map(async (i) => {
      const out = join(this.dir.path, `base-d${i}.bin`)
      const r = await this.run(this.ns.devices[i]!, 'curl', ['-s', '-o', out, url])
      return { name: `d${i}`, fromPeersBytes: 0, fromOriginBytes: this.o.sizeBytes, ok: r.code === 0, sha: fileSha(out), endMs: r.endMs }
    }))
    return await this.outcome('baseline: each device straight from the origin', sha, t0, results, 'no Canopy')
  }

  /** (a) every device fetches the manifest at once. */
  async allAtOnce (): Promise<Outcome> {
    const { sha, murl } = this.publish('a.bin')
    await this.wanBytes()
    const t0 = Date.now()
    const results = await Promise.all(this.honest().map((i) => this.fetch(i, murl)))
    return await this.outcome('(a) all devices at once', sha, t0, results, '')
  }

  /** (b) devices start one after another, `gapMs` apart. */
  async staggered (gapMs: number): Promise<Outcome> {
    const { sha, murl } = this.publish('b.bin')
    await this.wanBytes()
    const t0 = Date.now()
    const results = await Promise.all(this.honest().map(async (i, k) => { await sleep(k * gapMs); return await this.fetch(i, murl) }))
    return await this.outcome('(b) staggered starts', sha, t0, results, `${gapMs / 1000} s apart`)
  }

  /** (c) unmodified curl clients through the gateway's proxy at once. */
  async proxyClients (): Promise<Outcome> {
    const { sha, url } = this.publish('c.bin')
    await this.wanBytes()
    const t0 = Date.now()
    const results = await Promise.all(this.honest().map(async (i) => {
      const out = join(this.dir.path, `c-d${i}.bin`)
      const r = await this.run(this.ns.devices[i]!, 'curl', ['-s', '-o', out, url], { http_proxy: `http://${LAN}.1:${PORT}` })
      return { name: `d${i}`, fromPeersBytes: this.o.sizeBytes, fromOriginBytes: 0, ok: r.code === 0, sha: fileSha(out), endMs: r.endMs }
    }))
    return await this.outcome('(c) curl through the gateway proxy', sha, t0, results, 'http_proxy=gateway')
  }

  /** (d) the evil device holds the file and serves it corrupted; the others fetch at once. */
  async corruptPeer (): Promise<Outcome & { isolatedBy: number }> {
    if (this.evil === null) throw new Error('set up with an evil device')
    const { sha, murl } = this.publish('d.bin')
    await this.wanBytes()
    await this.fetch(this.evil, murl) // it now holds every piece (and serves them flipped)
    const t0 = Date.now()
    const results = await Promise.all(this.honest().map((i) => this.fetch(i, murl, 'cli')))
    const evilId = (await this.status(this.ns.devices[this.evil]!)).nodeId
    let isolatedBy = 0
    for (const i of this.honest()) {
      const s = await this.status(this.ns.devices[i]!)
      if (s.transfers.peers.some((p: any) => p.nodeId === evilId && p.banned === true)) isolatedBy++
    }
    const o = await this.outcome('(d) one device serves corrupt pieces', sha, t0, results, '')
    return { ...o, isolatedBy, note: `${isolatedBy} of ${results.length} devices isolated it` }
  }

  /** (e) the provider's agent is killed (SIGKILL) after `afterMs`; the devices must still finish. */
  async providerDies (afterMs: number): Promise<Outcome> {
    const { sha, murl } = this.publish('e.bin')
    await this.wanBytes()
    const t0 = Date.now()
    const all = Promise.all(this.honest().map((i) => this.fetch(i, murl)))
    await sleep(afterMs)
    this.gwAgent?.kill('SIGKILL')
    this.log(`gateway agent killed ${afterMs} ms in`)
    const results = await all
    return await this.outcome('(e) the provider dies mid-download', sha, t0, results, `killed at ${afterMs / 1000} s`)
  }

  cleanup (): void {
    for (const p of this.procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL')
    // `ip netns exec` children die with their namespace's processes: kill whatever still runs inside.
    for (const n of this.created) {
      try { execFileSync('ip', ['netns', 'pids', n]).toString().split('\n').filter((x) => /^\d+$/.test(x)).forEach((pid) => { try { process.kill(Number(pid), 'SIGKILL') } catch { /* gone */ } }) } catch { /* gone */ }
    }
    for (const n of this.created.reverse()) { try { ip(['netns', 'del', n]) } catch { /* gone */ } }
    this.created.length = 0
    this.dir.remove()
  }
}
