import { descendants, isAlive, startProcess } from '../../src/runtime/process.js'

describe('process tree', () => {
  it('stops a command together with the processes it started in groups of their own', async () => {
    // like docker running docker-buildx: the grandchild ignores SIGINT and lives in its own process group
    const child = startProcess('bash', ['-c', 'setsid bash -c "trap \\"\\" INT; sleep 60" & echo started; wait'], { onLine: () => undefined })
    await new Promise((r) => setTimeout(r, 500))
    const tree = descendants(process.pid)
    // bash and the setsid'd sleep that ignores SIGINT
    expect(tree.length).toBeGreaterThanOrEqual(2)
    await child.stop()
    const result = await child.done
    expect(result.stopped).toBe(true)
    for (const p of tree) expect(isAlive(p)).toBe(false)
  }, 20_000)

  it('passes stdin and hands every line over', async () => {
    const lines: string[] = []
    const result = await startProcess('bash', ['-c', 'cat; echo err >&2; printf tail'], { input: 'secret\n', onLine: (l) => lines.push(l) }).done
    expect(result).toMatchObject({ code: 0, stdout: 'secret\ntail', stderr: 'err\n', stopped: false })
    expect(lines.sort()).toEqual(['err', 'secret', 'tail'])
  })
})
