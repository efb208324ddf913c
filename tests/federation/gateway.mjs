// An Apollo Gateway composing the subgraphs with IntrospectAndCompose, served without
// @apollo/server: POST /graphql parses and validates against the supergraph's API schema, then
// hands the operation to the gateway's executor (the query planner and subgraph fetches).
//
//   node gateway.mjs PORT NAME=URL [NAME=URL ...]      (PORT 0: any free port, printed on stdout)
//
// Exits 1 with the composition errors on stderr when the subgraphs do not compose.
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { ApolloGateway, IntrospectAndCompose } from '@apollo/gateway';
import { GraphQLError, parse, validate } from 'graphql';

// No usage metrics to Apollo's endpoint (read when the gateway is constructed).
process.env.APOLLO_TELEMETRY_DISABLED ??= '1';

const [port, ...pairs] = process.argv.slice(2);
const subgraphs = pairs.map((pair) => {
  const at = pair.indexOf('=');
  return { name: pair.slice(0, at), url: pair.slice(at + 1) };
});

const logger = {
  debug: () => {},
  info: (m) => console.log(m),
  warn: (m) => console.error(m),
  error: (m) => console.error(m),
};
const gateway = new ApolloGateway({ supergraphSdl: new IntrospectAndCompose({ subgraphs }), logger });

let loaded;
try {
  loaded = await gateway.load();
} catch (error) {
  console.error(`composition failed: ${error.message ?? error}`);
  if (!error.causes) console.error(error.stack);
  for (const cause of error.causes ?? []) console.error(`  ${cause.message ?? cause}`);
  process.exit(1);
}
const { schema, executor } = loaded;

async function execute(body) {
  const { query, variables = {}, operationName } = body;
  const document = parse(query);
  const errors = validate(schema, document);
  if (errors.length) return { errors };
  return executor({
    request: { query, variables, operationName },
    document,
    source: query,
    queryHash: createHash('sha256').update(query).digest('hex'),
    operationName: operationName ?? null,
    schema,
    context: {},
    metrics: {},
    logger,
    cache: undefined,
    overallCachePolicy: undefined,
  });
}

const server = createServer(async (req, res) => {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  let status = 200;
  let result;
  if (req.method !== 'POST' || req.url !== '/graphql') {
    status = 404;
    result = { errors: [{ message: 'POST /graphql only' }] };
  } else {
    try {
      result = await execute(JSON.parse(Buffer.concat(chunks).toString()));
    } catch (error) {
      status = error instanceof GraphQLError || error instanceof SyntaxError ? 400 : 500;
      result = { errors: [{ message: String(error?.message ?? error) }] };
    }
  }
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(result));
});
server.listen(Number(port), '127.0.0.1', () => {
  // The test reads the port from this line (PORT 0: the OS picks one).
  console.log(`listening on port ${server.address().port}`);
});

const stop = async () => {
  await gateway.stop();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
