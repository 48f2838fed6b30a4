// Preloaded (node --require) into the MCP TypeScript SDK's example server, which is run as
// published: its servers call listen(PORT) with no host, which binds every interface; the
// conformance run's preload binds 127.0.0.1 instead. This adds a request log for the run's
// assertions: one JSON line per request in $INTEROP_DIR/server.log (method, path without the
// query, status, the User-Agent's product; no bodies, no tokens).
'use strict';
require('../conformance/bind-loopback.cjs');

const fs = require('fs');
const http = require('http');
const path = require('path');

const logFile = path.join(process.env.INTEROP_DIR || '.', 'server.log');
const emit = http.Server.prototype.emit;

http.Server.prototype.emit = function (event, req, res) {
  if (event === 'request') {
    const port = this.address() && this.address().port;
    const ua = (req.headers['user-agent'] || '').split('/')[0];
    const entry = { method: req.method, path: req.url.split('?')[0], port, ua };
    res.on('finish', () => {
      fs.appendFileSync(logFile, `${JSON.stringify({ t: Date.now(), ...entry, status: res.statusCode })}\n`);
    });
  }
  return emit.apply(this, arguments);
};
