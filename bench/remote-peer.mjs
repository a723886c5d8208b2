// The plain-TCP peer bench/remote.bench.ts compares the remote protocol with, in a process of its
// own as the worker is: the first byte of a connection picks what it does.
//   'e': echo every byte back (a round trip's floor)
//   's' + u64 N: take N bytes, then answer one byte (host-to-device's floor)
//   'o' + u64 N: send N bytes (device-to-host's floor)
import net from 'node:net';

const server = net.createServer((c) => {
  c.setNoDelay(true);
  let mode = '';
  let head = Buffer.alloc(0);
  let left = 0n;
  c.on('data', (d) => {
    if (mode === 'e') return void c.write(d);
    if (mode === 's') {
      left -= BigInt(d.length);
      if (left <= 0n) c.write(Buffer.from([1]));
      return;
    }
    head = Buffer.concat([head, d]);
    if (head[0] === 0x65) {
      mode = 'e';
      if (head.length > 1) c.write(head.subarray(1));
      return;
    }
    if (head.length < 9) return;
    const n = head.readBigUInt64LE(1);
    if (head[0] === 0x73) {
      mode = 's';
      left = n - BigInt(head.length - 9);
      if (left <= 0n) c.write(Buffer.from([1]));
    } else {
      mode = 'o';
      const chunk = Buffer.alloc(1 << 20, 7);
      let sent = 0n;
      const pump = () => {
        while (sent < n) {
          const k = n - sent < BigInt(chunk.length) ? Number(n - sent) : chunk.length;
          sent += BigInt(k);
          if (!c.write(k === chunk.length ? chunk : chunk.subarray(0, k))) return void c.once('drain', pump);
        }
      };
      pump();
    }
  });
  c.on('error', () => {});
});
server.listen(0, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
