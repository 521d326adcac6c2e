// Probot 14 with a no-op `issues.labeled` handler, the reference point of SPEC §7: it
// verifies the signature and runs the handler inside the request, storing nothing.
// bench/ingest.py copies this file beside its node_modules in .cache/bench/probot/ and sets
// APP_ID, WEBHOOK_SECRET, HOST, PORT and LOG_LEVEL=warn (no per-request log line, as the
// reactor runs without an access log).
import { generateKeyPairSync } from "node:crypto";
import { run } from "probot";

// Probot wants an App key at start-up; the benchmark never calls GitHub, so any key does.
process.env.PRIVATE_KEY ??= generateKeyPairSync("rsa", {
  modulusLength: 2048,
  publicKeyEncoding: { type: "spki", format: "pem" },
  privateKeyEncoding: { type: "pkcs1", format: "pem" },
}).privateKey;

await run((app) => {
  app.on("issues.labeled", async () => {});
});
