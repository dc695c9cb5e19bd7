// Server recording (SFU and P2P rooms): follows `recording-state` and the join answer's `recording`
// and `recordingToken` on the signaling client that useWebRTC owns (found through the
// socket service's registry), and offers start/stop with their acknowledgements.
import { useCallback, useEffect, useReducer, useRef, useState } from 'react'
import { t } from '../i18n'
import type { JoinAnswer, RecordingStateEvent } from '../services/protocol'
import { onSignalingClient, type SignalingClient } from '../services/socket'
import { initialRecordingState, recordingReducer, recordingToast, type RecordingUiState } from '../state/recording'

export interface UseRecordingStateOptions {
  /** Shows a toast (the room's toasts). */
  toast: (message: string, kind: 'info' | 'success' | 'error') => void
  /** A participant's display name by user id, or null. */
  nameOf: (userId: string) => string | null
}

const ERROR_CODES = ['forbidden', 'already_recording', 'not_recording', 'not_sfu_room'] as const
const errorText = (code: string): string | undefined =>
  (ERROR_CODES as readonly string[]).includes(code) ? t(`recording.${code as (typeof ERROR_CODES)[number]}`) : undefined

export function useRecordingState(opts: UseRecordingStateOptions) {
  const [state, dispatch] = useReducer(recordingReducer, initialRecordingState)
  const stateRef = useRef<RecordingUiState>(state)
  stateRef.current = state
  const optsRef = useRef(opts)
  optsRef.current = opts
  const clientRef = useRef<SignalingClient | null>(null)
  // Stop pressed and not yet answered: the server is finishing the file (can take a while).
  const [stopping, setStopping] = useState(false)

  useEffect(() => {
    let offs: (() => void)[] = []
    const detach = () => {
      offs.forEach((off) => off())
      offs = []
    }
    const attach = (client: SignalingClient) => {
      detach()
      clientRef.current = client
      dispatch({ type: 'reset' })
      const onJoined = (answer: JoinAnswer) => {
        dispatch({ type: 'joined', recording: answer.recording ?? null, token: answer.recordingToken ?? null })
      }
      if (client.lastJoinAnswer) onJoined(client.lastJoinAnswer)
      offs.push(
        client.onJoined(onJoined),
        client.on('recording-state', (e: RecordingStateEvent) => {
          const t = recordingToast(stateRef.current, e, (id) => optsRef.current.nameOf(id))
          // Keep the ref in step at once: two events in one tick must not both toast.
          stateRef.current = recordingReducer(stateRef.current, { type: 'state', state: e })
          dispatch({ type: 'state', state: e })
          if (t) optsRef.current.toast(t.message, t.kind)
        }),
      )
    }
    const offRegistry = onSignalingClient(attach)
    return () => {
      offRegistry()
      detach()
      clientRef.current = null
    }
  }, [])

  const request = useCallback(async (what: 'start' | 'stop') => {
    const client = clientRef.current
    if (!client) return
    dispatch({ type: 'pending', pending: true })
    if (what === 'stop') setStopping(true)
    const ack = what === 'start' ? await client.startRecording() : await client.stopRecording()
    dispatch({ type: 'pending', pending: false })
    setStopping(false)
    if (!ack.ok) {
      const text = errorText(ack.error) ?? ack.message ?? ack.error
      const detail = ack.message && ack.message !== text ? ` (${ack.message})` : ''
      optsRef.current.toast(t(what === 'start' ? 'recording.couldNotStart' : 'recording.couldNotStop', { reason: `${text}${detail}` }), 'error')
    }
  }, [])

  return {
    ...state,
    stopping: stopping && state.recording,
    start: useCallback(() => request('start'), [request]),
    stop: useCallback(() => request('stop'), [request]),
  }
}
