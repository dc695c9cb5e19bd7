import { describe, expect, it } from 'vitest'
import type { Socket } from 'socket.io-client'
import { onSignalingClient, SignalingClient } from '../src/services/socket'
import { initialRecordingState, recordingReducer, recordingToast, type RecordingUiState } from '../src/state/recording'
import { parseRoute, recordingsPath } from '../src/lib/url'
import { recordingFileUrl, recordingsError } from '../src/pages/Recordings'

const started = { recording: true, recordingId: 'r1', startedBy: 'u1', startedAt: 1000, layout: 'grid' }
const names = (id: string) => (id === 'u1' ? 'Alice' : null)

describe('recording reducer', () => {
  it('takes the initial state and token from the join answer', () => {
    const s = recordingReducer(initialRecordingState, { type: 'joined', recording: started, token: 'tok' })
    expect(s).toMatchObject({ recording: true, recordingId: 'r1', startedBy: 'u1', startedAt: 1000, layout: 'grid', token: 'tok' })
    const idle = recordingReducer(initialRecordingState, { type: 'joined', recording: { recording: false }, token: 'tok' })
    expect(idle.recording).toBe(false)
    expect(idle.token).toBe('tok')
  })

  it('follows recording-state start and stop', () => {
    let s = recordingReducer(initialRecordingState, { type: 'state', state: started })
    expect(s.recording).toBe(true)
    s = recordingReducer(s, { type: 'state', state: { recording: false, recordingId: 'r1', reason: 'stopped by alice' } })
    expect(s).toMatchObject({ recording: false, recordingId: 'r1', lastReason: 'stopped by alice', lastError: false, startedBy: null })
  })

  it('ignores the end of an older recording', () => {
    const s = recordingReducer(initialRecordingState, { type: 'state', state: { ...started, recordingId: 'r2' } })
    const after = recordingReducer(s, { type: 'state', state: { recording: false, recordingId: 'r1', reason: 'x' } })
    expect(after.recording).toBe(true)
    expect(after.recordingId).toBe('r2')
  })

  it('tracks pending requests and keeps the token across rejoins without one', () => {
    let s: RecordingUiState = recordingReducer(initialRecordingState, { type: 'joined', token: 'tok' })
    s = recordingReducer(s, { type: 'pending', pending: true })
    expect(s.pending).toBe(true)
    s = recordingReducer(s, { type: 'joined', recording: { recording: false } })
    expect(s.pending).toBe(false)
    expect(s.token).toBe('tok')
  })
})

describe('recording toasts', () => {
  it('announces start with the starter name, and stop with the reason', () => {
    expect(recordingToast(initialRecordingState, started, names)).toEqual({ kind: 'info', message: 'Recording started by Alice' })
    expect(recordingToast(initialRecordingState, { ...started, startedBy: null }, names)?.message).toBe('Recording started')
    const on = recordingReducer(initialRecordingState, { type: 'state', state: started })
    expect(recordingToast(on, started, names)).toBeNull()
    expect(recordingToast(on, { recording: false, recordingId: 'r1', reason: 'room closed' }, names)).toEqual({
      kind: 'info',
      message: 'Recording stopped (room closed)',
    })
    expect(recordingToast(on, { recording: false, recordingId: 'r1', reason: 'disk full', error: true }, names)?.kind).toBe('error')
    expect(recordingToast(initialRecordingState, { recording: false, recordingId: 'r1' }, names)).toBeNull()
  })
})

describe('signaling client recording support', () => {
  function fakeSocket(answers: Record<string, unknown>) {
    const emitted: { event: string; payload: unknown; timeout: number }[] = []
    const socket = {
      connected: true,
      timeout: (ms: number) => ({
        emitWithAck: async (event: string, payload: unknown) => {
          emitted.push({ event, payload, timeout: ms })
          return answers[event] ?? { ok: true }
        },
      }),
    } as unknown as Socket
    return { socket, emitted }
  }

  it('sends recording-start/stop and reports join answers to listeners', async () => {
    const join = { ok: true, roomId: 'r', userId: 'u', mode: 'sfu', participants: [], chatHistory: [], iceServers: [], isCreator: true, recording: started, recordingToken: 'tok' }
    const { socket, emitted } = fakeSocket({ 'join-room': join, 'recording-start': { ok: false, error: 'forbidden', message: 'no' } })
    const seen: SignalingClient[] = []
    const off = onSignalingClient((c) => seen.push(c))
    const c = new SignalingClient(socket)
    expect(seen.at(-1)).toBe(c)
    const answers: unknown[] = []
    c.onJoined((a) => answers.push(a))
    await c.join({ roomId: 'r', userId: 'u', userName: 'Ann', mode: 'sfu' })
    expect(answers).toHaveLength(1)
    expect(c.lastJoinAnswer?.recordingToken).toBe('tok')
    const ack = await c.startRecording()
    expect(ack).toMatchObject({ ok: false, error: 'forbidden' })
    await c.stopRecording()
    expect(emitted.slice(1).map((e) => [e.event, e.payload])).toEqual([
      ['recording-start', {}],
      ['recording-stop', {}],
    ])
    expect(emitted[2].timeout).toBeGreaterThanOrEqual(30_000)
    off()
  })
})

describe('recordings route', () => {
  it('parses /recordings with its token and builds file URLs', () => {
    expect(parseRoute('/recordings', '?token=a%2Bb')).toEqual({ name: 'recordings', token: 'a+b' })
    expect(parseRoute('/recordings/', '')).toEqual({ name: 'recordings', token: null })
    expect(recordingsPath('a+b')).toBe('/recordings?token=a%2Bb')
    expect(recordingFileUrl('room-1', 'a+b')).toBe('/api/recordings/room-1/file?token=a%2Bb')
  })
})

describe('recordings page errors', () => {
  it('tells a stale link from a missing token and shows the server message otherwise', () => {
    const unauthorized = { error: 'unauthorized', message: 'this token is unknown or no longer valid' }
    expect(recordingsError(401, 'old', unauthorized)).toBe('This recording link is no longer valid.')
    expect(recordingsError(401, null, unauthorized)).toBe('A recording link with a token is needed to see recordings.')
    expect(recordingsError(429, 't', { error: 'rate_limited', message: 'slow down' })).toBe('slow down')
    expect(recordingsError(500, 't', null)).toBe('HTTP 500')
  })
})
