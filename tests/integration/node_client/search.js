// Usage: node search.js <host:port> <query> [user_id]. Prints the SearchResponse as JSON, or the error.
const path = require("path");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const root = path.resolve(__dirname, "../../../protos");
const definition = protoLoader.loadSync(path.join(root, "shop/gateway/v1/gateway_service.proto"), {
  includeDirs: [root],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
});
const shop = grpc.loadPackageDefinition(definition).shop;
const [addr, query, userId] = process.argv.slice(2);
const client = new shop.gateway.v1.GatewayService(addr, grpc.credentials.createInsecure());
const deadline = new Date(Date.now() + 10000);
client.Search({ query, user_id: userId || "", page_size: 5, explain: true }, { deadline }, (err, resp) => {
  if (err) {
    console.log(JSON.stringify({ error: { code: err.code, details: err.details } }));
  } else {
    console.log(JSON.stringify(resp));
  }
  client.close();
});
