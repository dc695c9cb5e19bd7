import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { backoffDelay, BACKOFF_CAP_MS, ConnectionRecovery, type RecoveryOptions } from '../src/services/recovery'

describe('backoffDelay', () => {
  it('doubles from 0.5 s and stays at 8 s (middle of the jitter)', () => {
    const mid = () => 0.5
    expect([1, 2, 3, 4, 5, 6, 7, 50].map((n) => backoffDelay(n, mid))).toEqual([500, 1000, 2000, 4000, 8000, 8000, 8000, 8000])
  })

  it('jitters each delay by ±25%, never beyond', () => {
    expect(backoffDelay(1, () => 0)).toBe(375)
    expect(backoffDelay(1, () => 0.999999)).toBe(625)
    for (let n = 1; n < 30; n++) {
      const d = backoffDelay(n)
      expect(d).toBeGreaterThanOrEqual(375)
      expect(d).toBeLessThanOrEqual(BACKOFF_CAP_MS * 1.25)
    }
  })
})

describe('ConnectionRecovery', () => {
  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  function make(extra: Partial<RecoveryOptions> = {}) {
    const repairs: number[] = []
    const events: string[] = []
    const r = new ConnectionRecovery({
      random: () => 0.5, // no jitter: delays 500, 1000, 2000, 4000, 8000
      graceMs: 3000,
      connectTimeoutMs: 10_000,
      stableMs: 10_000,
      onRecovery: (state, attempt) => events.push(`${state}:${attempt}`),
      repair: (attempt) => repairs.push(attempt),
      ...extra,
    })
    return { r, repairs, events }
  }

  it('a failed connection is repaired after the first backoff step', () => {
    const { r, repairs, events } = make()
    r.noteState('failed')
    expect(events).toEqual(['recovering:1'])
    vi.advanceTimersByTime(499)
    expect(repairs).toEqual([])
    vi.advanceTimersByTime(1)
    expect(repairs).toEqual([1])
  })

  it('a short disconnection heals by itself: no repair', () => {
    const { r, repairs, events } = make()
    r.noteState('connected')
    r.noteState('disconnected')
    vi.advanceTimersByTime(2900)
    r.noteState('connected')
    vi.advanceTimersByTime(60_000)
    expect(repairs).toEqual([])
    expect(events).toEqual([])
  })

  it('disconnected longer than the grace period is broken', () => {
    const { r, repairs } = make()
    r.noteState('connected')
    r.noteState('disconnected')
    vi.advanceTimersByTime(3000 + 500)
    expect(repairs).toEqual([1])
  })

  it('never gives up: each repair that does not connect brings the next, backing off to 8 s', () => {
    const { r, repairs } = make()
    const times: number[] = []
    const start = Date.now()
    const r2 = new ConnectionRecovery({
      random: () => 0.5,
      connectTimeoutMs: 10_000,
      repair: () => times.push(Date.now() - start),
    })
    r2.broken('negotiation failed')
    vi.advanceTimersByTime(10 * 60_000)
    // each attempt: its backoff, then 10 s to connect
    const gaps = times.slice(1).map((t, i) => t - times[i])
    expect(times[0]).toBe(500)
    expect(gaps.slice(0, 5)).toEqual([11_000, 12_000, 14_000, 18_000, 18_000])
    expect(times.length).toBeGreaterThan(30) // far beyond the old limit of 5
    r.dispose()
    expect(repairs).toEqual([])
  })

  it('a repaired connection reports recovered, and the count starts again after it is stable', () => {
    const { r, repairs, events } = make()
    r.noteState('failed')
    vi.advanceTimersByTime(500)
    vi.advanceTimersByTime(10_000) // the new connection did not connect in time
    vi.advanceTimersByTime(1000)
    expect(repairs).toEqual([1, 2])
    r.noteState('connected')
    expect(events).toEqual(['recovering:1', 'recovering:2', 'recovered:2'])
    r.noteState('failed') // before it was stable: the backoff goes on
    vi.advanceTimersByTime(1999)
    expect(repairs).toEqual([1, 2])
    vi.advanceTimersByTime(1)
    expect(repairs).toEqual([1, 2, 3])
    r.noteState('connected')
    vi.advanceTimersByTime(10_000) // stable
    expect(r.attempt).toBe(0)
    r.noteState('failed')
    vi.advanceTimersByTime(500)
    expect(repairs).toEqual([1, 2, 3, 1])
  })

  it('repeated trouble while a repair is pending schedules only one', () => {
    const { r, repairs } = make()
    r.noteState('failed')
    r.broken('closed by the server')
    r.noteState('failed')
    vi.advanceTimersByTime(2000)
    expect(repairs).toEqual([1])
  })

  it('a connection that heals before its repair runs is not replaced', () => {
    const { r, repairs, events } = make()
    r.noteState('failed')
    r.noteState('connected')
    vi.advanceTimersByTime(60_000)
    expect(repairs).toEqual([])
    expect(events).toEqual(['recovering:1', 'recovered:1'])
  })

  it('waits while it cannot repair (no signaling), then repairs', () => {
    let up = false
    const { r, repairs } = make({ canRepair: () => up, waitMs: 1000 })
    r.noteState('failed')
    vi.advanceTimersByTime(30_000)
    expect(repairs).toEqual([])
    up = true
    vi.advanceTimersByTime(1000)
    expect(repairs).toEqual([1])
  })

  it('a first connection that never connects is repaired', () => {
    const { r, repairs } = make()
    r.started()
    vi.advanceTimersByTime(10_000 + 500)
    expect(repairs).toEqual([1])
  })

  it('adopted(): the peer repaired, so no repair of our own until the connect timeout', () => {
    const { r, repairs } = make()
    r.noteState('failed')
    r.adopted()
    vi.advanceTimersByTime(9_999)
    expect(repairs).toEqual([])
    vi.advanceTimersByTime(1 + 1000)
    expect(repairs).toEqual([2])
  })

  it('reset() and dispose() stop everything', () => {
    const { r, repairs } = make()
    r.noteState('failed')
    r.reset()
    expect(r.attempt).toBe(0)
    expect(r.isRecovering).toBe(false)
    r.started()
    r.dispose()
    r.noteState('failed')
    vi.advanceTimersByTime(60_000)
    expect(repairs).toEqual([])
  })
})
