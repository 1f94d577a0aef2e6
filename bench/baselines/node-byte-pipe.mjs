// Reference (e) of bench/python: the least any Node gateway can do between a client and berth's Python
// container — each client connection gets its own connection to the container and bytes are copied
// both ways, unparsed. No routing, no SageMaker headers, no metrics. What berth's gateway costs above
// this is berth's own work; what this costs above the container alone is the Node hop itself.
import { connect, createServer } from 'node:net';

const [port, upstreamPort] = [Number(process.argv[2]), Number(process.argv[3])];

createServer({ noDelay: true }, (client) => {
  const upstream = connect({ host: '127.0.0.1', port: upstreamPort, noDelay: true });
  client.pipe(upstream).pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
  client.on('close', () => upstream.destroy());
}).listen(port, '127.0.0.1');
