// Runs the graphql-http server audits (the GraphQL-over-HTTP spec's conformance suite, pinned in
// tools/package.json) against a live GraphQL endpoint and prints one JSON line per audit:
// {"id", "name", "status": "ok" | "warn" | "error" | "notice", "reason", "response"}.
// Usage: NODE_PATH=tools/node_modules node graphql_http_audit.cjs http://127.0.0.1:PORT/graphql/
"use strict";

const { serverAudits } = require("graphql-http");

async function describe(response) {
  if (!response) return null;
  let body = "";
  try {
    body = (await response.clone().text()).slice(0, 500);
  } catch (error) {
    body = `<unreadable: ${error}>`;
  }
  return { status: response.status, contentType: response.headers.get("content-type"), body };
}

async function main() {
  const url = process.argv[2];
  if (!url) throw new Error("usage: graphql_http_audit.cjs URL");
  // One audit after the other: the server under test runs one worker, and the order of the lines
  // stays that of the suite.
  for (const audit of serverAudits({ url })) {
    const result = await audit.fn();
    const line = { id: result.id, name: result.name, status: result.status };
    if (result.status !== "ok") {
      line.reason = result.reason;
      line.response = await describe(result.response);
    }
    process.stdout.write(JSON.stringify(line) + "\n");
  }
}

main().catch((error) => {
  process.stderr.write(`${error && error.stack ? error.stack : error}\n`);
  process.exit(2);
});
