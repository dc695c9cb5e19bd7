import { describe, expect, it } from 'vitest'
import { MeshTransport } from '../src/services/meshTransport'
import type { Signal } from '../src/services/protocol'
import type { SignalingClient } from '../src/services/socket'
import type { PeerState } from '../src/services/transport'
import { FakePC, settle } from './fakePeerConnection'

function setup(selfId = 'm') {
  const pcs: FakePC[] = []
  const sent: { from: string; to: string; signal: Signal }[] = []
  const removed: string[] = []
  const states: [string, PeerState][] = []
  const signaling = {
    sendSignal: async (from: string, to: string, signal: Signal) => {
      sent.push({ from, to, signal })
      return { ok: true }
    },
  } as unknown as SignalingClient
  const t = new MeshTransport({
    selfId,
    signaling,
    iceServers: [{ urls: 'turn:example.invalid', username: 'u', credential: 'c' }],
    localStream: null,
    callbacks: {
      onRemoteStream: () => undefined,
      onRemoteStreamRemoved: (id) => removed.push(id),
      onPeerState: (id, s) => states.push([id, s]),
      onNotice: () => undefined,
    },
    createPeerConnection: (config) => {
      const pc = new FakePC(config)
      pcs.push(pc)
      return pc as unknown as RTCPeerConnection
    },
  })
  return { t, pcs, sent, removed, states }
}

const info = (userId: string) => ({ userId, userName: userId, media: { audio: true, video: true, screen: false } })

describe('MeshTransport', () => {
  it('the newcomer connects to everyone already there, with the server-given ICE servers', () => {
    const { t, pcs } = setup()
    t.start([info('a'), info('b'), info('m')])
    expect(pcs).toHaveLength(2)
    expect(pcs[0].config.iceServers).toEqual([{ urls: 'turn:example.invalid', username: 'u', credential: 'c' }])
    // without local media it still asks to receive audio and video
    expect(pcs[0].transceivers).toEqual([
      { kind: 'audio', direction: 'recvonly' },
      { kind: 'video', direction: 'recvonly' },
    ])
    expect(t.peers().map((p) => p.userId).sort()).toEqual(['a', 'b'])
  })

  it('an existing participant answers the first offer of a newcomer', async () => {
    const { t, pcs, sent } = setup('a')
    t.userJoined(info('z'))
    expect(pcs).toHaveLength(0) // waits for the newcomer's offer
    t.signal('z', { type: 'offer', sdp: 'o' })
    await settle()
    expect(pcs).toHaveLength(1)
    expect(pcs[0].transceivers).toEqual([]) // a responder adds no receive-only transceivers
    expect(sent).toEqual([{ from: 'a', to: 'z', signal: { type: 'answer', sdp: `answer-${pcs[0].id}` } }])
  })

  it('closes the connection of a participant who leaves', () => {
    const { t, pcs, removed } = setup()
    t.start([info('a'), info('b')])
    t.userLeft('a')
    expect(pcs[0].closed).toBe(true)
    expect(pcs[1].closed).toBe(false)
    expect(removed).toEqual(['a'])
    expect(t.peers().map((p) => p.userId)).toEqual(['b'])
    t.userLeft('nobody')
    expect(removed).toEqual(['a'])
  })

  it('a participant who joins again (after a blip) gets a fresh connection', async () => {
    const { t, pcs } = setup('a')
    t.signal('z', { type: 'offer', sdp: 'o1' })
    await settle()
    t.userJoined(info('z'))
    expect(pcs[0].closed).toBe(true)
    t.signal('z', { type: 'offer', sdp: 'o2' })
    await settle()
    expect(pcs).toHaveLength(2)
    expect(pcs[1].remoteDescription?.sdp).toBe('o2')
  })

  it('close() closes every connection and ignores later signals', async () => {
    const { t, pcs } = setup()
    t.start([info('a'), info('b')])
    t.close()
    expect(pcs.every((pc) => pc.closed)).toBe(true)
    t.signal('c', { type: 'offer', sdp: 'o' })
    await settle()
    expect(pcs).toHaveLength(2)
  })
})
