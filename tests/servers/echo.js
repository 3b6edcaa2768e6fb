// A local stand-in for postman-echo.com, the server Newman's own test collections call: the
// tests run those collections with Newman and with postie against this, on 127.0.0.1, and
// compare what each sent. Answers as postman-echo does for the endpoints the fixtures use.
//
//   node tests/servers/echo.js        prints "echo listening on http://127.0.0.1:PORT"
//
// Every request is also appended to the log (GET /__log returns it, DELETE /__log clears it),
// so a test can see exactly what arrived, in order.
'use strict';
const http = require('http');
const zlib = require('zlib');

const log = [];

function parseQuery(url) {
  const out = {};
  for (const [k, v] of url.searchParams) {
    if (k in out) out[k] = [].concat(out[k], v);
    else out[k] = v;
  }
  return out;
}

function parseCookies(header) {
  const out = {};
  (header || '').split(';').map((s) => s.trim()).filter(Boolean).forEach((c) => {
    const i = c.indexOf('=');
    if (i > 0) out[c.slice(0, i)] = c.slice(i + 1);
  });
  return out;
}

function send(res, status, body, headers) {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, Object.assign({
    'Content-Type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json; charset=utf-8',
  }, headers || {}));
  res.end(text);
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url, 'http://127.0.0.1');
    const path = url.pathname;
    if (path === '/__log') {
      if (req.method === 'DELETE') log.length = 0;
      return send(res, 200, log);
    }
    // Header names as they arrived (lower-cased by Node), minus the ones every client adds.
    const headers = Object.assign({}, req.headers);
    log.push({ method: req.method, path, query: url.search, headers, body: raw });
    let data = raw;
    let form = {};
    let json = null;
    const ct = req.headers['content-type'] || '';
    if (ct.includes('application/json')) {
      try { json = JSON.parse(raw); data = json; } catch (e) { /* as text */ }
    } else if (ct.includes('application/x-www-form-urlencoded')) {
      form = Object.fromEntries(new URLSearchParams(raw));
      data = '';
    }
    const echo = {
      args: parseQuery(url),
      data: data,
      files: {},
      form: form,
      headers: headers,
      json: json,
      url: 'http://' + req.headers.host + req.url,
    };
    const m = /^\/status\/(\d{3})$/.exec(path);
    if (m) return send(res, Number(m[1]), { status: Number(m[1]) });
    const d = /^\/delay\/(\d+)$/.exec(path);
    if (d) return setTimeout(() => send(res, 200, { delay: d[1] }), Math.min(Number(d[1]), 3) * 100);
    switch (path) {
      case '/':
      case '/get':
      case '/post':
      case '/put':
      case '/patch':
      case '/delete':
        return send(res, 200, echo);
      case '/headers':
        return send(res, 200, { headers });
      case '/basic-auth': {
        const ok = req.headers.authorization === 'Basic ' + Buffer.from('postman:password').toString('base64');
        return ok ? send(res, 200, { authenticated: true }) : send(res, 401, 'Unauthorized');
      }
      case '/cookies':
        return send(res, 200, { cookies: parseCookies(req.headers.cookie) });
      case '/cookies/set': {
        const set = Object.entries(parseQuery(url)).map(([k, v]) => `${k}=${v}; Path=/`);
        res.writeHead(302, { Location: '/cookies', 'Set-Cookie': set });
        return res.end();
      }
      case '/response-headers': {
        const q = parseQuery(url);
        return send(res, 200, q, q);
      }
      case '/gzip': {
        const body = zlib.gzipSync(JSON.stringify({ gzipped: true, headers }));
        res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' });
        return res.end(body);
      }
      case '/type/html':
        res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
        return res.end('<html><body><p>echo</p></body></html>');
      default:
        return send(res, 404, { error: 'not found', path });
    }
  });
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`echo listening on http://127.0.0.1:${server.address().port}\n`);
});
