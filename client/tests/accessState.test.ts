import { describe, expect, it } from 'vitest'
import type { Socket } from 'socket.io-client'
import type { JoinAnswer } from '../src/services/protocol'
import { isLobbyAnswer, SignalingClient } from '../src/services/socket'
import { initialRoomState, roomReducer, type RoomAction, type RoomState } from '../src/state/room'

function fakeSocket(answer: (event: string, payload: unknown) => unknown) {
  const emitted: { event: string; payload: unknown }[] = []
  const socket = {
    connected: true,
    timeout: () => ({
      emitWithAck: async (event: string, payload: unknown) => {
        emitted.push({ event, payload })
        return answer(event, payload)
      },
    }),
  } as unknown as Socket
  return { socket, emitted }
}

describe('join-room with credentials', () => {
  it('carries the token, the password and a creating access policy; nothing undefined', async () => {
    const { socket, emitted } = fakeSocket(() => ({ ok: false, error: 'password_required' }))
    const c = new SignalingClient(socket)
    await c.join({ roomId: 'r', userId: 'u', userName: 'A', token: 'a.b.c' })
    await c.join({ roomId: 'r', userId: 'u', userName: 'A', password: 'pw', access: 'password' })
    await c.join({ roomId: 'r', userId: 'u', userName: 'A', token: undefined, password: undefined })
    expect(emitted.map((e) => e.payload)).toEqual([
      { roomId: 'r', userId: 'u', userName: 'A', token: 'a.b.c' },
      { roomId: 'r', userId: 'u', userName: 'A', password: 'pw', access: 'password' },
      { roomId: 'r', userId: 'u', userName: 'A' },
    ])
  })

  it('a lobby answer is not a seat: not remembered, not announced to join listeners', async () => {
    const { socket } = fakeSocket(() => ({ ok: true, lobby: true, requestId: 'q1' }))
    const c = new SignalingClient(socket)
    const seen: JoinAnswer[] = []
    c.onJoined((a) => seen.push(a))
    const ack = await c.join({ roomId: 'r', userId: 'u', userName: 'A' })
    expect(isLobbyAnswer(ack)).toBe(true)
    expect(c.lastJoinAnswer).toBeNull()
    expect(seen).toEqual([])
  })

  it('sends the moderation events with the contract payloads', async () => {
    const { socket, emitted } = fakeSocket(() => ({ ok: true }))
    const c = new SignalingClient(socket)
    await c.lobbyAdmit('q1')
    await c.lobbyDeny('q2')
    await c.lobbyDeny('q3', 'full')
    await c.setRole('b', 'moderator')
    await c.muteParticipant('b', 'audio')
    await c.stopScreenShareOf('b')
    await c.removeParticipant('b', 'spam')
    await c.removeParticipant('b')
    await c.lockRoom(true)
    await c.endMeeting()
    expect(emitted.map((e) => [e.event, e.payload])).toEqual([
      ['lobby-admit', { requestId: 'q1' }],
      ['lobby-deny', { requestId: 'q2' }],
      ['lobby-deny', { requestId: 'q3', reason: 'full' }],
      ['set-role', { userId: 'b', role: 'moderator' }],
      ['mute-participant', { userId: 'b', kind: 'audio' }],
      ['stop-screen-share', { userId: 'b' }],
      ['remove-participant', { userId: 'b', reason: 'spam' }],
      ['remove-participant', { userId: 'b' }],
      ['lock-room', { locked: true }],
      ['end-meeting', {}],
    ])
  })
})

const answer: JoinAnswer = {
  roomId: 'r1',
  userId: 'me',
  mode: 'sfu',
  participants: [
    { userId: 'bob', userName: 'Bob', media: { audio: true, video: true, screen: false }, role: 'moderator' },
    { userId: 'eve', userName: 'Eve', media: { audio: true, video: true, screen: false } },
  ],
  chatHistory: [],
  iceServers: [],
  isCreator: false,
  role: 'participant',
  grants: { publish: { audio: true, video: false, screen: false }, chat: false, record: false },
  locked: true,
  lobby: [{ requestId: 'q1', userName: 'Zed' }],
}

const run = (actions: RoomAction[], s: RoomState = initialRoomState) => actions.reduce(roomReducer, s)
const joined = run([{ type: 'joined', answer, userName: 'Me', media: { audio: true, video: false, screen: false } }])

describe('roles, grants, lock and lobby in the room state', () => {
  it('the join answer gives our role, grants, the lock and the lobby; participants their roles', () => {
    expect(joined.role).toBe('participant')
    expect(joined.grants.publish).toEqual({ audio: true, video: false, screen: false })
    expect(joined.grants.chat).toBe(false)
    expect(joined.locked).toBe(true)
    expect(joined.lobby).toEqual([{ requestId: 'q1', userName: 'Zed' }])
    expect(joined.participants.bob.role).toBe('moderator')
    expect(joined.participants.eve.role).toBe('participant')
    expect(joined.participants.me.role).toBe('participant')
  })

  it('an older server: the creator is the moderator, and every grant but record and moderate', () => {
    const old = run([{ type: 'joined', answer: { ...answer, role: undefined, grants: undefined, isCreator: true }, userName: 'Me', media: { audio: true, video: false, screen: false } }])
    expect(old.role).toBe('moderator')
    expect(old.grants.publish.video).toBe(true)
    expect(old.grants.record).toBe(false)
  })

  it('role-changed updates the participant, and ours when it is us', () => {
    const s = run([{ type: 'role-changed', userId: 'me', role: 'moderator' }, { type: 'role-changed', userId: 'bob', role: 'participant' }], joined)
    expect(s.role).toBe('moderator')
    expect(s.participants.me.role).toBe('moderator')
    expect(s.participants.bob.role).toBe('participant')
    // A moderator demoted no longer holds the knocks.
    const back = run([{ type: 'role-changed', userId: 'me', role: 'participant' }], s)
    expect(back.lobby).toEqual([])
  })

  it('knocks are listed once and leave the list when resolved; the lock follows room-locked', () => {
    const s = run(
      [
        { type: 'lobby-knock', request: { requestId: 'q2', userName: 'Yan' } },
        { type: 'lobby-knock', request: { requestId: 'q2', userName: 'Yan' } },
        { type: 'lobby-resolved', requestId: 'q1' },
        { type: 'room-locked', locked: false },
      ],
      joined,
    )
    expect(s.lobby).toEqual([{ requestId: 'q2', userName: 'Yan' }])
    expect(s.locked).toBe(false)
  })
})

describe('a hand-over', () => {
  it('brings our new grants with the new role (the Record button follows)', () => {
    const s = run([{ type: 'role-changed', userId: 'me', role: 'moderator', grants: { record: true, moderate: true, publish: true } }], joined)
    expect(s.grants.record).toBe(true)
    expect(s.grants.moderate).toBe(true)
    expect(s.grants.publish.video).toBe(true)
    const other = run([{ type: 'role-changed', userId: 'bob', role: 'participant', grants: { record: false } }], s)
    expect(other.grants.record).toBe(true)
  })
})
