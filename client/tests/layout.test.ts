import { describe, expect, it } from 'vitest'
import { arrange, gridColumns, paginate, tilesPerPage, type StageInput } from '../src/state/layout'

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

describe('tilesPerPage', () => {
  it('25 on a laptop, 6 on a phone', () => {
    expect(tilesPerPage(false)).toBe(25)
    expect(tilesPerPage(true)).toBe(6)
  })
})

const people = (n: number) => Array.from({ length: n }, (_, i) => (i === 0 ? 'me' : `p${i}`))

describe('paginate', () => {
  it.each<[string, number, number, number, number, number, string[] | null]>([
    // what, people, per page, asked page, got page, pages, first ids of the page (null: all)
    ['one person', 1, 25, 0, 0, 1, null],
    ['3 people: one page', 3, 25, 0, 0, 1, null],
    ['exactly 25: one page', 25, 25, 0, 0, 1, null],
    ['26: two pages (24 others + us on each)', 26, 25, 0, 0, 2, ['me', 'p1', 'p2']],
    ['26, page 2: us and the last one', 26, 25, 1, 1, 2, ['me', 'p25']],
    ['49: 48 others, two full pages', 49, 25, 1, 1, 2, ['me', 'p25', 'p26']],
    ['50: three pages', 50, 25, 2, 2, 3, ['me', 'p49']],
    ['a page past the end is the last', 26, 25, 7, 1, 2, ['me', 'p25']],
    ['a negative page is the first', 26, 25, -1, 0, 2, ['me', 'p1']],
    ['phone: 7 people, 6 a page', 7, 6, 0, 0, 2, ['me', 'p1', 'p2', 'p3', 'p4', 'p5']],
    ['phone: page 2', 7, 6, 1, 1, 2, ['me', 'p6']],
    ['phone: 6 fit', 6, 6, 0, 0, 1, null],
  ])('%s', (_, n, per, page, gotPage, pages, first) => {
    const ids = people(n)
    const got = paginate(ids, 'me', per, page)
    expect(got.page).toBe(gotPage)
    expect(got.pages).toBe(pages)
    if (first === null) expect(got.ids).toEqual(ids)
    else expect(got.ids.slice(0, first.length)).toEqual(first)
    expect(got.ids.length).toBeLessThanOrEqual(per)
  })

  it('every other person is on exactly one page, we are on all', () => {
    const ids = people(60)
    const seen = new Map<string, number>()
    const { pages } = paginate(ids, 'me', 25, 0)
    for (let p = 0; p < pages; p++) for (const id of paginate(ids, 'me', 25, p).ids) seen.set(id, (seen.get(id) ?? 0) + 1)
    expect(seen.get('me')).toBe(pages)
    expect([...seen.keys()].sort()).toEqual([...ids].sort())
    for (const id of ids.filter((i) => i !== 'me')) expect(seen.get(id)).toBe(1)
  })

  it('keeps room order, our tile where it is', () => {
    const ids = ['a', 'b', 'me', 'c', 'd']
    expect(paginate(ids, 'me', 3, 0).ids).toEqual(['a', 'b', 'me'])
    expect(paginate(ids, 'me', 3, 1).ids).toEqual(['me', 'c', 'd'])
  })

  it('without a self id (before the join answer) the others just page', () => {
    expect(paginate(people(30).slice(1), null, 25, 1).ids).toEqual(['p26', 'p27', 'p28', 'p29'])
  })

  it('the grid of a full page is 5 columns', () => {
    expect(gridColumns(paginate(people(40), 'me', 25, 0).ids.length)).toBe(5)
  })
})
