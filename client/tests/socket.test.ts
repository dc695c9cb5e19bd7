import { describe, expect, it } from 'vitest'
import type { Socket } from 'socket.io-client'
import { SignalingClient } from '../src/services/socket'

function fakeSocket(answer: (event: string, payload: unknown) => Promise<unknown>) {
  const emitted: { event: string; payload: unknown; timeout: number }[] = []
  const socket = {
    connected: true,
    timeout: (ms: number) => ({
      emitWithAck: (event: string, payload: unknown) => {
        emitted.push({ event, payload, timeout: ms })
        return answer(event, payload)
      },
    }),
  } as unknown as Socket
  return { socket, emitted }
}

describe('SignalingClient', () => {
  it('sends the guide events with the protocol payloads', async () => {
    const { socket, emitted } = fakeSocket(async () => ({ ok: true }))
    const c = new SignalingClient(socket)
    await c.join({ roomId: 'r', userId: 'u', userName: 'Ann', mode: 'p2p', media: { audio: true, video: false, screen: false } })
    await c.sendSignal('u', 'v', { type: 'offer', sdp: 'x' })
    await c.sendChat('hi')
    await c.sendEmoji('👍')
    await c.sendMediaState({ audio: false })
    await c.leave()
    expect(emitted.map((e) => [e.event, e.payload])).toEqual([
      ['join-room', { roomId: 'r', userId: 'u', userName: 'Ann', mode: 'p2p', media: { audio: true, video: false, screen: false } }],
      ['signal-send', { targetUserId: 'v', userId: 'u', signal: { type: 'offer', sdp: 'x' } }],
      ['chat-message', { message: 'hi' }],
      ['emoji-reaction', { emoji: '👍' }],
      ['media-state', { audio: false }],
      ['leave-room', {}],
    ])
  })

  it('a rejoin of the same user and room carries the last answer\'s rejoin token', async () => {
    let n = 0
    const { socket, emitted } = fakeSocket(async (_e, p) => {
      n += 1
      const { roomId, userId } = p as { roomId: string; userId: string }
      return { ok: true, roomId, userId, rejoinToken: `t${n}` }
    })
    const c = new SignalingClient(socket)
    await c.join({ roomId: 'r', userId: 'u', userName: 'Ann' })
    await c.join({ roomId: 'r', userId: 'u', userName: 'Ann' })
    await c.join({ roomId: 'r', userId: 'u', userName: 'Ann' })
    await c.join({ roomId: 'other', userId: 'u', userName: 'Ann' })
    expect(emitted.map((e) => (e.payload as { rejoinToken?: string }).rejoinToken)).toEqual([undefined, 't1', 't2', undefined])
  })

  it('a rejoin asks for the mode the room had (a restarted server re-creates it so)', async () => {
    const { socket, emitted } = fakeSocket(async (_e, p) => {
      const { roomId, userId } = p as { roomId: string; userId: string }
      return { ok: true, roomId, userId, mode: 'sfu', rejoinToken: 't' }
    })
    const c = new SignalingClient(socket)
    await c.join({ roomId: 'r', userId: 'u', userName: 'Ann' })
    await c.join({ roomId: 'r', userId: 'u', userName: 'Ann' })
    await c.join({ roomId: 'r', userId: 'u', userName: 'Ann', mode: 'p2p' })
    await c.join({ roomId: 'other', userId: 'u', userName: 'Ann' })
    expect(emitted.map((e) => (e.payload as { mode?: string }).mode)).toEqual([undefined, 'sfu', 'p2p', undefined])
  })

  it('passes the server error answer through', async () => {
    const { socket } = fakeSocket(async () => ({ ok: false, error: 'room_full', message: 'the room is full' }))
    const ack = await new SignalingClient(socket).join({ roomId: 'r', userId: 'u', userName: 'A' })
    expect(ack).toEqual({ ok: false, error: 'room_full', message: 'the room is full' })
  })

  it('a missing acknowledgement becomes a timeout error', async () => {
    const { socket } = fakeSocket(async () => {
      throw new Error('operation has timed out')
    })
    const ack = await new SignalingClient(socket).sendChat('x')
    expect(ack).toMatchObject({ ok: false, error: 'timeout' })
  })

  it('an answer that is not an acknowledgement is an error', async () => {
    const { socket } = fakeSocket(async () => 'nonsense')
    expect(await new SignalingClient(socket).request('x', {})).toMatchObject({ ok: false, error: 'invalid_answer' })
  })
})
