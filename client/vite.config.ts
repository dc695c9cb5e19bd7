/// <reference types="vitest/config" />
import { defineConfig } from 'vite'
import react from '@vitejs/plugin-react'

// The app is served by the Python server (`sfu serve`) from the same origin as Socket.IO and
// the REST API, so the build goes into the Python package: ../sfu/web.
export default defineConfig({
  plugins: [react()],
  base: '/',
  build: {
    outDir: '../sfu/web',
    emptyOutDir: true,
    sourcemap: false,
  },
  server: {
    // `npm run dev` against a local `sfu serve --port 5000`.
    proxy: {
      '/socket.io': { target: 'http://127.0.0.1:5000', ws: true },
      '/api': 'http://127.0.0.1:5000',
      '/health': 'http://127.0.0.1:5000',
    },
  },
  test: {
    include: ['tests/**/*.test.ts', 'tests/**/*.test.tsx'],
    environment: 'node',
  },
})
