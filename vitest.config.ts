import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Tests generate keys and run real daemons; two cores are what CI has.
    maxWorkers: 2,
    reporters: ["default", "./test/summary-reporter.ts"],
  },
});
