// postie's runtime for an exported collection: what postie does that Postman has no word for
// (automatic chaining, a request's last exchange by name, template expressions, JSONPath).
// Generated scripts load it with eval(pm.collectionVariables.get("postie_lib")).
var P = (function () {
  function x(n) {
    var s = pm.collectionVariables.get('postie.' + n);
    return s === undefined || s === null || s === '' ? undefined : JSON.parse(s);
  }
  function v(n) {
    var e = x(n);
    return e !== undefined ? e : pm.variables.get(n);
  }
  function get(o, k) {
    if (o === undefined || o === null) return undefined;
    if (typeof k === 'number' && k < 0 && Array.isArray(o)) k = o.length + k;
    return o[k];
  }
  function truthy(a) {
    if (Array.isArray(a)) return a.length > 0;
    if (a && typeof a === 'object') return Object.keys(a).length > 0;
    return !!a;
  }
  function s(a) {
    if (a === undefined || a === null) return '';
    if (typeof a === 'object') return JSON.stringify(a);
    return String(a);
  }
  function eq(a, b) { return JSON.stringify(a) === JSON.stringify(b); }
  function len(a) {
    if (a === undefined || a === null) return 0;
    if (typeof a === 'object' && !Array.isArray(a)) return Object.keys(a).length;
    return a.length;
  }
  function isIn(a, b) {
    if (typeof b === 'string') return b.indexOf(String(a)) >= 0;
    if (Array.isArray(b)) return b.some(function (i) { return eq(i, a); });
    if (b && typeof b === 'object') return Object.prototype.hasOwnProperty.call(b, a);
    return false;
  }
  function add(a, b) {
    if (Array.isArray(a) && Array.isArray(b)) return a.concat(b);
    return a + b;
  }
  function rand(n) {
    var h = '0123456789abcdef', out = '';
    for (var i = 0; i < n; i++) out += h[Math.floor(Math.random() * 16)];
    return out;
  }
  var f = {
    length: len, count: len,
    'default': function (a, d) { return a === undefined || a === null ? (d === undefined ? '' : d) : a; },
    append: function (l, i) { l = (l || []).slice(); if (!isIn(i, l)) l.push(i); return l; },
    lower: function (a) { return s(a).toLowerCase(); },
    upper: function (a) { return s(a).toUpperCase(); },
    trim: function (a) { return s(a).trim(); },
    join: function (a, sep) { return (a || []).map(s).join(sep === undefined ? '' : sep); },
    first: function (a) { return a && a.length ? a[0] : undefined; },
    last: function (a) { return a && a.length ? a[a.length - 1] : undefined; },
    tojson: function (a) { return JSON.stringify(a); },
    string: s,
    int: function (a) { var n = parseInt(a, 10); return isNaN(n) ? 0 : n; },
    'float': function (a) { var n = parseFloat(a); return isNaN(n) ? 0 : n; },
    abs: function (a) { return Math.abs(a); },
    replace: function (a, from, to) { return s(a).split(from).join(to); },
    urlencode: function (a) { return encodeURIComponent(s(a)); },
    list: function (a) { return Array.isArray(a) ? a : typeof a === 'string' ? a.split('') : a && typeof a === 'object' ? Object.keys(a) : []; },
    keys: function (a) { return a && typeof a === 'object' ? Object.keys(a) : []; }
  };
  f.d = f['default'];
  var fn = {
    merge: function (a, b) { var o = {}, k; for (k in a) o[k] = a[k]; for (k in b) o[k] = b[k]; return o; },
    uuid: function () { return pm.variables.replaceIn('{{$guid}}'); },
    random_state: function () { return rand(32); },
    nonce: function (n) { return rand(n || 32); },
    random_int: function (lo, hi) { lo = lo || 0; hi = hi === undefined ? 1000 : hi; return lo + Math.floor(Math.random() * (hi - lo + 1)); },
    fake: function (k) { return pm.variables.replaceIn('{{$' + k + '}}'); },
    now: function (fmt) {
      var d = new Date();
      if (fmt === 'unix') return Math.floor(d.getTime() / 1000);
      if (fmt === 'unix_ms') return d.getTime();
      if (fmt === 'date') return d.toISOString().slice(0, 10);
      return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
    }
  };
  var t = {
    defined: function (a) { return a !== undefined; },
    undefined: function (a) { return a === undefined; },
    none: function (a) { return a === null; },
    number: function (a) { return typeof a === 'number'; },
    string: function (a) { return typeof a === 'string'; },
    mapping: function (a) { return !!a && typeof a === 'object' && !Array.isArray(a); },
    sequence: function (a) { return Array.isArray(a); },
    true: function (a) { return a === true; },
    false: function (a) { return a === false; }
  };
  // JSONPath steps compiled by postie: ["k", name] | ["i", n] | ["*"] | [".." name] | ["?", path, negate, value].
  function path(root, steps) {
    var cur = [root];
    steps.forEach(function (st) {
      var next = [];
      cur.forEach(function (val) {
        if (st[0] === 'k') { if (val && typeof val === 'object' && st[1] in val) next.push(val[st[1]]); }
        else if (st[0] === 'i') { if (Array.isArray(val)) { var i = st[1] < 0 ? val.length + st[1] : st[1]; if (i >= 0 && i < val.length) next.push(val[i]); } }
        else if (st[0] === '*') { if (Array.isArray(val)) next.push.apply(next, val); else if (val && typeof val === 'object') Object.keys(val).forEach(function (k) { next.push(val[k]); }); }
        else if (st[0] === '..') { (function walk(o) { if (o && typeof o === 'object') { if (!Array.isArray(o) && st[1] in o) next.push(o[st[1]]); Object.keys(o).forEach(function (k) { walk(o[k]); }); } })(val); }
        else if (st[0] === '?') {
          var items = Array.isArray(val) ? val : val && typeof val === 'object' ? Object.keys(val).map(function (k) { return val[k]; }) : [];
          items.forEach(function (it) { var fld = it; st[1].forEach(function (p) { fld = fld === undefined || fld === null ? undefined : fld[p]; }); if ((fld !== undefined && eq(fld, st[3])) !== st[2]) next.push(it); });
        }
      });
      cur = next;
    });
    var many = steps.some(function (st) { return st[0] === '*' || st[0] === '..' || st[0] === '?'; });
    if (many) return cur.length === 0 ? undefined : cur.length === 1 ? cur[0] : cur;
    return cur[0];
  }
  function body() {
    try { return pm.response.json(); } catch (e) { return undefined; }
  }
  // What postie keeps of an exchange under the request's name.
  function record(name) {
    var h = {};
    pm.response.headers.each(function (x) { h[x.key.toLowerCase()] = x.value; });
    var b = body();
    pm.collectionVariables.set('postie.' + name, JSON.stringify({
      status: pm.response.code, headers: h, body: b === undefined ? pm.response.text() : b,
      elapsed_ms: pm.response.responseTime, method: pm.request.method, url: pm.request.url.toString()
    }));
  }
  // postie's automatic chaining, for the names later requests use: top-level scalar fields of a
  // JSON body, then the query and fragment of a Location header.
  function chain(names) {
    var b = body();
    names.forEach(function (n) {
      if (b && typeof b === 'object' && !Array.isArray(b) && Object.prototype.hasOwnProperty.call(b, n)) {
        var val = b[n];
        if (typeof val === 'string' || typeof val === 'number' || typeof val === 'boolean') pm.collectionVariables.set(n, val);
      }
    });
    var loc = pm.response.headers.get('Location');
    if (loc) {
      var q = loc.split('#'), parts = [];
      if (q[0].indexOf('?') >= 0) parts = parts.concat(q[0].split('?')[1].split('&'));
      if (q[1]) parts = parts.concat(q[1].split('&'));
      parts.forEach(function (p) {
        var i = p.indexOf('='), k = decodeURIComponent(i < 0 ? p : p.slice(0, i));
        if (names.indexOf(k) >= 0) pm.collectionVariables.set(k, decodeURIComponent((i < 0 ? '' : p.slice(i + 1)).replace(/\+/g, ' ')));
      });
    }
  }
  function sleep(ms) { var end = Date.now() + ms; setTimeout(function () {}, ms); return end; }
  function pkce() {
    var verifier = rand(64);
    var challenge = CryptoJS.SHA256(verifier).toString(CryptoJS.enc.Base64).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    pm.collectionVariables.set('code_verifier', verifier);
    pm.collectionVariables.set('code_challenge', challenge);
  }
  return { x: x, v: v, get: get, truthy: truthy, s: s, eq: eq, isIn: isIn, add: add, f: f, fn: fn, t: t, path: path, body: body, record: record, chain: chain, sleep: sleep, pkce: pkce };
})();
