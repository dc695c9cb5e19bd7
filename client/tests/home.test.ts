import { describe, expect, it } from 'vitest'
import { createRoomBody } from '../src/pages/Home'

describe('createRoomBody', () => {
  it('adds the meeting name when one is typed, trimmed; blank means unnamed', () => {
    expect(createRoomBody('sfu', '', '  Weekly design review ')).toEqual({ mode: 'sfu', name: 'Weekly design review' })
    expect(createRoomBody('p2p', 'pw', 'Standup')).toEqual({ mode: 'p2p', access: 'password', password: 'pw', name: 'Standup' })
    expect(createRoomBody('sfu', '', '   ')).toEqual({ mode: 'sfu' })
    expect(createRoomBody('sfu', '')).toEqual({ mode: 'sfu' })
  })
})
