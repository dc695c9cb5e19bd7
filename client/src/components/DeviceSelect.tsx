import { useEffect, useState } from 'react'
import { useTranslation } from 'react-i18next'
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
  const { t } = useTranslation()
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
        {t('devices.camera')}
        <select
          aria-label={t('devices.camera')}
          value={videoDeviceId ?? ''}
          onChange={(e) => onChange('video', e.target.value)}
          disabled={cams.length === 0}
        >
          {devices.videoInputs.length === 0 && <option value="">{t('devices.noCamera')}</option>}
          {camsHidden && <option value="">{t('devices.defaultCamera')}</option>}
          {!videoDeviceId && cams.length > 0 && <option value="">{t('devices.default')}</option>}
          {cams.map((d, i) => (
            <option key={d.deviceId} value={d.deviceId}>
              {d.label || t('devices.cameraN', { n: i + 1 })}
            </option>
          ))}
        </select>
      </label>
      <label>
        {t('devices.microphone')}
        <select
          aria-label={t('devices.microphone')}
          value={audioDeviceId ?? ''}
          onChange={(e) => onChange('audio', e.target.value)}
          disabled={mics.length === 0}
        >
          {devices.audioInputs.length === 0 && <option value="">{t('devices.noMicrophone')}</option>}
          {micsHidden && <option value="">{t('devices.defaultMicrophone')}</option>}
          {!audioDeviceId && mics.length > 0 && <option value="">{t('devices.default')}</option>}
          {mics.map((d, i) => (
            <option key={d.deviceId} value={d.deviceId}>
              {d.label || t('devices.microphoneN', { n: i + 1 })}
            </option>
          ))}
        </select>
      </label>
      {withOutput && speakers.length > 0 && (
        <label>
          {t('devices.speakers')}
          <select aria-label={t('devices.speakers')} value={outputDeviceId ?? ''} onChange={(e) => onChange('output', e.target.value)} data-testid="output-select">
            {!outputDeviceId && <option value="">{t('devices.default')}</option>}
            {speakers.map((d, i) => (
              <option key={d.deviceId} value={d.deviceId}>
                {d.label || t('devices.speakersN', { n: i + 1 })}
              </option>
            ))}
          </select>
        </label>
      )}
    </div>
  )
}
