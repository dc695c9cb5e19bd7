import { describe, expect, it } from 'vitest'
import { HIDDEN_AFTER_MS, tileViews, viewsChanged, type Box } from '../src/services/tileViews'

const box = (top: number, height: number, left = 0, width = 160): Box => ({
  top,
  bottom: top + height,
  left,
  right: left + width,
  height,
  width,
})
const viewport = { width: 1000, height: 800 }

describe('tileViews', () => {
  it.each([
    ['an on-screen tile, in device pixels', [box(10, 90)], 2, { height: 180, visible: true }],
    ['the biggest of two elements', [box(10, 90), box(100, 300)], 1, { height: 300, visible: true }],
    ['a tile below the fold', [box(900, 90)], 1, { height: 0, visible: false }],
    ['a tile scrolled above', [box(-200, 90)], 1, { height: 0, visible: false }],
    ['a zero-size element', [box(10, 0)], 1, { height: 0, visible: false }],
    ['no element at all', [], 1, { height: 0, visible: false }],
  ])('%s', (_what, boxes, dpr, want) => {
    expect(tileViews([{ mid: '3', boxes, since: 0 }], viewport, dpr, 10_000)).toEqual([{ mid: '3', ...want }])
  })

  it('asks for the lowest layer in low bandwidth mode', () => {
    expect(tileViews([{ mid: '3', boxes: [box(10, 90)], since: 0 }], viewport, 1, 10_000, true)).toEqual([
      { mid: '3', height: 90, visible: true, preference: 'low' },
    ])
  })

  it('waits before calling a new track hidden (its tile is drawn a moment later)', () => {
    expect(tileViews([{ mid: '3', boxes: [], since: 0 }], viewport, 1, HIDDEN_AFTER_MS - 1)).toEqual([])
  })
})

describe('viewsChanged', () => {
  const a = [{ mid: '1', height: 200, visible: true }]
  it.each([
    ['the same', a, false],
    ['a height within a tenth', [{ mid: '1', height: 215, visible: true }], false],
    ['a height beyond a tenth', [{ mid: '1', height: 260, visible: true }], true],
    ['hidden', [{ mid: '1', height: 0, visible: false }], true],
    ['another track', [{ mid: '2', height: 200, visible: true }], true],
    ['one more', [...a, { mid: '2', height: 10, visible: true }], true],
    ['low bandwidth mode', [{ mid: '1', height: 200, visible: true, preference: 'low' as const }], true],
  ])('%s', (_what, next, want) => {
    expect(viewsChanged(a, next)).toBe(want)
  })
})
