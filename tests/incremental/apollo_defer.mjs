// Runs one GraphQL operation with Apollo Client 4 in Node and prints every result it emits.
//
//   node apollo_defer.mjs <url> <handler: defer20220824|alpha9> <query-file-or-string> [variables-json]
//
// The client: InMemoryCache, HttpLink over Node's fetch, and the chosen incremental handler
// from @apollo/client/incremental. Each handler makes HttpLink send its own Accept header for
// an operation with @defer or @stream:
//   defer20220824 (Defer20220824Handler):
//     multipart/mixed;deferSpec=20220824,application/graphql-response+json,application/json;q=0.9
//   alpha9 (GraphQL17Alpha9Handler):
//     multipart/mixed;incrementalSpec=v0.2,application/graphql-response+json,application/json;q=0.9
//
// client.watchQuery() emits one result per part of a multipart answer, merged with the parts
// before it: dataState "streaming" while deferred parts are pending, then "complete". Each
// emission is one JSON line on stdout:
//
//   {"t": ms since start, "data": ..., "dataState": ..., "errors": [...] | null,
//    "loading": bool, "networkStatus": n}
//
// The first line is normally the loading state (dataState "empty", data null).
//
// Exit status: 0 once a complete result without errors arrived AND the HTTP response ended
// properly (its multipart body read up to the closing boundary: Apollo errors on a body that
// ends without it); 1 on a GraphQL, protocol or network error (a result that carried it is
// printed first; the message goes to stderr) or a response that ended with no complete result;
// 2 on bad arguments; 3 when it did not finish within APOLLO_DEFER_TIMEOUT_MS (default 60000).
//
// Environment:
//   APOLLO_DEFER_FETCH_POLICY  "network-only" (default: results read back through the
//                              normalized cache) or "no-cache" (the handler's merged data as it
//                              is); both emit the "streaming" steps.
//   APOLLO_DEFER_RAW=1         also print to stderr the HTTP response's status and
//                              Content-Type, as a line 'response {"t", "status",
//                              "contentType"}', then each part HttpLink parsed from the body,
//                              before any merging, as a line 'raw {"t", "part"}'.

import { existsSync, readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";

import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { loadDevMessages, loadErrorMessages } from "@apollo/client/dev";
import { Defer20220824Handler, GraphQL17Alpha9Handler } from "@apollo/client/incremental";
import { tap } from "rxjs";

const HANDLERS = {
  defer20220824: () => new Defer20220824Handler(),
  alpha9: () => new GraphQL17Alpha9Handler(),
};
const USAGE = "usage: node apollo_defer.mjs <url> <handler: defer20220824|alpha9> "
  + "<query-file-or-string> [variables-json]";
const LINK_END_GRACE_MS = 2000; // for the final result after the response ended

// Apollo's invariant errors and warnings (a cache write missing a field…) in words, not codes;
// its warnings go to stderr.
loadDevMessages();
loadErrorMessages();

const start = performance.now();
const elapsed = () => Math.round((performance.now() - start) * 10) / 10;
let finished = false;

function finish(code, message) {
  if (finished) return;
  finished = true;
  if (message) process.stderr.write(`${message}\n`);
  // Writes to files and pipes are synchronous on Linux; the callback also covers a TTY.
  process.stdout.write("", () => process.exit(code));
}

function usageError(message) {
  process.stderr.write(`${message}\n`);
  process.exit(2);
}

function parseArgs(argv) {
  if (argv.length < 3 || argv.length > 4) usageError(USAGE);
  const [url, handlerName, queryArg, variablesArg] = argv;
  const makeHandler = HANDLERS[handlerName];
  if (!makeHandler) {
    usageError(`unknown handler ${JSON.stringify(handlerName)} (defer20220824 or alpha9)\n${USAGE}`);
  }
  const text = existsSync(queryArg) ? readFileSync(queryArg, "utf8") : queryArg;
  let variables;
  if (variablesArg !== undefined) {
    try {
      variables = JSON.parse(variablesArg);
    } catch (error) {
      usageError(`variables are not JSON: ${error.message}`);
    }
  }
  let query;
  try {
    query = gql(text);
  } catch (error) {
    usageError(`the query does not parse: ${error.message}`);
  }
  return { url, handler: makeHandler(), query, variables };
}

function errorsOf(error) {
  if (!error) return null;
  // CombinedGraphQLErrors and CombinedProtocolErrors carry the server's errors.
  if (Array.isArray(error.errors)) return error.errors;
  return [{ message: error.message ?? String(error), name: error.name }];
}

function main() {
  const { url, handler, query, variables } = parseArgs(process.argv.slice(2));
  const timeoutMs = Number(process.env.APOLLO_DEFER_TIMEOUT_MS ?? 60000);
  const fetchPolicy = process.env.APOLLO_DEFER_FETCH_POLICY || "network-only";
  const raw = process.env.APOLLO_DEFER_RAW === "1";

  let completeResult = false; // a complete result without errors was emitted
  let responseEnded = false; // the link's observable completed: the body was read to its end
  let responseShown = false;

  // Sees what HttpLink makes of the multipart body (one value per part), and when it ends.
  const watchLink = new ApolloLink((operation, forward) => forward(operation).pipe(tap({
    next(part) {
      if (!raw) return;
      if (!responseShown) {
        responseShown = true;
        const { response } = operation.getContext();
        process.stderr.write(`response ${JSON.stringify({
          t: elapsed(), status: response?.status,
          contentType: response?.headers?.get("content-type") ?? null })}\n`);
      }
      process.stderr.write(`raw ${JSON.stringify({ t: elapsed(), part })}\n`);
    },
    complete() {
      responseEnded = true;
      if (completeResult) {
        finish(0);
      } else {
        setTimeout(() => finish(1, "the response ended without a complete result"),
          LINK_END_GRACE_MS);
      }
    },
  })));

  const client = new ApolloClient({
    link: ApolloLink.from([watchLink, new HttpLink({ uri: url, fetch })]),
    cache: new InMemoryCache(),
    incrementalHandler: handler,
  });
  // Also keeps the process alive until finish() exits, whatever else ends.
  setTimeout(() => finish(3, `not finished within ${timeoutMs} ms`
    + ` (complete result: ${completeResult}, response ended: ${responseEnded})`),
  timeoutMs);

  const observable = client.watchQuery({
    query,
    variables,
    fetchPolicy,
    errorPolicy: "all", // errors arrive with whatever data came, instead of replacing it
  });
  observable.subscribe({
    next(result) {
      const errors = errorsOf(result.error);
      const line = {
        t: elapsed(),
        data: result.data ?? null,
        dataState: result.dataState,
        errors,
        loading: result.loading,
        networkStatus: result.networkStatus,
      };
      process.stdout.write(`${JSON.stringify(line)}\n`);
      if (errors) {
        finish(1, `error: ${errors.map((e) => e.message).join("; ")}`);
      } else if (result.dataState === "complete" && !result.loading) {
        completeResult = true;
        if (responseEnded) finish(0);
      }
    },
    error(error) {
      finish(1, `error: ${error?.stack ?? error}`);
    },
    complete() {
      finish(1, "the query's observable completed without a complete result");
    },
  });
}

main();
