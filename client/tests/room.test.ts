import { describe, expect, it } from 'vitest'
import type { JoinAnswer } from '../src/services/protocol'
import { initialRoomState, MAX_TOASTS, raisedHands, roomReducer, type RoomAction, type RoomState } from '../src/state/room'

const answer: JoinAnswer = {
  roomId: 'r1',
  userId: 'me',
  mode: 'p2p',
  participants: [{ userId: 'bob', userName: 'Bob', media: { audio: true, video: true, screen: false } }],
  chatHistory: [{ id: 'c1', userId: 'bob', userName: 'Bob', message: 'hi', timestamp: 1 }],
  iceServers: [],
  isCreator: false,
}

function run(actions: RoomAction[], s: RoomState = initialRoomState): RoomState {
  return actions.reduce(roomReducer, s)
}

const joined = run([{ type: 'joined', answer, userName: 'Me', media: { audio: true, video: false, screen: false } }])

describe('roomReducer', () => {
  it('join puts the local participant first, then the others, and loads chat history', () => {
    expect(joined.joined).toBe(true)
    expect(joined.mode).toBe('p2p')
    expect(joined.order).toEqual(['me', 'bob'])
    expect(joined.participants.me).toMatchObject({ userName: 'Me', isLocal: true, media: { audio: true, video: false } })
    expect(joined.participants.bob.isLocal).toBe(false)
    expect(joined.chat.map((m) => m.id)).toEqual(['c1'])
    expect(joined.unread).toBe(0)
  })

  it('join takes the meeting display name from the answer, null when unnamed', () => {
    expect(joined.roomName).toBeNull()
    const named = run([{ type: 'joined', answer: { ...answer, roomName: 'Weekly design review' }, userName: 'Me', media: joined.participants.me.media }])
    expect(named.roomName).toBe('Weekly design review')
    const blank = run([{ type: 'joined', answer: { ...answer, roomName: '' }, userName: 'Me', media: joined.participants.me.media }])
    expect(blank.roomName).toBeNull()
    expect(run([{ type: 'left' }], named).roomName).toBeNull()
  })

  it('user-joined adds a tile and a toast; a repeat join does not toast again', () => {
    const p = { userId: 'cy', userName: 'Cy', media: { audio: false, video: true, screen: false } }
    const s = run([{ type: 'user-joined', participant: p }], joined)
    expect(s.order).toEqual(['me', 'bob', 'cy'])
    expect(s.toasts.map((t) => t.message)).toEqual(['Cy joined'])
    const again = run([{ type: 'user-joined', participant: p }], s)
    expect(again.order).toEqual(['me', 'bob', 'cy'])
    expect(again.toasts).toHaveLength(1)
  })

  it('user-left removes the participant and their reactions', () => {
    const s = run(
      [
        { type: 'emoji', reaction: { id: 'e1', userId: 'bob', userName: 'Bob', emoji: '👍', timestamp: 2 } },
        { type: 'user-left', userId: 'bob' },
      ],
      joined,
    )
    expect(s.order).toEqual(['me'])
    expect(s.participants.bob).toBeUndefined()
    expect(s.reactions).toEqual([])
    expect(s.toasts.at(-1)?.message).toBe('Bob left')
    // unknown and local users are ignored
    expect(run([{ type: 'user-left', userId: 'ghost' }], s)).toBe(s)
    expect(run([{ type: 'user-left', userId: 'me' }], s)).toBe(s)
  })

  it('media-state merges into the participant', () => {
    const s = run([{ type: 'media-state', userId: 'bob', media: { audio: false } }], joined)
    expect(s.participants.bob.media).toEqual({ audio: false, video: true, screen: false })
    expect(run([{ type: 'media-state', userId: 'nobody', media: { audio: false } }], joined)).toBe(joined)
  })

  it('counts unread messages only while the chat is closed and not for own messages', () => {
    const msg = (id: string, userId = 'bob') => ({ type: 'chat-message' as const, message: { id, userId, userName: 'x', message: 'm', timestamp: 10 } })
    let s = run([msg('a'), msg('b'), msg('b'), msg('c', 'me')], joined)
    expect(s.unread).toBe(2)
    expect(s.chat).toHaveLength(4) // c1 + a + b + c (duplicate b dropped)
    s = run([{ type: 'chat-open', open: true }], s)
    expect(s.unread).toBe(0)
    s = run([msg('d')], s)
    expect(s.unread).toBe(0)
    s = run([{ type: 'chat-open', open: false }, msg('e')], s)
    expect(s.unread).toBe(1)
  })

  it('rejoin after reconnect rebuilds participants and keeps chat without duplicates', () => {
    const s = run([{ type: 'chat-message', message: { id: 'c2', userId: 'bob', userName: 'Bob', message: 'x', timestamp: 5 } }], joined)
    const rejoined = run(
      [{ type: 'joined', answer: { ...answer, participants: [], chatHistory: [answer.chatHistory[0], s.chat[1]] }, userName: 'Me', media: { audio: true, video: true, screen: false } }],
      s,
    )
    expect(rejoined.order).toEqual(['me'])
    expect(rejoined.chat.map((m) => m.id)).toEqual(['c1', 'c2'])
  })

  it('reactions expire; toasts are capped and dismissable', () => {
    let s = run([{ type: 'emoji', reaction: { id: 'e1', userId: 'bob', userName: 'Bob', emoji: '🎉', timestamp: 2 } }], joined)
    expect(s.reactions).toHaveLength(1)
    s = run([{ type: 'emoji-expired', id: 'e1' }], s)
    expect(s.reactions).toHaveLength(0)
    for (let i = 0; i < 8; i++) s = roomReducer(s, { type: 'toast', kind: 'info', message: `t${i}` })
    expect(s.toasts).toHaveLength(MAX_TOASTS)
    expect(s.toasts.at(-1)?.message).toBe('t7')
    const id = s.toasts[0].id
    s = roomReducer(s, { type: 'toast-dismiss', id })
    expect(s.toasts.some((t) => t.id === id)).toBe(false)
  })

  it('room-participants merges others but never the local user', () => {
    const s = run([{ type: 'participants', list: [{ userId: 'me', userName: 'Other', media: { audio: false, video: false, screen: false } }, { userId: 'dee', userName: 'Dee', media: undefined as never }] }], joined)
    expect(s.participants.me.userName).toBe('Me')
    expect(s.participants.dee.media).toEqual({ audio: false, video: false, screen: false })
  })
})

describe('raised hands', () => {
  const cy = { userId: 'cy', userName: 'Cy', media: { audio: false, video: true, screen: false }, handRaisedAt: 50 }
  it('a late joiner sees the line in order; raising toasts, lowering and repeats do not', () => {
    const s = run(
      [
        { type: 'user-joined', participant: cy },
        { type: 'hand', userId: 'bob', at: 70 },
        { type: 'hand', userId: 'me', at: 60 },
        { type: 'hand', userId: 'bob', at: 70 },
      ],
      joined,
    )
    expect(raisedHands(s)).toEqual([
      ['cy', 50],
      ['me', 60],
      ['bob', 70],
    ])
    expect(s.toasts.map((t) => t.message)).toEqual(['Cy joined', 'Bob raised their hand'])
    const lowered = run([{ type: 'hand', userId: 'cy', at: null }, { type: 'hand', userId: 'ghost', at: 1 }], s)
    expect(raisedHands(lowered).map(([id]) => id)).toEqual(['me', 'bob'])
    expect(lowered.toasts).toHaveLength(2)
  })
})

describe('local recording', () => {
  it('the others are told once per change; our own change is kept quietly', () => {
    const dee = { userId: 'dee', userName: 'Dee', media: { audio: false, video: true, screen: false }, localRecording: true }
    const s = run(
      [
        { type: 'user-joined', participant: dee },
        { type: 'local-recording', userId: 'bob', recording: true },
        { type: 'local-recording', userId: 'bob', recording: true },
        { type: 'local-recording', userId: 'me', recording: true },
        { type: 'local-recording', userId: 'ghost', recording: true },
      ],
      joined,
    )
    expect(s.participants.dee.localRecording).toBe(true) // a late joiner sees it from the list
    expect(s.participants.bob.localRecording).toBe(true)
    expect(s.participants.me.localRecording).toBe(true)
    expect(s.toasts.map((t) => t.message)).toEqual(['Dee joined', 'Bob is recording this meeting on their computer'])
    const stopped = run([{ type: 'local-recording', userId: 'bob', recording: false }], s)
    expect(stopped.participants.bob.localRecording).toBe(false)
    expect(stopped.toasts.at(-1)?.message).toBe('Bob stopped recording')
  })
})
