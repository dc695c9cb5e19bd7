import { useEffect, useState } from 'react'
import { listDevices, type Devices } from '../services/media'

/** Camera, microphone and (where the browser allows) speaker choice (labels appear once
 * permission is granted). The speaker list shows only when ``outputDeviceId`` is handled. */
export function DeviceSelect({
  audioDeviceId,
  videoDeviceId,
  outputDeviceId,
  onChange,
  refreshKey,
  withOutput = true,
}: {
  audioDeviceId?: string
  videoDeviceId?: string
  outputDeviceId?: string
  onChange: (kind: 'audio' | 'video' | 'output', deviceId: string) => void
  refreshKey?: unknown
  withOutput?: boolean
}) {
  const [devices, setDevices] = useState<Devices>({ audioInputs: [], videoInputs: [], audioOutputs: [] })
  useEffect(() => {
    let alive = true
    const load = () => void listDevices().then((d) => alive && setDevices(d)).catch(() => undefined)
    load()
    navigator.mediaDevices?.addEventListener?.('devicechange', load)
    return () => {
      alive = false
      navigator.mediaDevices?.removeEventListener?.('devicechange', load)
    }
  }, [refreshKey])

  const cams = devices.videoInputs.filter((d) => d.deviceId)
  const mics = devices.audioInputs.filter((d) => d.deviceId)
  const camsHidden = cams.length === 0 && devices.videoInputs.length > 0
  const micsHidden = mics.length === 0 && devices.audioInputs.length > 0
  const speakers = devices.audioOutputs.filter((d) => d.deviceId && d.deviceId !== 'default')
  return (
    <div className="device-select">
      <label>
        Camera
        <select
          aria-label="Camera"
          value={videoDeviceId ?? ''}
          onChange={(e) => onChange('video', e.target.value)}
          disabled={cams.length === 0}
        >
          {devices.videoInputs.length === 0 && <option value="">No camera found</option>}
          {camsHidden && <option value="">Default camera (allow access to choose)</option>}
          {!videoDeviceId && cams.length > 0 && <option value="">Default</option>}
          {cams.map((d, i) => (
            <option key={d.deviceId} value={d.deviceId}>
              {d.label || `Camera ${i + 1}`}
            </option>
          ))}
        </select>
      </label>
      <label>
        Microphone
        <select
          aria-label="Microphone"
          value={audioDeviceId ?? ''}
          onChange={(e) => onChange('audio', e.target.value)}
          disabled={mics.length === 0}
        >
          {devices.audioInputs.length === 0 && <option value="">No microphone found</option>}
          {micsHidden && <option value="">Default microphone (allow access to choose)</option>}
          {!audioDeviceId && mics.length > 0 && <option value="">Default</option>}
          {mics.map((d, i) => (
            <option key={d.deviceId} value={d.deviceId}>
              {d.label || `Microphone ${i + 1}`}
            </option>
          ))}
        </select>
      </label>
      {withOutput && speakers.length > 0 && (
        <label>
          Speakers
          <select aria-label="Speakers" value={outputDeviceId ?? ''} onChange={(e) => onChange('output', e.target.value)} data-testid="output-select">
            {!outputDeviceId && <option value="">Default</option>}
            {speakers.map((d, i) => (
              <option key={d.deviceId} value={d.deviceId}>
                {d.label || `Speakers ${i + 1}`}
              </option>
            ))}
          </select>
        </label>
      )}
    </div>
  )
}
