// Two agents as real processes on loopback, driven by the CLI: one creates
// a group and invites the other, the other joins; a record added on one
// appears on the other within 1 s (watched through its event stream).

import { spawn, type ChildProcess } from 'node:child_process'
import { request } from 'node:http'
import { join } from 'node:path'
import { test } from 'uvu'
import * as assert from 'uvu/assert'
import { runCli } from '../helpers/cli'
import { tempDir } from '../helpers/tmp'

const ROOT = join(__dirname, '..', '..')

async function start (dir: string): Promise<{ child: ChildProcess, url: string }> {
  const child = spawn(process.execPath, ['-r', 'esbuild-register', join(ROOT, 'src', 'main.ts'), 'agent', '--http', '127.0.0.1:0', '--data', dir], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => { reject(new Error(`no status page line within 20 s: ${err}`)) }, 20_000)
    child.stderr!.on('data', (c: Buffer) => {
      err += c.toString()
      const m = /status page (http:\/\/\S+?)\/? /.exec(err)
      if (m !== null) { clearTimeout(t); resolve(m[1]!) }
    })
    child.on('exit', (code) => { clearTimeout(t); reject(new Error(`agent exited ${String(code)}: ${err}`)) })
  })
  return { child, url }
}

test('create, invite, join; a record on one agent appears on the other within 1 s', async () => {
  const dirs = [tempDir('canopy-gp-a-'), tempDir('canopy-gp-b-')]
  const kids: ChildProcess[] = []
  try {
    const [a, b] = await Promise.all(dirs.map((d) => start(d.path)))
    kids.push(a!.child, b!.child)
    const json = async (argv: string[]): Promise<Record<string, unknown>> => {
      const r = await runCli([...argv, '--json'])
      assert.is(r.code, 0, r.stderr)
      return JSON.parse(r.stdout) as Record<string, unknown>
    }
    const bId = (await json(['status', '--agent', b!.url])).nodeId as string
    const g = (await json(['group', 'create', 'family', '--agent', a!.url])).id as string
    const inv = (await json(['group', 'invite', '--group', g, '--for', bId, '--roles', 'member', '--expires', '1h', '--agent', a!.url])).invitation as string
    assert.is((await json(['group', 'join', inv, '--agent', b!.url])).id, g)
    // a wrong-node invitation is refused with its code
    const other = await runCli(['group', 'join', inv, '--agent', a!.url])
    assert.is(other.code, 1)
    assert.match(other.stderr, /for node/)
    // b watches its events; a adds a chat line
    const seen = new Promise<number>((resolve, reject) => {
      const t = setTimeout(() => { reject(new Error('no event within 5 s')) }, 5_000)
      const req = request(`${b!.url}/api/groups/${g}/events`, (res) => {
        res.on('data', (c: Buffer) => { if (c.toString().includes('hello from a')) { clearTimeout(t); resolve(Date.now()); req.destroy() } })
      })
      req.on('error', () => {})
      req.end()
    })
    await new Promise((resolve) => setTimeout(resolve, 100))
    const t0 = Date.now()
    const res = await fetch(`${a!.url}/api/groups/${g}/records`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'chat', payload: 'hello from a' }) })
    assert.is(res.status, 201)
    const ms = (await seen) - t0
    console.log(`  delivered between processes in ${ms} ms`)
    assert.ok(ms < 1_000, `${ms} ms`)
    const list = await json(['group', 'records', g, '--type', 'chat', '--agent', b!.url])
    assert.is((list.records as Array<{ payload: string }>)[0]!.payload, 'hello from a')
    const groups = await json(['group', 'records', g, '--agent', b!.url])
    assert.ok((groups.records as unknown[]).length >= 3, 'two member records and the chat line')
  } finally {
    for (const k of kids) k.kill('SIGKILL')
    for (const d of dirs) d.remove()
  }
})

test.run()
