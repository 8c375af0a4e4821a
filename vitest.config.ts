import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Generous: the host-script tests run hundreds of stand-in processes, and on a loaded two-core
    // machine a storage node's lifecycle took over 200 s (speed is measured by bench/, not here).
    testTimeout: 300_000,
    hookTimeout: 300_000,
    // Tests generate keys and run real daemons; two cores are what CI has.
    maxWorkers: 2,
    reporters: ["default", "./test/summary-reporter.ts"],
  },
});
