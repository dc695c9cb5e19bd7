import { useEffect, useRef, useState } from 'react'
import { useTranslation } from 'react-i18next'
import { audioContext, openLocalMedia, watchAudioLevel, type DeviceChoice } from '../services/media'
import { deniedAdvice, isPermissionDenied } from '../lib/permissions'
import { DeviceSelect } from './DeviceSelect'

export interface PreJoinProps {
  rawAudio: boolean
  devices: DeviceChoice
  onDevices: (d: DeviceChoice) => void
  startAudio: boolean
  startVideo: boolean
  onStartAudio: (on: boolean) => void
  onStartVideo: (on: boolean) => void
}

/** Before joining (#18): the camera as others will see it, the microphone's level, a speaker
 * test, the devices (input and output) and whether to join muted or with the camera off.
 * The preview's tracks stop when the user joins; the meeting opens its own. */
export function PreJoin(props: PreJoinProps) {
  const { rawAudio, devices, startAudio, startVideo } = props
  const { t } = useTranslation()
  const videoRef = useRef<HTMLVideoElement>(null)
  const [stream, setStream] = useState<MediaStream | null>(null)
  const [problem, setProblem] = useState<string | null>(null)
  const [denied, setDenied] = useState(false)
  const [level, setLevel] = useState(0)
  const [attempt, setAttempt] = useState(0)
  const [testing, setTesting] = useState(false)

  useEffect(() => {
    let live = true
    let opened: MediaStream | null = null
    setProblem(null)
    setDenied(false)
    void openLocalMedia({ rawAudio, audio: startAudio, video: startVideo, ...devices }).then((r) => {
      if (!live) {
        r.stream?.getTracks().forEach((t) => t.stop())
        return
      }
      opened = r.stream
      setStream(r.stream)
      setProblem(r.problem)
      setDenied(isPermissionDenied({ name: r.errorName }))
    })
    return () => {
      live = false
      opened?.getTracks().forEach((t) => t.stop())
      setStream(null)
    }
  }, [rawAudio, startAudio, startVideo, devices.audioDeviceId, devices.videoDeviceId, attempt])

  useEffect(() => {
    const v = videoRef.current
    if (v && v.srcObject !== stream) v.srcObject = stream
  }, [stream])

  useEffect(() => {
    if (!stream || stream.getAudioTracks().length === 0) {
      setLevel(0)
      return
    }
    return watchAudioLevel(stream, (rms) => setLevel(Math.min(1, rms * 5)), 100)
  }, [stream])

  const testSpeakers = async () => {
    const ctx = audioContext()
    if (!ctx || testing) return
    setTesting(true)
    // A short chime through the chosen output: an <audio> element can be sent to a device.
    const osc = ctx.createOscillator()
    const gain = ctx.createGain()
    const out = ctx.createMediaStreamDestination()
    osc.frequency.value = 660
    gain.gain.value = 0.2
    osc.connect(gain).connect(out)
    const audio = document.createElement('audio')
    audio.dataset.testid = 'speaker-test-audio'
    audio.srcObject = out.stream
    const sink = audio as HTMLAudioElement & { setSinkId?: (id: string) => Promise<void> }
    if (devices.audioOutputId && sink.setSinkId) await sink.setSinkId(devices.audioOutputId).catch(() => undefined)
    document.body.appendChild(audio)
    osc.start()
    await audio.play().catch(() => undefined)
    setTimeout(() => {
      osc.stop()
      audio.remove()
      setTesting(false)
    }, 1200)
  }

  const hasVideo = !!stream?.getVideoTracks().length
  return (
    <div className="prejoin" data-testid="prejoin">
      <div className="prejoin-preview">
        <video ref={videoRef} className={`mirrored${hasVideo ? '' : ' hidden-video'}`} autoPlay playsInline muted data-testid="preview-video" aria-label={t('prejoin.preview')} />
        {!hasVideo && <div className="avatar prejoin-off">{!startVideo ? t('prejoin.cameraOff') : denied ? t('prejoin.cameraBlocked') : t('prejoin.noCamera')}</div>}
      </div>
      <div className="mic-meter" aria-hidden="true">
        <span style={{ width: `${Math.round(level * 100)}%` }} />
      </div>
      <meter className="visually-hidden" min={0} max={1} value={level} data-testid="mic-meter" aria-label={t('prejoin.micLevel')} />
      {denied && (
        <div className="notice notice-error" role="alert" data-testid="media-denied">
          <strong>{t('prejoin.blocked')}</strong> {deniedAdvice(navigator.userAgent)} {t('prejoin.joinWithout')}
          <div>
            <button type="button" onClick={() => setAttempt((n) => n + 1)} data-testid="media-retry">
              {t('prejoin.tryAgain')}
            </button>
          </div>
        </div>
      )}
      {!denied && problem && (
        <p className="muted" role="status" data-testid="preview-problem">
          {problem}
        </p>
      )}
      <DeviceSelect
        audioDeviceId={devices.audioDeviceId}
        videoDeviceId={devices.videoDeviceId}
        outputDeviceId={devices.audioOutputId}
        refreshKey={stream}
        onChange={(kind, id) =>
          props.onDevices(
            kind === 'audio'
              ? { ...devices, audioDeviceId: id || undefined }
              : kind === 'video'
                ? { ...devices, videoDeviceId: id || undefined }
                : { ...devices, audioOutputId: id || undefined },
          )
        }
      />
      <button type="button" className="small-btn" onClick={() => void testSpeakers()} disabled={testing} data-testid="speaker-test" data-playing={testing ? 'yes' : 'no'}>
        {testing ? t('prejoin.playing') : t('prejoin.testSpeakers')}
      </button>
      <label className="check">
        <input type="checkbox" checked={startAudio} onChange={(e) => props.onStartAudio(e.target.checked)} data-testid="prejoin-mic" /> {t('prejoin.withMic')}
      </label>
      <label className="check">
        <input type="checkbox" checked={startVideo} onChange={(e) => props.onStartVideo(e.target.checked)} data-testid="prejoin-camera" /> {t('prejoin.withCamera')}
      </label>
    </div>
  )
}
