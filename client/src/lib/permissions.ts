// A denied camera or microphone: how to tell it, and how to undo it in each browser (#18).

export function isPermissionDenied(err: unknown): boolean {
  const name = (err as { name?: string } | null)?.name
  return name === 'NotAllowedError' || name === 'SecurityError'
}

/** Where the user re-allows the camera and microphone, for the browser they use. */
export function deniedAdvice(userAgent: string): string {
  if (/Firefox\//.test(userAgent)) {
    return 'Click the crossed-out camera icon left of the address bar, remove the "Blocked" permissions, then press Try again.'
  }
  if (/Edg\//.test(userAgent)) {
    return 'Click the lock icon left of the address bar, set Camera and Microphone to Allow, then press Try again.'
  }
  if (/Chrome\/|Chromium\//.test(userAgent)) {
    return 'Click the camera icon at the right of the address bar (or the icon left of it), choose to always allow this site, then press Try again.'
  }
  if (/Safari\//.test(userAgent)) {
    return 'Open Safari → Settings for this website, set Camera and Microphone to Allow, then press Try again.'
  }
  return "Allow this site's camera and microphone in the browser's site settings, then press Try again."
}
