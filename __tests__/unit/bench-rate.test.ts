import { peakPerMinute } from '../../tools/bench/common.mjs'

// The bench's "peak per minute" of cache entries: the window GitHub's 200-a-minute limit counts.
describe('peak cache entries per minute', () => {
  it('counts the most entries within any 60 s, not per clock minute', () => {
    expect(peakPerMinute([])).toBe(0)
    expect(peakPerMinute([61_000, 0, 30_000, 59_999, 60_000])).toBe(4)
    expect(peakPerMinute([0, 60_000, 120_000])).toBe(1)
  })
})
