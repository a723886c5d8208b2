import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // Native builds and child processes make some tests slower than vitest's 5 s default on 2 cores.
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
