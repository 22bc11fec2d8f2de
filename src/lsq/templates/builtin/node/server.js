"use strict";
// Run the service on 127.0.0.1:$PORT; stop cleanly on SIGTERM or SIGINT.

const { start, stop } = require("./lib/app");
const { log } = require("./lib/observability");

async function main() {
  const server = await start();
  const shutdown = async (signal) => {
    log("info", "stopping", { signal });
    server.closeAllConnections();
    await stop(server);
    process.exit(0);
  };
  process.once("SIGTERM", shutdown);
  process.once("SIGINT", shutdown);
}

main().catch((err) => {
  log("error", "start-up failed", { error: String(err && err.stack) });
  process.exit(1);
});
