// Preloaded into the conformance suite (node --require): its mock servers call listen(0) with no
// host, which binds every interface, and read address().port right after. Bind 127.0.0.1
// instead, synchronously, by handing listen() a TCP handle that is already bound.
'use strict';
const net = require('net');
const { TCP, constants } = process.binding('tcp_wrap');

const listen = net.Server.prototype.listen;

function portOnly(args) {
  const [first, second] = args;
  const isPort =
    first === undefined ||
    typeof first === 'function' ||
    typeof first === 'number' ||
    (typeof first === 'string' && /^\d+$/.test(first));
  return isPort && (args.length < 2 || typeof second === 'function');
}

net.Server.prototype.listen = function (...args) {
  if (!portOnly(args)) {
    return listen.apply(this, args);
  }
  const port = typeof args[0] === 'function' || args[0] === undefined ? 0 : Number(args[0]);
  const callback = args.find((a) => typeof a === 'function');
  const handle = new TCP(constants.SERVER);
  const err = handle.bind('127.0.0.1', port);
  if (err) {
    handle.close();
    throw new Error(`bind 127.0.0.1:${port} failed (${err})`);
  }
  return callback ? listen.call(this, handle, callback) : listen.call(this, handle);
};
