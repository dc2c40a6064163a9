// Seeds for randomized tests: fixed by default, overridable, always printed so
// a failure can be replayed with CANOPY_SEED=<n>.

export function testSeed (name: string, fallback = 1): number {
  const env = process.env.CANOPY_SEED
  const seed = env !== undefined && /^\d+$/.test(env) ? Number(env) : fallback
  if (process.env.CANOPY_SEED_QUIET === undefined) process.stdout.write(`  [${name}: seed ${seed}]\n`)
  return seed
}
