import { afterEach, describe, expect, it, vi } from 'vitest'
import { MeshTransport, meshRepairAction } from '../src/services/meshTransport'
import type { Signal } from '../src/services/protocol'
import type { SignalingClient } from '../src/services/socket'
import type { PeerState } from '../src/services/transport'
import { FakePC, settle } from './fakePeerConnection'

function setup(selfId = 'm', recoveryOptions = {}) {
  const pcs: FakePC[] = []
  const sent: { from: string; to: string; signal: Signal }[] = []
  const removed: string[] = []
  const states: [string, PeerState][] = []
  const recovery: string[] = []
  const net = { connected: true }
  const signaling = {
    sendSignal: async (from: string, to: string, signal: Signal) => {
      sent.push({ from, to, signal })
      return { ok: true }
    },
    get connected() {
      return net.connected
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
      onRecovery: (peer, state, attempt) => recovery.push(`${peer}:${state}:${attempt}`),
    },
    createPeerConnection: (config) => {
      const pc = new FakePC(config)
      pcs.push(pc)
      return pc as unknown as RTCPeerConnection
    },
  }, recoveryOptions)
  return { t, pcs, sent, removed, states, recovery, net }
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

const setState = (pc: FakePC, state: RTCPeerConnectionState) => {
  pc.connectionState = state
  pc.onconnectionstatechange?.()
}

describe('meshRepairAction', () => {
  it('first an ICE restart by the impolite side only, then new connections', () => {
    expect(meshRepairAction(1, false)).toBe('ice-restart')
    expect(meshRepairAction(1, true)).toBe('wait')
    for (const n of [2, 3, 10, 100]) {
      expect(meshRepairAction(n, false)).toBe('new-connection')
      expect(meshRepairAction(n, true)).toBe('new-connection')
    }
  })
})

describe('MeshTransport recovery', () => {
  afterEach(() => {
    vi.useRealTimers()
  })
  const noJitter = { random: () => 0.5 }

  it('the impolite side restarts ICE on a failed link, then replaces the connection', async () => {
    vi.useFakeTimers()
    const { t, pcs, sent, recovery } = setup('m', noJitter) // m > a: m is impolite toward a
    t.start([info('a')])
    setState(pcs[0], 'connected')
    setState(pcs[0], 'failed')
    await vi.advanceTimersByTimeAsync(500)
    expect(pcs[0].log).toContain('restartIce')
    expect(pcs).toHaveLength(1)
    expect(recovery).toEqual(['a:recovering:1'])
    // the restart did not connect within 10 s: a new connection, generation 1, which offers
    await vi.advanceTimersByTimeAsync(10_000 + 1000)
    expect(pcs).toHaveLength(2)
    expect(pcs[0].closed).toBe(true)
    pcs[1].onnegotiationneeded!()
    await vi.advanceTimersByTimeAsync(10)
    expect(sent.at(-1)?.signal).toEqual({ type: 'offer', sdp: `offer-${pcs[1].id}`, gen: 1 })
    // the old connection's late state changes are ignored; the new one connecting is recovery
    setState(pcs[0], 'failed')
    setState(pcs[1], 'connected')
    expect(recovery).toEqual(['a:recovering:1', 'a:recovering:2', 'a:recovered:2'])
    t.close()
  })

  it('the polite side waits for the restart of the other, then replaces the connection itself', async () => {
    vi.useFakeTimers()
    const { t, pcs } = setup('a', noJitter) // a < m: a is polite
    t.start([info('m')])
    setState(pcs[0], 'disconnected')
    await vi.advanceTimersByTimeAsync(3000 + 500)
    expect(pcs[0].log).not.toContain('restartIce')
    expect(pcs).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(10_000 + 1000)
    expect(pcs).toHaveLength(2)
    t.close()
  })

  it('a signal of a higher generation replaces our connection; a lower one is ignored', async () => {
    const { t, pcs, sent } = setup('a', noJitter)
    t.signal('z', { type: 'offer', sdp: 'o1' })
    await settle()
    expect(pcs).toHaveLength(1)
    t.signal('z', { type: 'offer', sdp: 'o2', gen: 1 })
    await settle()
    expect(pcs).toHaveLength(2)
    expect(pcs[0].closed).toBe(true)
    expect(pcs[1].remoteDescription?.sdp).toBe('o2')
    expect(sent.at(-1)?.signal).toEqual({ type: 'answer', sdp: `answer-${pcs[1].id}`, gen: 1 })
    t.signal('z', { candidate: { candidate: 'old' } }) // generation 0: stale
    t.signal('z', { candidate: { candidate: 'new' }, gen: 1 })
    await settle()
    expect(pcs).toHaveLength(2)
    expect(pcs[1].candidates.map((c) => c.candidate)).toEqual(['new'])
    t.close()
  })

  it('does not repair while the signaling socket is down', async () => {
    vi.useFakeTimers()
    const { t, pcs, net } = setup('m', noJitter)
    t.start([info('a')])
    setState(pcs[0], 'connected')
    net.connected = false
    setState(pcs[0], 'failed')
    await vi.advanceTimersByTimeAsync(60_000)
    expect(pcs[0].log).not.toContain('restartIce')
    expect(pcs).toHaveLength(1)
    net.connected = true
    await vi.advanceTimersByTimeAsync(1000)
    expect(pcs[0].log).toContain('restartIce')
    t.close()
  })

  it('a participant who leaves is not repaired any more', async () => {
    vi.useFakeTimers()
    const { t, pcs } = setup('m', noJitter)
    t.start([info('a')])
    setState(pcs[0], 'failed')
    t.userLeft('a')
    await vi.advanceTimersByTimeAsync(60_000)
    expect(pcs).toHaveLength(1)
    expect(pcs[0].log).not.toContain('restartIce')
  })
})

describe('MeshTransport.remoteStats', () => {
  it('summarizes each peer connection: inbound media, RTT and the local candidate type', async () => {
    const { t, pcs } = setup('m')
    t.start([info('a')])
    const report = new Map<string, Record<string, unknown>>([
      ['T', { id: 'T', type: 'transport', selectedCandidatePairId: 'P' }],
      ['P', { id: 'P', type: 'candidate-pair', currentRoundTripTime: 0.042, localCandidateId: 'L' }],
      ['L', { id: 'L', type: 'local-candidate', candidateType: 'relay' }],
      ['V', { id: 'V', type: 'inbound-rtp', kind: 'video', framesPerSecond: 15, framesDecoded: 300, packetsLost: 2, packetsReceived: 400, bytesReceived: 90_000, frameWidth: 320, frameHeight: 240 }],
      ['A', { id: 'A', type: 'inbound-rtp', kind: 'audio', packetsLost: 1, packetsReceived: 500, bytesReceived: 40_000, jitter: 0.003 }],
    ])
    pcs[0].getStats = async () => report as unknown as RTCStatsReport
    pcs[0].connectionState = 'connected'
    expect(await t.remoteStats()).toEqual({
      a: {
        connectionState: 'connected',
        rttMs: 42,
        candidateType: 'relay',
        video: { framesPerSecond: 15, framesDecoded: 300, packetsLost: 2, packetsReceived: 400, bytesReceived: 90_000, frameWidth: 320, frameHeight: 240 },
        audio: { packetsLost: 1, packetsReceived: 500, bytesReceived: 40_000, jitter: 0.003 },
      },
    })
  })

  it('a peer with nothing received yet still has its connection state', async () => {
    const { t } = setup('m')
    t.start([info('a')])
    expect(await t.remoteStats()).toEqual({ a: { connectionState: 'new' } })
  })
})
