import { describe, expect, it } from 'vitest'
import { arrange, gridColumns, type StageInput } from '../src/state/layout'

const base: StageInput = { layout: 'grid', ids: ['me', 'ann', 'bob'], selfId: 'me', pinned: null, screens: [], lastSpeaker: null }

describe('arrange', () => {
  it.each<[string, Partial<StageInput>, string | null, string | null]>([
    ['grid: no stage', {}, null, null],
    ['a pin makes the stage in grid view', { pinned: 'bob' }, 'bob', 'pinned'],
    ['we may pin ourselves', { pinned: 'me' }, 'me', 'pinned'],
    ['a pin of someone gone is ignored', { pinned: 'zed' }, null, null],
    ['a remote screen share takes the stage', { screens: ['ann'] }, 'ann', 'screen'],
    ['our own screen share does not', { screens: ['me'] }, null, null],
    ['a pin beats a screen share', { screens: ['ann'], pinned: 'bob' }, 'bob', 'pinned'],
    ['speaker view: the last speaker', { layout: 'speaker', lastSpeaker: 'bob' }, 'bob', 'speaker'],
    ['speaker view: never ourselves while others are here', { layout: 'speaker', lastSpeaker: 'me' }, 'ann', 'speaker'],
    ['speaker view before anyone spoke: the first other', { layout: 'speaker' }, 'ann', 'speaker'],
    ['speaker view alone: no stage', { layout: 'speaker', ids: ['me'] }, null, null],
    ['speaker view, screen share first', { layout: 'speaker', lastSpeaker: 'bob', screens: ['ann'] }, 'ann', 'screen'],
  ])('%s', (_, change, stage, reason) => {
    const got = arrange({ ...base, ...change })
    expect(got.stage).toBe(stage)
    expect(got.reason).toBe(reason)
    const ids = change.ids ?? base.ids
    expect(got.others).toEqual(ids.filter((id) => id !== stage))
  })
})

describe('gridColumns', () => {
  it.each([
    [1, 1],
    [2, 2],
    [4, 2],
    [5, 3],
    [9, 3],
    [10, 4],
    [16, 4],
    [17, 5],
    [25, 5],
  ])('%i tiles: %i columns', (n, cols) => expect(gridColumns(n)).toBe(cols))
})
