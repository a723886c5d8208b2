// The baseline server for bench/api.bench.ts: bare fastify, one route, no validation, no
// database, listening on loopback; prints its port on stdout when ready.
import Fastify from 'fastify';

const app = Fastify({ logger: false });
app.get('/hello', async () => ({ hello: 'world' }));
app.post('/hello', async (req) => ({ got: req.body }));
await app.listen({ host: '127.0.0.1', port: 0 });
const a = app.server.address();
process.stdout.write(`${typeof a === 'object' && a !== null ? a.port : 0}\n`);
process.on('SIGTERM', () => void app.close().then(() => process.exit(0)));
