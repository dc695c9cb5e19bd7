// A denied camera or microphone: how to tell it, and how to undo it in each browser (#18).

import { t } from '../i18n'

export function isPermissionDenied(err: unknown): boolean {
  const name = (err as { name?: string } | null)?.name
  return name === 'NotAllowedError' || name === 'SecurityError'
}

/** Where the user re-allows the camera and microphone, for the browser they use. */
export function deniedAdvice(userAgent: string): string {
  if (/Firefox\//.test(userAgent)) {
    return t('permissions.firefox')
  }
  if (/Edg\//.test(userAgent)) {
    return t('permissions.edge')
  }
  if (/Chrome\/|Chromium\//.test(userAgent)) {
    return t('permissions.chrome')
  }
  if (/Safari\//.test(userAgent)) {
    return t('permissions.safari')
  }
  return t('permissions.other')
}
