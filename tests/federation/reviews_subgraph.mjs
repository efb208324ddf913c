// The "reviews" subgraph of the federation test: it extends our ProductGroup entity with a
// reviewScore, and has a root field whose groups OUR subgraph must resolve through _entities.
//
//   node reviews_subgraph.mjs PORT IDS_FILE      (PORT 0: any free port, printed on stdout)
//
// IDS_FILE (read on every topRated request) holds a JSON list of ProductGroup ids.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { graphql, parse } from 'graphql';

const [port, idsFile] = process.argv.slice(2);

const typeDefs = parse(`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key"])

  type Query {
    "Group references (only their ids): our subgraph resolves the rest."
    topRated: [ProductGroup]
  }

  type ProductGroup @key(fields: "id") {
    id: ID!
    reviewScore: Float
  }
`);

// Deterministic, and mirrored by review_score() in test_federation.py: 1.0 to 5.0.
const reviewScore = (id) => ([...id].reduce((sum, c) => sum + c.charCodeAt(0), 0) % 41) / 10 + 1;

const resolvers = {
  Query: {
    topRated: () => JSON.parse(readFileSync(idsFile, 'utf8')).map((id) => ({ id })),
  },
  ProductGroup: {
    __resolveReference: ({ id }) => ({ id }),
    reviewScore: ({ id }) => reviewScore(id),
  },
};

const schema = buildSubgraphSchema([{ typeDefs, resolvers }]);

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
      const { query, variables, operationName } = JSON.parse(Buffer.concat(chunks).toString());
      result = await graphql({ schema, source: query, variableValues: variables, operationName });
    } catch (error) {
      status = 400;
      result = { errors: [{ message: String(error) }] };
    }
  }
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(result));
});
server.listen(Number(port), '127.0.0.1', () => {
  // The test reads the port from this line (PORT 0: the OS picks one).
  console.log(`listening on port ${server.address().port}`);
});
